// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * smtpwatch kernel side.
 *
 * cgroup/connect4,6   who opens a watched-port connection (exact task context),
 *                     keyed by socket cookie from then on.
 * cgroup_skb          the flow's bytes in both directions, after socket lookup, so
 *                     the cookie is the connecting socket's, in any netns.
 * tc (tcx/clsact)     the wire: a SYN to a watched port that no local socket and no
 *                     NAT'd copy of an attributed SYN accounts for is reported.
 * tp_btf exec/exit    executable path and argv cached per process, so a process
 *                     that exits right after its HELO is still named.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_tracing.h>
#include "smtpwatch/events.h"
#include "packet.bpf.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

/*
 * The tc programs only watch: they hand every packet on to whatever comes next.
 * TC_ACT_UNSPEC is tcx's TCX_NEXT and cls_bpf's "next filter"; TC_ACT_OK would
 * end the chain there, so that a program attached after ours (a firewall, or
 * another observer) never saw the packet.
 */
#define TC_ACT_UNSPEC (-1)
#define SOCK_STREAM 1
#define SK_PASS 1

/* Set by the agent between open and load. */
const volatile __u64 port_bits[SW_PORT_WORDS] = {};
const volatile __u32 capture_client = SW_CAPTURE_CLIENT;
const volatile __u32 capture_server = SW_CAPTURE_SERVER;
/* Tests only: segments the linear parser took go through sw_parse_tcp instead,
 * so that crafted packets (always linear under test_run) check both parsers. */
const volatile bool full_parse = false;
/* Data records wake the consumer only past this much unread ring data. */
const volatile __u64 wakeup_bytes = 256 * 1024;

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 2 * 1024 * 1024);
} events SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, SW_STAT_MAX);
	__type(key, __u32);
	__type(value, __u64);
} stats SEC(".maps");

/* Attributed flows. The agent deletes an entry when it closes the session. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, __u64);
	__type(value, struct sw_flow_state);
} flows SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, struct sw_syn_key);
	__type(value, __u64);
} syns SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 4096);
	__type(key, struct sw_wire_key);
	__type(value, struct sw_wire_state);
} wire_flows SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 8192);
	__type(key, __u32);
	__type(value, struct sw_exec);
} execs SEC(".maps");

/* Policy (enforce/monitor). The agent refills these on SIGHUP: additions first. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct sw_policy_cfg);
} policy_cfg SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, 1024);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct sw_lpm4);
	__type(value, __u8);
} allow_dst4 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, 1024);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct sw_lpm6);
	__type(value, __u8);
} allow_dst6 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, __u32);
	__type(value, __u8);
} allow_uids SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, struct sw_exe_key);
	__type(value, __u8);
} allow_exes SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, __u64);
	__type(value, __u8);
} allow_scripts SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, __u64);
	__type(value, __u8);
} allow_cgroups SEC(".maps");

/* Scratch for the exec record (too big for the stack) and the path walk. */
struct sw_scratch {
	struct sw_exec exec;
	char path[SW_EXE_LEN * 2];
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct sw_scratch);
} scratch SEC(".maps");

__u64 wire_seq = 0;

static __always_inline void stat_inc(__u32 idx)
{
	__u64 *v = bpf_map_lookup_elem(&stats, &idx);

	if (v)
		*v += 1;
}

static __always_inline bool port_watched(__u16 port)
{
	return port_bits[(port >> 6) & (SW_PORT_WORDS - 1)] & (1ULL << (port & 63));
}

static __always_inline void *ring_reserve(__u64 size)
{
	void *r = bpf_ringbuf_reserve(&events, size, 0);

	if (!r)
		stat_inc(SW_STAT_RING_FULL);
	return r;
}

static __always_inline void hdr_fill(struct sw_hdr *h, __u16 type, __u16 size, __u64 id)
{
	h->type = type;
	h->size = size;
	h->cpu = bpf_get_smp_processor_id();
	h->ts_ns = bpf_ktime_get_ns();
	h->id = id;
}

/* Data records batch their wakeups; a busy ring still wakes the consumer. */
static __always_inline __u64 data_wakeup_flags(void)
{
	return bpf_ringbuf_query(&events, BPF_RB_AVAIL_DATA) > wakeup_bytes ? BPF_RB_FORCE_WAKEUP
									    : BPF_RB_NO_WAKEUP;
}

/*
 * Set by the agent (through the mmapped .bss) while its 200 ms tick runs: it
 * reads the ring then anyway. It clears the flag one tick before it stops.
 */
volatile __u32 consumer_ticking = 0;

/* A record that starts a session wakes a sleeping consumer, not a ticking one. */
static __always_inline __u64 start_wakeup_flags(void)
{
	return consumer_ticking ? data_wakeup_flags() : BPF_RB_FORCE_WAKEUP;
}

/* ---- exec cache ---------------------------------------------------------------- */

/*
 * The barrier keeps the mask: clang would drop it as redundant, and the 6.1
 * verifier does not carry the compiler's bound over to the decremented copy.
 */
static __always_inline void put_slash(char *buf, int pos)
{
	__u32 q = pos;

	barrier_var(q);
	buf[q & (SW_EXE_LEN * 2 - 1)] = '/';
}

/*
 * Absolute path of a file, walking dentries up through mounts (bpf_d_path is not
 * available in these program types). Writes backwards into buf; returns the start.
 */
static __always_inline int path_walk(const struct path *path, char *buf)
{
	struct vfsmount *vfsmnt = BPF_CORE_READ(path, mnt);
	struct dentry *dentry = BPF_CORE_READ(path, dentry);
	__u64 mnt_off = bpf_core_field_offset(struct mount, mnt);
	struct mount *mnt = (void *)vfsmnt - mnt_off;
	int pos = SW_EXE_LEN - 1;
	int i;

	buf[pos & (SW_EXE_LEN * 2 - 1)] = 0;
	for (i = 0; i < 32; i++) {
		struct dentry *root = BPF_CORE_READ(vfsmnt, mnt_root);
		struct dentry *parent = BPF_CORE_READ(dentry, d_parent);
		__u32 len;

		if (dentry == root || dentry == parent) {
			struct mount *mp = BPF_CORE_READ(mnt, mnt_parent);

			if (mp == mnt || dentry != root)
				break;
			dentry = BPF_CORE_READ(mnt, mnt_mountpoint);
			mnt = mp;
			vfsmnt = (void *)mp + mnt_off;
			continue;
		}
		len = BPF_CORE_READ(dentry, d_name.len);
		if (len == 0 || len >= SW_EXE_LEN || (int)len + 1 > pos)
			break;
		pos -= len;
		if (pos < 0 || pos >= SW_EXE_LEN)
			break;
		bpf_probe_read_kernel(buf + pos, len & (SW_EXE_LEN - 1),
				      BPF_CORE_READ(dentry, d_name.name));
		pos--;
		if (pos < 0)
			break;
		put_slash(buf, pos);
		dentry = parent;
	}
	if (pos == SW_EXE_LEN - 1) { /* nothing walked: the root itself */
		pos--;
		put_slash(buf, pos);
	}
	return pos;
}

/* FNV-1a 64 of a NUL-terminated string; the agent hashes configured paths alike. */
static __always_inline __u64 fnv1a(const char *str)
{
	__u64 h = 0xcbf29ce484222325ULL;
	int i;

	for (i = 0; i < SW_EXE_LEN; i++) {
		if (!str[i])
			break;
		h ^= (__u8)str[i];
		h *= 0x100000001b3ULL;
	}
	return h;
}

SEC("tp_btf/sched_process_exec")
int BPF_PROG(sw_exec, struct task_struct *p, pid_t old_pid, struct linux_binprm *bprm)
{
	__u32 zero = 0, tgid = p->tgid;
	struct sw_scratch *s = bpf_map_lookup_elem(&scratch, &zero);
	struct mm_struct *mm;
	__u64 a0, a1, alen;
	int pos, plen;

	if (!s)
		return 0;
	s->exec.start_ns = BPF_CORE_READ(p, group_leader, start_time);
	pos = path_walk(&bprm->file->f_path, s->path);
	plen = SW_EXE_LEN - 1 - pos;
	if (plen <= 0 || plen >= SW_EXE_LEN || pos < 0 || pos >= SW_EXE_LEN)
		plen = 0;
	s->exec.exe_len = plen;
	if (plen > 0)
		bpf_probe_read_kernel(s->exec.exe, plen & (SW_EXE_LEN - 1),
				      s->path + (pos & (SW_EXE_LEN - 1)));

	mm = BPF_CORE_READ(p, mm);
	a0 = BPF_CORE_READ(mm, arg_start);
	a1 = BPF_CORE_READ(mm, arg_end);
	alen = a1 > a0 ? a1 - a0 : 0;
	if (alen >= SW_ARGS_LEN)
		alen = SW_ARGS_LEN - 1;
	s->exec.args_len = 0;
	if (alen > 0 && !bpf_probe_read_user(s->exec.args, alen & (SW_ARGS_LEN - 1), (void *)a0))
		s->exec.args_len = alen;
	/* A #! script: its path as given to execve names it for the policy. */
	s->exec.script_hash = 0;
	if (BPF_CORE_READ(bprm, interp) != BPF_CORE_READ(bprm, filename) &&
	    bpf_probe_read_kernel_str(s->path, SW_EXE_LEN, BPF_CORE_READ(bprm, filename)) > 0)
		s->exec.script_hash = fnv1a(s->path);
	if (bpf_map_update_elem(&execs, &tgid, &s->exec, BPF_ANY))
		stat_inc(SW_STAT_EXEC_FULL);
	return 0;
}

SEC("tp_btf/sched_process_exit")
int BPF_PROG(sw_exit, struct task_struct *p)
{
	__u32 tgid = p->tgid;

	/* Only when the whole process goes: its connects already copied the entry. */
	if (p->pid == tgid)
		bpf_map_delete_elem(&execs, &tgid);
	return 0;
}

/* ---- connect ------------------------------------------------------------------- */

/*
 * Who may open an enforced port: a relay destination anyone may reach, an
 * allowed uid, executable (device and inode of the image), #! script, or cgroup
 * (the task's own or an ancestor: a unit's processes sit in sub-cgroups).
 */
static __always_inline __u32 policy_match(struct task_struct *task, __u8 family,
					  const __u32 *addr, __u32 uid, struct sw_exec *x)
{
	struct sw_exe_key ek = {};
	struct file *exe;
	int i;

	if (family == AF_INET) {
		struct sw_lpm4 k = { .prefixlen = 32 };

		__builtin_memcpy(k.addr, addr, 4);
		if (bpf_map_lookup_elem(&allow_dst4, &k))
			return SW_POLICY_DESTINATION;
	} else {
		struct sw_lpm6 k = { .prefixlen = 128 };

		__builtin_memcpy(k.addr, addr, 16);
		if (bpf_map_lookup_elem(&allow_dst6, &k))
			return SW_POLICY_DESTINATION;
	}
	if (bpf_map_lookup_elem(&allow_uids, &uid))
		return SW_POLICY_UID;
	exe = BPF_CORE_READ(task, mm, exe_file);
	ek.ino = BPF_CORE_READ(exe, f_inode, i_ino);
	ek.dev = BPF_CORE_READ(exe, f_inode, i_sb, s_dev);
	if (bpf_map_lookup_elem(&allow_exes, &ek))
		return SW_POLICY_EXECUTABLE;
	if (x && x->script_hash && bpf_map_lookup_elem(&allow_scripts, &x->script_hash))
		return SW_POLICY_SCRIPT;
	for (i = 0; i <= SW_CGROUP_LEVELS; i++) {
		__u64 cg = i == SW_CGROUP_LEVELS ? bpf_get_current_cgroup_id()
						 : bpf_get_current_ancestor_cgroup_id(i + 1);

		if (cg && bpf_map_lookup_elem(&allow_cgroups, &cg))
			return SW_POLICY_CGROUP;
	}
	return SW_POLICY_DENY;
}

/*
 * The parent chain up to init, nearest first: its members may exit before we read it.
 * task is the BTF-typed current task: each field is a direct load the verifier checks
 * (a fault reads 0), a fraction of a bpf_probe_read_kernel call each.
 */
static __always_inline void fill_ancestors(struct sw_connect *e, struct task_struct *task)
{
	struct task_struct *t = task->real_parent;
	__u32 n = 0;
	int i;

	for (i = 0; i < SW_MAX_ANCESTORS; i++) {
		struct sw_ancestor *a = &e->ancestors[i];
		struct task_struct *gl;
		__u32 pid;

		a->pid = 0;
		a->pad = 0;
		a->start_ns = 0;
		__builtin_memset(a->comm, 0, sizeof(a->comm));
		if (!t || n != (__u32)i)
			continue;
		pid = t->tgid;
		if (!pid)
			continue;
		a->pid = pid;
		gl = t->group_leader;
		a->start_ns = gl->start_time;
		__builtin_memcpy(a->comm, gl->comm, sizeof(a->comm));
		n++;
		t = pid == 1 ? NULL : t->real_parent;
	}
	e->n_ancestors = n;
}

/* This process's exec record, or its parent's when it forked without exec. */
static __always_inline struct sw_exec *lookup_exec(struct task_struct *task, __u32 tgid)
{
	__u64 start = task->group_leader->start_time;
	__u32 ptgid = task->real_parent->tgid;
	struct sw_exec *x = bpf_map_lookup_elem(&execs, &tgid);

	if (x && x->start_ns == start)
		return x;
	x = bpf_map_lookup_elem(&execs, &ptgid);
	if (x && x->start_ns == task->real_parent->group_leader->start_time)
		return x;
	return NULL;
}

static __always_inline int on_connect(struct bpf_sock_addr *ctx, __u8 family, __u32 flags,
				      const __u32 *addr)
{
	struct task_struct *task = bpf_get_current_task_btf();
	__u64 cookie = bpf_get_socket_cookie(ctx);
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	__u64 uid_gid = bpf_get_current_uid_gid();
	struct sw_flow_state fs = {};
	struct sw_connect *e;
	struct sw_exec *x;
	__u32 tgid = pid_tgid >> 32, ptgid, zero = 0;
	const void *name;

	struct sw_policy_cfg *pc = bpf_map_lookup_elem(&policy_cfg, &zero);
	__u32 verdict = SW_POLICY_NONE;
	__u16 dport = bpf_ntohs(ctx->user_port);

	stat_inc(SW_STAT_CONNECTS);
	x = lookup_exec(task, tgid);
	if (pc && (pc->port_bits[(dport >> 6) & (SW_PORT_WORDS - 1)] & (1ULL << (dport & 63)))) {
		verdict = policy_match(task, family, addr, (__u32)uid_gid, x);
		if (verdict == SW_POLICY_DENY)
			flags |= pc->mode == SW_MODE_ENFORCE ? SW_CONN_DENIED : SW_CONN_WOULD_DENY;
	}
	if (flags & SW_CONN_DENIED) {
		stat_inc(SW_STAT_DENIED);
	} else if (bpf_map_update_elem(&flows, &cookie, &fs, BPF_ANY)) {
		stat_inc(SW_STAT_FLOW_FULL);
		flags |= SW_CONN_FLOW_LOST;
	}
	e = ring_reserve(sizeof(*e));
	if (!e)
		return flags & SW_CONN_DENIED ? 0 : SK_PASS;
	hdr_fill(&e->hdr, SW_EV_CONNECT, sizeof(*e), cookie);
	e->policy = verdict;
	e->pad = 0;
	e->tgid = tgid;
	e->tid = (__u32)pid_tgid;
	e->uid = (__u32)uid_gid;
	e->gid = uid_gid >> 32;
	e->cgroup_id = bpf_get_current_cgroup_id();
	e->netns_cookie = bpf_get_netns_cookie(ctx);
	e->start_ns = task->group_leader->start_time;
	ptgid = task->real_parent->tgid;
	e->ppid = ptgid;
	e->parent_start_ns = task->real_parent->group_leader->start_time;
	e->dst.family = family;
	e->dst.pad = 0;
	e->dst.pad2 = 0;
	e->dst.port = bpf_ntohs(ctx->user_port);
	__builtin_memset(e->dst.addr, 0, sizeof(e->dst.addr));
	if (family == AF_INET) {
		__builtin_memcpy(e->dst.addr, addr, 4);
	} else {
		__builtin_memcpy(e->dst.addr, addr, 16);
	}
	/* The process's name, not the calling thread's: an io_uring SQPOLL thread
	 * (iou-sqp-PID) or a worker thread connects on behalf of the process. */
	__builtin_memcpy(e->comm, task->group_leader->comm, sizeof(e->comm));
	if (!e->comm[0])
		bpf_get_current_comm(e->comm, sizeof(e->comm));
	name = task->mm->exe_file->f_path.dentry->d_name.name;
	if (!name || bpf_probe_read_kernel_str(e->exe_name, sizeof(e->exe_name), name) < 0)
		e->exe_name[0] = 0;
	name = task->cgroups->dfl_cgrp->kn->name;
	if (!name || bpf_probe_read_kernel_str(e->cgroup_name, sizeof(e->cgroup_name), name) < 0)
		e->cgroup_name[0] = 0;
	e->exe_len = 0;
	e->args_len = 0;
	fill_ancestors(e, task);

	if (x) {
		flags |= x->start_ns == e->start_ns ? SW_CONN_EXEC_CACHED : SW_CONN_EXEC_PARENT;
		__u32 el = x->exe_len, al = x->args_len;

		/* The barrier keeps the masks: the verifier needs the bound in the register. */
		barrier_var(el);
		el &= SW_EXE_LEN - 1;
		barrier_var(al);
		al &= SW_ARGS_LEN - 1;
		if (el && !bpf_probe_read_kernel(e->exe, el, x->exe))
			e->exe_len = el;
		if (al && !bpf_probe_read_kernel(e->args, al, x->args))
			e->args_len = al;
	}
	e->flags = flags;
	bpf_ringbuf_submit(e, start_wakeup_flags());
	/* 0 makes connect() fail with EPERM before any packet leaves. */
	return flags & SW_CONN_DENIED ? 0 : SK_PASS;
}

SEC("cgroup/connect4")
int sw_connect4(struct bpf_sock_addr *ctx)
{
	__u32 addr;

	if (ctx->type != SOCK_STREAM || ctx->protocol != IPPROTO_TCP)
		return SK_PASS;
	if (!port_watched(bpf_ntohs(ctx->user_port)))
		return SK_PASS;
	addr = ctx->user_ip4;
	return on_connect(ctx, AF_INET, 0, &addr);
}

SEC("cgroup/connect6")
int sw_connect6(struct bpf_sock_addr *ctx)
{
	__u32 addr[4];

	if (ctx->type != SOCK_STREAM || ctx->protocol != IPPROTO_TCP)
		return SK_PASS;
	if (!port_watched(bpf_ntohs(ctx->user_port)))
		return SK_PASS;
	addr[0] = ctx->user_ip6[0];
	addr[1] = ctx->user_ip6[1];
	addr[2] = ctx->user_ip6[2];
	addr[3] = ctx->user_ip6[3];
	/* ::ffff:a.b.c.d is an IPv4 connection made through an IPv6 socket. */
	if (addr[0] == 0 && addr[1] == 0 && addr[2] == bpf_htonl(0xffff))
		return on_connect(ctx, AF_INET, SW_CONN_MAPPED_V4, &addr[3]);
	return on_connect(ctx, AF_INET6, 0, addr);
}

/* ---- payload ------------------------------------------------------------------- */

static __always_inline void emit_flow(__u16 type, __u64 id, const struct sw_pkt *p,
				      __u32 ifindex)
{
	struct sw_flow *f = ring_reserve(sizeof(*f));

	if (!f)
		return;
	hdr_fill(&f->hdr, type, sizeof(*f), id);
	__builtin_memset(&f->src, 0, sizeof(f->src));
	__builtin_memset(&f->dst, 0, sizeof(f->dst));
	f->src.family = f->dst.family = p->key.family;
	f->src.port = bpf_ntohs(p->key.sport);
	f->dst.port = bpf_ntohs(p->key.dport);
	__builtin_memcpy(f->src.addr, p->key.saddr, 16);
	__builtin_memcpy(f->dst.addr, p->key.daddr, 16);
	f->ifindex = ifindex;
	f->pad = 0;
	/* A wire flow starts a session: wake the agent unless it ticks. A SYN
	 * follows its connect record, which already woke it and armed its tick. */
	bpf_ringbuf_submit(f, type == SW_EV_WIRE ? start_wakeup_flags() : data_wakeup_flags());
}

static __always_inline void emit_close(__u64 id, __u32 reason)
{
	struct sw_close *c = ring_reserve(sizeof(*c));

	if (!c)
		return;
	hdr_fill(&c->hdr, SW_EV_CLOSE, sizeof(*c), id);
	c->reason = reason;
	c->pad = 0;
	/* The agent ticks while it has open sessions: the close is read within a tick. */
	bpf_ringbuf_submit(c, data_wakeup_flags());
}

/*
 * Bound a helper's size argument to [1, max] in the very register the call
 * uses: the compiler otherwise tests one copy and passes another, and the 6.1
 * verifier rejects a possibly-zero size. max is a literal.
 */
#define clamp_size(n, max)                                          \
	({                                                          \
		__u64 __n = (n);                                    \
		asm volatile("if %0 <= " #max " goto +1\n\t"        \
			     "%0 = " #max "\n\t"                    \
			     "if %0 > 0 goto +1\n\t"                \
			     "%0 = 1\n\t"                           \
			     : "+r"(__n));                          \
		__n;                                                \
	})
_Static_assert(SW_DATA_SMALL == 128 && SW_DATA_MAX == 512, "clamp_size literals");

/*
 * One data record of n (1..SW_DATA_MAX) payload bytes from src in the packet.
 * Records come in two sizes, each a constant reserve for the verifier: a small
 * one holds most lines of a dialogue (a command, a one-line reply), and a ring
 * that takes four times as many of them is touched four times less per line.
 */
static __always_inline int emit_rec(struct __sk_buff *skb, __u64 id, __u8 dir, __u32 off,
				    __u32 src, __u32 n, bool last)
{
	struct sw_data *d;
	__u64 sz;

	if (n <= SW_DATA_SMALL) {
		d = bpf_ringbuf_reserve(&events, SW_DATA_REC_SMALL, 0);
		if (!d)
			goto full;
		hdr_fill(&d->hdr, SW_EV_DATA, SW_DATA_REC_SMALL, id);
		sz = clamp_size(n, 128);
	} else {
		d = bpf_ringbuf_reserve(&events, sizeof(*d), 0);
		if (!d)
			goto full;
		hdr_fill(&d->hdr, SW_EV_DATA, sizeof(*d), id);
		sz = clamp_size(n, 512);
	}
	if (bpf_skb_load_bytes(skb, src, d->data, sz)) {
		bpf_ringbuf_discard(d, BPF_RB_NO_WAKEUP);
		return -1;
	}
	d->offset = off;
	d->len = sz;
	d->dir = dir;
	d->pad = 0;
	stat_inc(SW_STAT_DATA);
	/* The last record of the segment decides the wakeup for all of them. */
	bpf_ringbuf_submit(d, last ? data_wakeup_flags() : BPF_RB_NO_WAKEUP);
	return 0;
full:
	stat_inc(SW_STAT_RING_FULL);
	return -1;
}

/*
 * Copy the part of this segment's payload that lies inside the capture bound, in
 * records of at most SW_DATA_MAX bytes (a GSO segment or a long pipelined burst
 * is larger than one record).
 */
#define SW_DATA_CHUNKS (SW_CAPTURE_SERVER / SW_DATA_MAX)
static __always_inline void emit_data(struct __sk_buff *skb, __u64 id, __u8 dir,
				      const struct sw_pkt *p, __u32 isn, __u32 cap)
{
	__u32 off = p->seq - isn - 1; /* the SYN takes one sequence number */
	__u32 len = p->payload_len, done = 0;
	int i;

	if (!len)
		return;
	if (off >= cap) {
		/* Past the bound, or a retransmit from before the ISN we saw. */
		stat_inc(SW_STAT_TRUNCATED);
		return;
	}
	if (len > cap - off) {
		len = cap - off;
		stat_inc(SW_STAT_TRUNCATED);
	}
	for (i = 0; i < SW_DATA_CHUNKS && done < len; i++) {
		__u32 n = len - done;

		if (n > SW_DATA_MAX)
			n = SW_DATA_MAX;
		if (emit_rec(skb, id, dir, off + done, p->payload_off + done, n, done + n >= len))
			return;
		done += n;
	}
}
_Static_assert(SW_CAPTURE_SERVER >= SW_CAPTURE_CLIENT, "chunk count covers both bounds");

static __always_inline __u32 close_bits(const struct sw_pkt *p, __u8 dir)
{
	__u32 r = 0;

	if (p->flags & TCP_RST)
		r |= SW_CLOSE_RST;
	if (p->flags & TCP_FIN)
		r |= dir == SW_DIR_CLIENT ? SW_CLOSE_FIN_CLIENT : SW_CLOSE_FIN_SERVER;
	return r;
}

static __always_inline void syn_remember(const struct sw_pkt *p)
{
	struct sw_syn_key k = {};
	__u64 one = 1;

	__builtin_memcpy(k.daddr, p->key.daddr, 16);
	k.isn = p->seq;
	k.dport = p->key.dport;
	k.family = p->key.family;
	bpf_map_update_elem(&syns, &k, &one, BPF_ANY);
}

/*
 * A local socket's packets. Egress carries the client's bytes (to the watched
 * port), ingress the server's (from it); other sockets leave after the port test.
 */
static __always_inline int skb_flow(struct __sk_buff *skb, __u8 dir)
{
	struct sw_flow_state *fs;
	struct sw_linear h;
	struct sw_pkt p;
	__u64 cookie;
	__u32 bits, rport;
	int lin;

	/* Fast path, before any helper: the socket's own remote port is the
	 * server's for a client socket, in both directions; every other socket
	 * leaves here. It is network order, in the upper 16 bits on little-endian
	 * kernels (the lower on others): a connected socket's port is never 0. */
	rport = skb->remote_port;
	rport = rport >> 16 ? rport >> 16 : rport;
	if (!port_watched(bpf_ntohs((__u16)rport)))
		return SK_PASS;
	/* skb->data is the network header here. */
	lin = sw_linear_tcp(skb, 0, &h);
	if (lin == SW_LIN_TCP && !full_parse) {
		if (sw_linear_fill(skb, 0, &h, &p))
			return SK_PASS;
	} else if (lin == SW_LIN_OTHER || sw_parse_tcp(skb, 0, &p)) {
		return SK_PASS;
	}
	if (!port_watched(bpf_ntohs(dir == SW_DIR_CLIENT ? p.key.dport : p.key.sport)))
		return SK_PASS;
	cookie = bpf_get_socket_cookie(skb);
	fs = bpf_map_lookup_elem(&flows, &cookie);
	if (!fs)
		return SK_PASS;

	if (p.flags & TCP_SYN) {
		if (dir == SW_DIR_CLIENT && !(p.flags & TCP_ACK)) {
			if (!fs->have_client_isn) {
				fs->client_isn = p.seq;
				fs->have_client_isn = 1;
				syn_remember(&p);
				emit_flow(SW_EV_SYN, cookie, &p, 0);
			}
		} else if (dir == SW_DIR_SERVER && (p.flags & TCP_ACK)) {
			fs->server_isn = p.seq;
			fs->have_server_isn = 1;
		}
	} else if (dir == SW_DIR_CLIENT ? fs->have_client_isn : fs->have_server_isn) {
		emit_data(skb, cookie, dir, &p, dir == SW_DIR_CLIENT ? fs->client_isn : fs->server_isn,
			  dir == SW_DIR_CLIENT ? capture_client : capture_server);
	}
	bits = close_bits(&p, dir);
	if (bits & ~fs->closed) {
		fs->closed |= bits;
		emit_close(cookie, fs->closed);
	}
	return SK_PASS;
}

SEC("cgroup_skb/egress")
int sw_skb_egress(struct __sk_buff *skb)
{
	return skb_flow(skb, SW_DIR_CLIENT);
}

SEC("cgroup_skb/ingress")
int sw_skb_ingress(struct __sk_buff *skb)
{
	return skb_flow(skb, SW_DIR_SERVER);
}

SEC("cgroup/sock_release")
int sw_sock_release(struct bpf_sock *sk)
{
	struct sw_flow_state *fs;
	__u64 cookie;

	if (sk->protocol != IPPROTO_TCP)
		return 1;
	cookie = bpf_get_socket_cookie(sk);
	fs = bpf_map_lookup_elem(&flows, &cookie);
	if (fs && !(fs->closed & SW_CLOSE_RELEASE)) {
		fs->closed |= SW_CLOSE_RELEASE;
		emit_close(cookie, fs->closed);
	}
	/* No packet carries this cookie any more: the entry goes now, not when the
	 * agent has reported the session, so a flood of short connections does not
	 * fill the map (the agent forgets only flows that ended without a release). */
	if (fs)
		bpf_map_delete_elem(&flows, &cookie);
	return 1;
}

/* ---- wire view ----------------------------------------------------------------- */

/* A SYN leaving this host: attributed if its socket or its pre-NAT copy was seen. */
static __always_inline void wire_syn(struct __sk_buff *skb, const struct sw_pkt *p)
{
	struct sw_wire_state ws = {};
	struct sw_syn_key sk = {};
	__u64 cookie = bpf_get_socket_cookie(skb);

	if (cookie && bpf_map_lookup_elem(&flows, &cookie))
		return;
	__builtin_memcpy(sk.daddr, p->key.daddr, 16);
	sk.isn = p->seq;
	sk.dport = p->key.dport;
	sk.family = p->key.family;
	if (bpf_map_lookup_elem(&syns, &sk))
		return;
	if (bpf_map_lookup_elem(&wire_flows, &p->key))
		return; /* SYN retransmit */
	ws.id = SW_WIRE_ID_BIT | __sync_fetch_and_add(&wire_seq, 1);
	ws.client_isn = p->seq;
	if (bpf_map_update_elem(&wire_flows, &p->key, &ws, BPF_NOEXIST)) {
		stat_inc(SW_STAT_WIRE_FULL);
		return;
	}
	stat_inc(SW_STAT_WIRE_FLOWS);
	emit_flow(SW_EV_WIRE, ws.id, p, skb->ifindex);
}

/* One segment to (egress) or from (ingress) a watched port, on the wire. */
static __always_inline int tc_flow(struct __sk_buff *skb, const struct sw_pkt *p, bool egress)
{
	struct sw_wire_state *ws;
	struct sw_pkt r;
	__u8 dir = egress ? SW_DIR_CLIENT : SW_DIR_SERVER;
	__u32 bits;

	if (egress && (p->flags & (TCP_SYN | TCP_ACK)) == TCP_SYN) {
		wire_syn(skb, p);
		return TC_ACT_UNSPEC;
	}
	/* Flows are keyed in the client's direction. */
	if (egress) {
		ws = bpf_map_lookup_elem(&wire_flows, &p->key);
	} else {
		sw_key_reverse(&r, p);
		ws = bpf_map_lookup_elem(&wire_flows, &r.key);
	}
	if (!ws)
		return TC_ACT_UNSPEC;
	if (!egress && (p->flags & (TCP_SYN | TCP_ACK)) == (TCP_SYN | TCP_ACK)) {
		ws->server_isn = p->seq;
		ws->have_server_isn = 1;
	} else if (egress || ws->have_server_isn) {
		emit_data(skb, ws->id, dir, p, egress ? ws->client_isn : ws->server_isn,
			  egress ? capture_client : capture_server);
	}
	bits = close_bits(p, dir);
	if (bits & ~ws->closed) {
		ws->closed |= bits;
		emit_close(ws->id, ws->closed);
	}
	return TC_ACT_UNSPEC;
}

/*
 * Fast path: everything that is not TCP to (egress) or from (ingress) a watched
 * port leaves after a few loads from the linear header, with no helper call. The
 * headers are parsed once; the full parser only sees what the linear data hides.
 */
static __always_inline int tc_handle(struct __sk_buff *skb, __u32 nh, bool egress)
{
	struct sw_linear h;
	struct sw_pkt p;
	int lin = sw_linear_tcp(skb, nh, &h);

	if (lin == SW_LIN_TCP) {
		if (!port_watched(bpf_ntohs(egress ? h.th->dest : h.th->source)))
			return TC_ACT_UNSPEC;
		if (full_parse)
			lin = SW_LIN_SLOW;
		else if (sw_linear_fill(skb, nh, &h, &p))
			return TC_ACT_UNSPEC;
	}
	if (lin != SW_LIN_TCP &&
	    (lin == SW_LIN_OTHER || sw_parse_tcp(skb, nh, &p) ||
	     !port_watched(bpf_ntohs(egress ? p.key.dport : p.key.sport))))
		return TC_ACT_UNSPEC;
	return tc_flow(skb, &p, egress);
}

/* Ethernet-like devices (and lo) carry a 14-byte L2 header; L3 devices none. */
SEC("tc")
int sw_tc_ingress(struct __sk_buff *skb)
{
	return tc_handle(skb, 14, false);
}

SEC("tc")
int sw_tc_egress(struct __sk_buff *skb)
{
	return tc_handle(skb, 14, true);
}

SEC("tc")
int sw_tc_ingress_l3(struct __sk_buff *skb)
{
	return tc_handle(skb, 0, false);
}

SEC("tc")
int sw_tc_egress_l3(struct __sk_buff *skb)
{
	return tc_handle(skb, 0, true);
}

/* The floor for cost measurements: an attached program that does nothing. */
SEC("tc")
int sw_tc_empty(struct __sk_buff *skb)
{
	return TC_ACT_UNSPEC;
}
