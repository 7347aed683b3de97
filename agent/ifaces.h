/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * The wire view: tc programs on every interface that is up, loopback included,
 * and on interfaces that come up later. tcx links where the kernel has them
 * (6.6+), clsact filters otherwise; only what the agent created is removed.
 */
#ifndef SMTPWATCH_IFACES_H
#define SMTPWATCH_IFACES_H
#include <stdbool.h>
#define SW_IFNAMSIZ 16

struct sw_loader;

enum sw_tc_mode { SW_TC_NONE, SW_TC_TCX, SW_TC_CLSACT };

struct sw_iface {
	int ifindex;
	char name[SW_IFNAMSIZ];
	bool attached;
	bool created_qdisc; /* clsact: the agent created it, so the agent removes it */
	int link_fd[2];	    /* tcx: ingress, egress */
	int prog_fd[2];
	char error[128];
};

#define SW_MAX_IFACES 256

struct sw_ifaces {
	struct sw_loader *loader;
	enum sw_tc_mode mode;
	int nl_fd; /* rtnetlink, subscribed to link changes */
	struct sw_iface ifs[SW_MAX_IFACES];
	int n;
	unsigned long attach_failures;
	const char *pin_dir; /* tcx links pinned here; NULL: none */
	bool keep;	     /* leave the hooks attached at exit (--pin) */
};

/* want: SW_TC_NONE to pick the best the kernel has, or a mode to insist on. */
/* pin_dir/keep: see struct sw_ifaces. */
int sw_ifaces_init(struct sw_ifaces *x, struct sw_loader *l, enum sw_tc_mode want,
		   const char *pin_dir, bool keep);
/* Read pending link notifications and attach to new interfaces. */
void sw_ifaces_netlink(struct sw_ifaces *x);
void sw_ifaces_detach_all(struct sw_ifaces *x);
const char *sw_tc_mode_name(enum sw_tc_mode m);
/*
 * The agent's clsact filters on every interface, for `smtpwatch cleanup`, and the
 * clsact qdiscs that pin_dir says the agent created: how many filters went.
 */
int sw_ifaces_remove_filters(const char *pin_dir);
/* Number of live interfaces whose attachment failed. */
int sw_ifaces_failed(const struct sw_ifaces *x);

#endif
