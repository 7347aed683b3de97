// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <net/if.h>
#include <linux/if_arp.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <sys/socket.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include "smtpwatch.skel.h"
#include "ifaces.h"
#include "loader.h"
#include "log.h"

/* Debian 12's uapi headers predate tcx (6.6). */
#ifndef BPF_TCX_INGRESS
#define BPF_TCX_INGRESS 46
#define BPF_TCX_EGRESS 47
#endif

/* clsact filters carry this handle and priority, so stale ones can be found. */
#define SW_TC_HANDLE 0x5357
#define SW_TC_PRIO 0x5357

const char *sw_tc_mode_name(enum sw_tc_mode m)
{
	return m == SW_TC_TCX ? "tcx" : m == SW_TC_CLSACT ? "clsact" : "none";
}

/* L2 framing decides which program variant parses the packet. */
static int arphrd_l2(unsigned type)
{
	switch (type) {
	case ARPHRD_ETHER:
	case ARPHRD_LOOPBACK:
		return 1;
	case ARPHRD_NONE:
	case ARPHRD_TUNNEL:
	case ARPHRD_TUNNEL6:
	case ARPHRD_IPGRE:
	case ARPHRD_SIT:
	case ARPHRD_RAWIP:
		return 0;
	default:
		return -1;
	}
}

static struct sw_iface *iface_find(struct sw_ifaces *x, int ifindex)
{
	for (int i = 0; i < x->n; i++)
		if (x->ifs[i].ifindex == ifindex)
			return &x->ifs[i];
	return NULL;
}

static void tcx_pin_path(const struct sw_ifaces *x, const struct sw_iface *f, int d, char *buf,
			 size_t len)
{
	snprintf(buf, len, "%s/tc_%d_%s", x->pin_dir, f->ifindex, d ? "egress" : "ingress");
}

/* A link an earlier agent pinned for this interface, now running prog_fd: its fd, or -1. */
static int tcx_adopt(const struct sw_ifaces *x, const struct sw_iface *f, int d)
{
	char path[512];
	int fd;

	if (!x->pin_dir)
		return -1;
	tcx_pin_path(x, f, d, path, sizeof(path));
	fd = bpf_obj_get(path);
	if (fd >= 0 && !bpf_link_update(fd, f->prog_fd[d], NULL))
		return fd;
	if (fd >= 0)
		close(fd);
	unlink(path); /* the device it was on is gone */
	return -1;
}

static int attach_tcx(struct sw_ifaces *x, struct sw_iface *f)
{
	for (int d = 0; d < 2; d++) {
		char path[512];

		f->link_fd[d] = tcx_adopt(x, f, d);
		if (f->link_fd[d] >= 0)
			continue;
		f->link_fd[d] = bpf_link_create(f->prog_fd[d], f->ifindex,
						d ? BPF_TCX_EGRESS : BPF_TCX_INGRESS, NULL);
		if (f->link_fd[d] >= 0 && x->pin_dir) {
			tcx_pin_path(x, f, d, path, sizeof(path));
			if (bpf_obj_pin(f->link_fd[d], path))
				pr_warn("cannot pin the tcx link at %s: %s\n", path, strerror(errno));
		}
		if (f->link_fd[d] < 0) {
			int err = -errno;

			if (d)
				close(f->link_fd[0]);
			f->link_fd[0] = f->link_fd[1] = -1;
			return err;
		}
	}
	return 0;
}

/*
 * With a pin directory, a clsact qdisc the agent created is remembered there (an
 * empty pinned map named qdisc_IFINDEX), so that the agent that takes over, or
 * `smtpwatch cleanup`, removes it as its own.
 */
static void qdisc_mark_path(const char *pin_dir, int ifindex, char *buf, size_t len)
{
	snprintf(buf, len, "%s/qdisc_%d", pin_dir, ifindex);
}

static void qdisc_mark(const struct sw_ifaces *x, const struct sw_iface *f)
{
	char path[512];
	int fd;

	qdisc_mark_path(x->pin_dir, f->ifindex, path, sizeof(path));
	fd = bpf_map_create(BPF_MAP_TYPE_ARRAY, "sw_qdisc", 4, 4, 1, NULL);
	if (fd < 0)
		return;
	if (bpf_obj_pin(fd, path))
		pr_debug("cannot pin %s: %s\n", path, strerror(errno));
	close(fd);
}

static int attach_clsact(struct sw_ifaces *x, struct sw_iface *f)
{
	DECLARE_LIBBPF_OPTS(bpf_tc_hook, hook, .ifindex = f->ifindex,
			    .attach_point = BPF_TC_INGRESS | BPF_TC_EGRESS);
	int err = bpf_tc_hook_create(&hook);

	if (err && err != -EEXIST)
		return err;
	f->created_qdisc = !err;
	if (x->pin_dir) {
		char path[512];

		qdisc_mark_path(x->pin_dir, f->ifindex, path, sizeof(path));
		if (f->created_qdisc)
			qdisc_mark(x, f);
		else if (!access(path, F_OK))
			f->created_qdisc = true; /* an earlier agent of ours made it */
	}
	for (int d = 0; d < 2; d++) {
		DECLARE_LIBBPF_OPTS(bpf_tc_opts, opts, .handle = SW_TC_HANDLE, .priority = SW_TC_PRIO,
				    .flags = BPF_TC_F_REPLACE);

		hook.attach_point = d ? BPF_TC_EGRESS : BPF_TC_INGRESS;
		/* An earlier agent's filter still runs: swap the program in, no gap. */
		opts.prog_fd = f->prog_fd[d];
		err = bpf_tc_attach(&hook, &opts);
		if (err)
			return err;
	}
	return 0;
}

static void iface_attach(struct sw_ifaces *x, int ifindex, const char *name, unsigned type)
{
	struct smtpwatch_bpf *s = x->loader->skel;
	struct sw_iface *f = iface_find(x, ifindex);
	int l2 = arphrd_l2(type), err;

	if (f && f->attached)
		return;
	if (!f) {
		if (x->n >= SW_MAX_IFACES) {
			x->attach_failures++;
			return;
		}
		f = &x->ifs[x->n++];
		memset(f, 0, sizeof(*f));
	}
	f->ifindex = ifindex;
	snprintf(f->name, sizeof(f->name), "%s", name);
	f->link_fd[0] = f->link_fd[1] = -1;
	if (l2 < 0) {
		snprintf(f->error, sizeof(f->error), "link type %u is not IP", type);
		return;
	}
	f->prog_fd[0] = bpf_program__fd(l2 ? s->progs.sw_tc_ingress : s->progs.sw_tc_ingress_l3);
	f->prog_fd[1] = bpf_program__fd(l2 ? s->progs.sw_tc_egress : s->progs.sw_tc_egress_l3);
	err = x->mode == SW_TC_TCX ? attach_tcx(x, f) : attach_clsact(x, f);
	if (err) {
		x->attach_failures++;
		snprintf(f->error, sizeof(f->error), "%s", strerror(-err));
		pr_warn("cannot attach to interface %s: %s\n", name, strerror(-err));
		return;
	}
	f->error[0] = 0;
	f->attached = true;
	pr_debug("attached to %s (%s)\n", name, sw_tc_mode_name(x->mode));
}

/* The agent's clsact filters on one interface, both directions: how many went. */
static int detach_filters(int ifindex)
{
	DECLARE_LIBBPF_OPTS(bpf_tc_hook, hook, .ifindex = ifindex);
	int n = 0;

	for (int d = 0; d < 2; d++) {
		DECLARE_LIBBPF_OPTS(bpf_tc_opts, opts, .handle = SW_TC_HANDLE, .priority = SW_TC_PRIO);

		hook.attach_point = d ? BPF_TC_EGRESS : BPF_TC_INGRESS;
		n += !bpf_tc_detach(&hook, &opts);
	}
	return n;
}

int sw_ifaces_remove_filters(const char *pin_dir)
{
	struct if_nameindex *ifs = if_nameindex();
	int n = 0;

	for (struct if_nameindex *i = ifs; i && i->if_index; i++) {
		char path[512];

		n += detach_filters(i->if_index);
		qdisc_mark_path(pin_dir, i->if_index, path, sizeof(path));
		if (!access(path, F_OK)) {
			DECLARE_LIBBPF_OPTS(bpf_tc_hook, hook, .ifindex = i->if_index,
					    .attach_point = BPF_TC_INGRESS | BPF_TC_EGRESS);

			bpf_tc_hook_destroy(&hook); /* the agent created it */
		}
	}
	if_freenameindex(ifs);
	return n;
}

static void iface_detach(struct sw_ifaces *x, struct sw_iface *f, bool gone)
{
	if (!f->attached)
		return;
	if (x->mode == SW_TC_TCX) {
		for (int d = 0; d < 2; d++) {
			char path[512];

			if (f->link_fd[d] >= 0)
				close(f->link_fd[d]);
			/* Pinned, a link outlives its fd: unpin what is not to be kept. */
			if (x->pin_dir && (gone || !x->keep)) {
				tcx_pin_path(x, f, d, path, sizeof(path));
				unlink(path);
			}
		}
	} else if (!gone && !x->keep) {
		DECLARE_LIBBPF_OPTS(bpf_tc_hook, hook, .ifindex = f->ifindex);

		detach_filters(f->ifindex);
		if (f->created_qdisc) {
			hook.attach_point = BPF_TC_INGRESS | BPF_TC_EGRESS;
			bpf_tc_hook_destroy(&hook);
		}
	}
	f->attached = false;
	f->link_fd[0] = f->link_fd[1] = -1;
}

/* Handle one RTM_NEWLINK/RTM_DELLINK message. */
static void link_msg(struct sw_ifaces *x, struct nlmsghdr *nh)
{
	struct ifinfomsg *ifi = NLMSG_DATA(nh);
	int len = nh->nlmsg_len - NLMSG_LENGTH(sizeof(*ifi));
	char name[SW_IFNAMSIZ] = "";
	struct sw_iface *f;

	for (struct rtattr *a = IFLA_RTA(ifi); RTA_OK(a, len); a = RTA_NEXT(a, len))
		if (a->rta_type == IFLA_IFNAME)
			snprintf(name, sizeof(name), "%s", (char *)RTA_DATA(a));
	f = iface_find(x, ifi->ifi_index);
	if (nh->nlmsg_type == RTM_DELLINK) {
		if (f) {
			iface_detach(x, f, true);
			*f = x->ifs[--x->n];
		}
		return;
	}
	if (ifi->ifi_flags & IFF_UP)
		iface_attach(x, ifi->ifi_index, name, ifi->ifi_type);
}

static void netlink_read(struct sw_ifaces *x, bool until_done)
{
	char buf[16384] __attribute__((aligned(NLMSG_ALIGNTO)));

	for (;;) {
		ssize_t n = recv(x->nl_fd, buf, sizeof(buf), until_done ? 0 : MSG_DONTWAIT);

		if (n <= 0)
			return;
		for (struct nlmsghdr *nh = (void *)buf; NLMSG_OK(nh, n); nh = NLMSG_NEXT(nh, n)) {
			if (nh->nlmsg_type == NLMSG_DONE || nh->nlmsg_type == NLMSG_ERROR) {
				if (until_done)
					return;
				continue;
			}
			if (nh->nlmsg_type == RTM_NEWLINK || nh->nlmsg_type == RTM_DELLINK)
				link_msg(x, nh);
		}
	}
}

void sw_ifaces_netlink(struct sw_ifaces *x)
{
	netlink_read(x, false);
}

/* tcx if a link can be created on lo, else clsact. */
static enum sw_tc_mode probe_mode(struct sw_loader *l)
{
	int fd = bpf_link_create(bpf_program__fd(l->skel->progs.sw_tc_ingress), 1, BPF_TCX_INGRESS,
				 NULL);

	if (fd < 0)
		return SW_TC_CLSACT;
	close(fd);
	return SW_TC_TCX;
}

int sw_ifaces_init(struct sw_ifaces *x, struct sw_loader *l, enum sw_tc_mode want,
		   const char *pin_dir, bool keep)
{
	struct sockaddr_nl sa = { .nl_family = AF_NETLINK, .nl_groups = RTMGRP_LINK };
	struct {
		struct nlmsghdr nh;
		struct ifinfomsg ifi;
	} req = {
		.nh = { .nlmsg_len = sizeof(req), .nlmsg_type = RTM_GETLINK,
			.nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP, .nlmsg_seq = 1 },
		.ifi = { .ifi_family = AF_UNSPEC },
	};
	int err;

	memset(x, 0, sizeof(*x));
	x->loader = l;
	x->pin_dir = pin_dir;
	x->keep = keep;
	x->mode = probe_mode(l);
	if (want == SW_TC_TCX && x->mode != SW_TC_TCX)
		return -EOPNOTSUPP;
	if (want != SW_TC_NONE)
		x->mode = want;
	x->nl_fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
	if (x->nl_fd < 0)
		return -errno;
	/* Subscribe before the dump, so no interface falls between the two. */
	if (bind(x->nl_fd, (struct sockaddr *)&sa, sizeof(sa)) ||
	    send(x->nl_fd, &req, sizeof(req), 0) < 0) {
		err = -errno;
		close(x->nl_fd);
		x->nl_fd = -1;
		return err;
	}
	netlink_read(x, true);
	return 0;
}

void sw_ifaces_detach_all(struct sw_ifaces *x)
{
	for (int i = 0; i < x->n; i++)
		iface_detach(x, &x->ifs[i], false);
	x->n = 0;
	if (x->nl_fd >= 0)
		close(x->nl_fd);
	x->nl_fd = -1;
}

int sw_ifaces_failed(const struct sw_ifaces *x)
{
	int n = 0;

	for (int i = 0; i < x->n; i++)
		n += !x->ifs[i].attached && x->ifs[i].error[0] && !strstr(x->ifs[i].error, "link type");
	return n;
}
