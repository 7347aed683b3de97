/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * The allow lists, resolved to what the kernel compares: executables to device
 * and inode (scripts to a hash of their path), units and cgroup paths to cgroup
 * ids, destinations to LPM prefixes. Applied additions first, removals last, so
 * a reload never refuses what both the old and the new policy allow.
 */
#ifndef SMTPWATCH_POLICY_H
#define SMTPWATCH_POLICY_H
#include <stddef.h>
#include <stdint.h>
#include "agent.h"

struct sw_loader;

struct sw_policy_state {
	int unresolved;	    /* entries that named nothing on this host (yet) */
	char warning[256];  /* the first of them, for status */
	uint64_t applied_ns;
};

int sw_policy_apply(struct sw_loader *l, const struct sw_policy *p, const char *cgroup_root,
		    struct sw_policy_state *st);
/* The FNV-1a 64 hash the exec hook computes over a script's path. */
uint64_t sw_script_hash(const char *path);

#endif
