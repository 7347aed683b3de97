/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Session table: one entry per flow, keyed by socket cookie (or wire id), holding
 * the process context from the connect record and the two reassembled streams.
 * Bounded: when full, the oldest session is closed early and counted.
 */
#ifndef SMTPWATCH_SESSION_H
#define SMTPWATCH_SESSION_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <linux/types.h>
#include "smtpwatch/events.h"

struct sw_stream {
	uint8_t *buf;
	uint8_t *have; /* one bit per byte received: retransmits and reordering */
	uint32_t alloc;
	uint32_t end;  /* highest offset + 1 written */
	uint64_t first_ns;
};

struct sw_session {
	uint64_t id;
	struct sw_session *hnext;
	struct sw_session *prev, *next; /* age list, oldest first */
	bool wire;		       /* seen only on the wire: no process */
	bool have_conn;
	bool have_src;
	bool closing;
	struct sw_connect conn;
	struct sw_addr src, dst;
	uint32_t ifindex;
	uint32_t closed; /* enum sw_close_reason */
	uint64_t start_ns, last_ns, close_ns, deadline_ns; /* CLOCK_MONOTONIC */
	struct sw_stream st[2];				   /* enum sw_dir */
	/* Resolved once, when the connect record arrives. */
	char *exe;
	char *args; /* NUL separated */
	size_t args_len;
	bool args_truncated;
	char cgroup[256];
	char container_id[65];
	char unit[128];	      /* systemd unit from the cgroup path */
	char entity_id[32];   /* process.entity_id */
	char *proc_json; /* the event's process object, written once at resolve */
	char *anc_exe[SW_MAX_ANCESTORS];
};

struct sw_sessions {
	struct sw_session **buckets;
	uint32_t nbuckets;
	uint32_t count, max;
	struct sw_session *oldest, *newest;
	uint64_t evicted;
};

int sw_sessions_init(struct sw_sessions *t, uint32_t max);
void sw_sessions_free(struct sw_sessions *t);
struct sw_session *sw_session_find(struct sw_sessions *t, uint64_t id);
/* A new session; when the table is full the oldest is handed to *evicted first. */
struct sw_session *sw_session_add(struct sw_sessions *t, uint64_t id, uint64_t now_ns,
				  struct sw_session **evicted);
void sw_session_remove(struct sw_sessions *t, struct sw_session *s);
void sw_session_destroy(struct sw_session *s);
/* Free what a session holds, for one that is not heap-allocated itself. */
void session_release(struct sw_session *s);
/* Store payload bytes at their stream offset. Returns 0 or -ENOMEM/-EINVAL. */
int sw_stream_put(struct sw_stream *st, uint32_t off, const uint8_t *data, uint32_t len,
		  uint64_t ts_ns);
/* Bytes received without a hole from offset 0. */
uint32_t sw_stream_contiguous(const struct sw_stream *st);

#endif
