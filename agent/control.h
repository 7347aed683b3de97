/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Control socket: a unix stream socket, 0600 root (or 0660 with a group). One
 * JSON request line per connection, one JSON reply line back (docs/control.md).
 * Clients are non-blocking state in the agent's epoll: a slow or silent client
 * costs a slot, never a stall, and is dropped after SW_CTL_TIMEOUT_MS.
 */
#ifndef SMTPWATCH_CONTROL_H
#define SMTPWATCH_CONTROL_H
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <cjson/cJSON.h>

#define SW_DEFAULT_SOCKET "/run/smtpwatch/smtpwatch.sock"
#define SW_CTL_CLIENTS 16
#define SW_CTL_TIMEOUT_MS 2000
#define SW_CTL_TAG 1000 /* epoll tags: SW_CTL_TAG listener, + 1 + i clients */

typedef cJSON *(*sw_control_answer_fn)(const char *cmd, const cJSON *req, void *ctx);

struct sw_ctl_client {
	int fd;
	char in[1024];
	size_t inlen;
	char *out;
	size_t outlen, outoff;
	uint64_t deadline_ns;
};

struct sw_control {
	int lfd, epfd;
	const char *path;
	gid_t group; /* (gid_t)-1: root only */
	sw_control_answer_fn answer;
	void *ctx;
	struct sw_ctl_client cl[SW_CTL_CLIENTS];
	uint64_t refused, dropped;
};

/* Agent side: listen on path and register with epfd. 0 or -errno (-EADDRINUSE: an agent answers). */
int sw_control_open(struct sw_control *c, const char *path, gid_t group, int epfd,
		    sw_control_answer_fn answer, void *ctx);
/* An epoll event whose tag is SW_CTL_TAG or a client's. */
void sw_control_event(struct sw_control *c, uint32_t tag, uint32_t events);
/* Drop clients past their deadline; returns how many clients remain. */
int sw_control_expire(struct sw_control *c, uint64_t now_ns);
void sw_control_close(struct sw_control *c);

/* Client side: the reply to {"cmd": cmd}, or NULL with errno set. */
cJSON *sw_control_request(const char *path, const char *cmd);

#endif
