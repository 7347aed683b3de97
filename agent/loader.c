// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <unistd.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include "smtpwatch.skel.h"
#include "loader.h"
#include "log.h"
#include "util.h"

int sw_verbose;

static int libbpf_print(enum libbpf_print_level level, const char *fmt, va_list args)
{
	if (level == LIBBPF_DEBUG && sw_verbose < 2)
		return 0;
	if (level == LIBBPF_INFO && !sw_verbose)
		return 0;
	return vfprintf(stderr, fmt, args);
}

/* CapEff from /proc/self/status: the capabilities this process can use now. */
static uint64_t effective_caps(void)
{
	char line[256];
	uint64_t caps = 0;
	FILE *f = fopen("/proc/self/status", "re");

	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f))
		if (!strncmp(line, "CapEff:", 7))
			caps = strtoull(line + 7, NULL, 16);
	fclose(f);
	return caps;
}

/* The cgroup2 mount, from mountinfo: hybrid hosts mount it beside v1 controllers. */
static int find_cgroup2(char *path, size_t len)
{
	char line[4096];
	int ret = -ENOENT;
	FILE *f = fopen("/proc/self/mountinfo", "re");

	if (!f)
		return -errno;
	while (fgets(line, sizeof(line), f)) {
		char *sep = strstr(line, " - ");
		char mnt[4096], fstype[64];

		if (!sep || sscanf(sep, " - %63s", fstype) != 1 || strcmp(fstype, "cgroup2"))
			continue;
		if (sscanf(line, "%*s %*s %*s %*s %4095s", mnt) != 1)
			continue;
		snprintf(path, len, "%s", mnt);
		ret = 0;
		break;
	}
	fclose(f);
	return ret;
}

int sw_check_environment(char *cgroup_path, size_t len)
{
	const uint64_t need = (1ULL << 39) | (1ULL << 38) | (1ULL << 12); /* BPF, PERFMON, NET_ADMIN */
	const uint64_t sys_admin = 1ULL << 21;
	uint64_t caps = effective_caps();

	if ((caps & need) != need && !((caps & sys_admin) && (caps & (1ULL << 12)))) {
		pr_warn("not privileged: run smtpwatch as root (it needs CAP_BPF, CAP_PERFMON and CAP_NET_ADMIN)\n");
		return EX_SW_NOPERM;
	}
	if (access("/sys/kernel/btf/vmlinux", R_OK)) {
		pr_warn("this kernel exposes no BTF at /sys/kernel/btf/vmlinux: run a kernel built with CONFIG_DEBUG_INFO_BTF=y\n");
		return EX_SW_UNAVAILABLE;
	}
	if (find_cgroup2(cgroup_path, len)) {
		pr_warn("cgroup v2 is not mounted: mount it with 'mount -t cgroup2 none /sys/fs/cgroup' (or /sys/fs/cgroup/unified on hybrid hosts)\n");
		return EX_SW_UNAVAILABLE;
	}
	return 0;
}

int sw_loader_open(struct sw_loader *l, const struct sw_loader_opts *o)
{
	struct rlimit rl = { RLIM_INFINITY, RLIM_INFINITY };
	int err;

	memset(l, 0, sizeof(*l));
	l->cgroup_fd = -1;
	libbpf_set_print(libbpf_print);
	/* Kernels before 5.11 charge BPF memory to RLIMIT_MEMLOCK. */
	setrlimit(RLIMIT_MEMLOCK, &rl);

	l->skel = smtpwatch_bpf__open();
	if (!l->skel) {
		err = -errno;
		pr_warn("cannot open the BPF object: %s\n", strerror(-err));
		return err;
	}
	for (int i = 0; i < o->nports; i++)
		l->skel->rodata->port_bits[o->ports[i] >> 6] |= 1ULL << (o->ports[i] & 63);
	if (o->ring_bytes) {
		err = bpf_map__set_max_entries(l->skel->maps.events, o->ring_bytes);
		if (err) {
			pr_warn("ring buffer size %llu is not usable: use a power of two of at least 4096 bytes\n",
				(unsigned long long)o->ring_bytes);
			return err;
		}
	}
	/* The empty program is only a yardstick for `make bench`. */
	bpf_program__set_autoload(l->skel->progs.sw_tc_empty, false);
	if (o->before_load) {
		err = o->before_load(o->ctx, l->skel);
		if (err)
			return err;
	}
	err = smtpwatch_bpf__load(l->skel);
	if (err) {
		pr_warn("the kernel refused the BPF programs (%s): run with -v to see the verifier log\n",
			strerror(-err));
		return err;
	}
	return 0;
}

static int add_link(struct sw_loader *l, struct bpf_link *link, const char *name)
{
	if (!link) {
		int err = -errno;

		pr_warn("cannot attach %s: %s\n", name, strerror(-err));
		return err;
	}
	l->links[l->nlinks] = link;
	l->link_names[l->nlinks++] = name;
	return 0;
}

/*
 * One hook. With a pin directory: a link pinned by an earlier agent gets this
 * program swapped in atomically (cgroup links), or is replaced after the new
 * one is attached (tracing links cannot be updated); a new link is pinned.
 */
static int attach_one(struct sw_loader *l, struct bpf_program *prog, bool cgroup, const char *name,
		      const char *pin_dir)
{
	char path[512] = "";
	struct bpf_link *old = NULL, *link;
	int err;

	if (pin_dir) {
		const char *base = strchr(name, '/') + 1;

		snprintf(path, sizeof(path), "%s/link_%s", pin_dir, base);
		old = access(path, F_OK) ? NULL : bpf_link__open(path);
		if (!old) {
			unlink(path); /* not a link, or a stale name */
		} else if (cgroup && !bpf_link__update_program(old, prog)) {
			return add_link(l, old, name);
		}
	}
	link = cgroup ? bpf_program__attach_cgroup(prog, l->cgroup_fd) : bpf_program__attach(prog);
	err = add_link(l, link, name);
	if (old) {
		/* The new hook runs: the old one may go. */
		bpf_link__unpin(old);
		bpf_link__destroy(old);
	}
	if (!err && pin_dir && (err = bpf_link__pin(link, path)))
		pr_warn("cannot pin %s at %s: %s\n", name, path, strerror(-err));
	return err;
}

int sw_loader_attach(struct sw_loader *l, const char *pin_dir)
{
	struct smtpwatch_bpf *s = l->skel;
	int err;

	l->cgroup_fd = open(l->cgroup_path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (l->cgroup_fd < 0) {
		err = -errno;
		pr_warn("cannot open the cgroup v2 root %s: %s\n", l->cgroup_path, strerror(-err));
		return err;
	}
	/* Links, not legacy attachments: unpinned, they go away with the agent, even if it crashes. */
	err = attach_one(l, s->progs.sw_connect4, true, "cgroup/connect4", pin_dir);
	err = err ?: attach_one(l, s->progs.sw_connect6, true, "cgroup/connect6", pin_dir);
	err = err ?: attach_one(l, s->progs.sw_skb_egress, true, "cgroup_skb/egress", pin_dir);
	err = err ?: attach_one(l, s->progs.sw_skb_ingress, true, "cgroup_skb/ingress", pin_dir);
	err = err ?: attach_one(l, s->progs.sw_sock_release, true, "cgroup/sock_release", pin_dir);
	err = err ?: attach_one(l, s->progs.sw_exec, false, "tp_btf/sched_process_exec", pin_dir);
	err = err ?: attach_one(l, s->progs.sw_exit, false, "tp_btf/sched_process_exit", pin_dir);
	return err;
}

void sw_loader_destroy(struct sw_loader *l)
{
	while (l->nlinks > 0)
		bpf_link__destroy(l->links[--l->nlinks]);
	for (int i = 0; i < 2; i++)
		if (l->ring_pos[i])
			munmap((void *)l->ring_pos[i], sysconf(_SC_PAGESIZE));
	if (l->cgroup_fd >= 0)
		close(l->cgroup_fd);
	l->cgroup_fd = -1;
	smtpwatch_bpf__destroy(l->skel);
	l->skel = NULL;
}

int sw_loader_stats(struct sw_loader *l, uint64_t out[SW_STAT_MAX])
{
	int ncpu = libbpf_num_possible_cpus();
	uint64_t *vals;
	int fd = bpf_map__fd(l->skel->maps.stats);

	if (ncpu <= 0)
		return -EINVAL;
	vals = calloc(ncpu, sizeof(*vals));
	if (!vals)
		return -ENOMEM;
	for (uint32_t k = 0; k < SW_STAT_MAX; k++) {
		out[k] = 0;
		if (bpf_map_lookup_elem(fd, &k, vals))
			continue;
		for (int c = 0; c < ncpu; c++)
			out[k] += vals[c];
	}
	free(vals);
	return 0;
}

int sw_loader_ring_fill(struct sw_loader *l, uint64_t *used, uint64_t *size)
{
	long page = sysconf(_SC_PAGESIZE);
	int fd = bpf_map__fd(l->skel->maps.events);

	/* The ring's consumer and producer positions live in its first two pages. */
	for (int i = 0; i < 2 && !l->ring_pos[i]; i++) {
		void *p = mmap(NULL, page, PROT_READ, MAP_SHARED, fd, i * page);

		if (p == MAP_FAILED)
			return -errno;
		l->ring_pos[i] = p;
	}
	*size = bpf_map__max_entries(l->skel->maps.events);
	*used = *l->ring_pos[1] - *l->ring_pos[0];
	return 0;
}

void sw_loader_forget_flows(struct sw_loader *l, const uint64_t *ids, uint32_t n)
{
	int fd = bpf_map__fd(l->skel->maps.flows);

	uint32_t done = n;

	/* One syscall per tick, not per session. A batch stops at a missing key
	 * (a flow the map had no room for): skip it and go on with the rest. */
	while (n > 0) {
		done = n;
		if (!bpf_map_delete_batch(fd, ids, &done, NULL))
			return;
		if (done >= n)
			return;
		ids += done + 1;
		n -= done + 1;
	}
}
