/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
#ifndef SMTPWATCH_LOADER_H
#define SMTPWATCH_LOADER_H
#include <stdbool.h>
#include <stdint.h>
#include "smtpwatch/events.h"

struct smtpwatch_bpf;
struct bpf_link;

struct sw_loader_opts {
	uint16_t ports[SW_MAX_PORTS];
	int nports;
	uint64_t ring_bytes;
	/* Called between open and load (pin paths of the maps to reuse). */
	int (*before_load)(void *ctx, struct smtpwatch_bpf *skel);
	void *ctx;
};

struct sw_loader {
	struct smtpwatch_bpf *skel;
	char cgroup_path[4096];
	int cgroup_fd;
	struct bpf_link *links[8];
	const char *link_names[8];
	int nlinks;
	const volatile unsigned long *ring_pos[2]; /* consumer, producer pages, read-only */
};

/*
 * What the agent cannot run without: privileges, BTF, cgroup v2. On failure
 * prints one sentence saying what to do and returns the sysexits code.
 */
int sw_check_environment(char *cgroup_path, size_t len);
int sw_loader_open(struct sw_loader *l, const struct sw_loader_opts *o);
/*
 * pin_dir NULL: plain links, gone with the agent. Otherwise each link is pinned
 * there; a link an earlier agent pinned gets this agent's program swapped in,
 * so the hook never goes away during a restart.
 */
int sw_loader_attach(struct sw_loader *l, const char *pin_dir);
void sw_loader_destroy(struct sw_loader *l);
/* Sum the per-CPU kernel counters. */
int sw_loader_stats(struct sw_loader *l, uint64_t out[SW_STAT_MAX]);
/* Bytes written to the ring and not yet consumed, and its size: 0 or -errno. */
int sw_loader_ring_fill(struct sw_loader *l, uint64_t *used, uint64_t *size);
/* Forget kernel flow state of sessions the agent closed. */
void sw_loader_forget_flows(struct sw_loader *l, const uint64_t *ids, uint32_t n);

#endif
