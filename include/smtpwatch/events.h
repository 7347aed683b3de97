/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * The event ABI shared by the kernel programs (bpf/) and the agent (agent/).
 * Plain fixed-width types only: this header is included both after vmlinux.h
 * and after <linux/types.h>. Every record starts with struct sw_hdr.
 */
#ifndef SMTPWATCH_EVENTS_H
#define SMTPWATCH_EVENTS_H

#ifndef __VMLINUX_H__
#include <linux/types.h>
#endif

#define SW_COMM_LEN 16
#define SW_EXE_LEN 256	     /* executable path, from the exec hook's dentry walk */
#define SW_ARGS_LEN 256	     /* argv, NUL separated, first bytes only */
#define SW_CGNAME_LEN 64     /* leaf name of the task's cgroup v2 directory */
#define SW_DATA_MAX 512	     /* payload bytes carried by one data record, at most */
#define SW_DATA_SMALL 128    /* ... by a small one (fewer bytes, a smaller record) */
#define SW_CAPTURE_CLIENT 2048 /* client bytes captured per flow (HELO..RCPT) */
#define SW_CAPTURE_SERVER 4096 /* server bytes captured per flow (banner, EHLO reply) */
#define SW_MAX_PORTS 16
#define SW_MAX_ANCESTORS 8 /* parent chain recorded at connect, nearest first */
#define SW_PORT_WORDS 1024 /* 65536-bit set of watched ports */

/* Flows seen only on the wire get ids with this bit set, never a socket cookie. */
#define SW_WIRE_ID_BIT (1ULL << 63)

enum sw_event_type {
	SW_EV_CONNECT = 1, /* cgroup/connect: process context of a new flow */
	SW_EV_DATA = 2,	   /* payload bytes of a flow, one direction */
	SW_EV_CLOSE = 3,   /* FIN, RST or socket release */
	SW_EV_WIRE = 4,	   /* SYN on the wire that no local socket accounts for */
	SW_EV_SYN = 5,	   /* 4-tuple of an attributed flow, from its SYN */
};

enum sw_dir {
	SW_DIR_CLIENT = 0, /* client -> server */
	SW_DIR_SERVER = 1, /* server -> client */
};

enum sw_close_reason {
	SW_CLOSE_FIN_CLIENT = 1 << 0,
	SW_CLOSE_FIN_SERVER = 1 << 1,
	SW_CLOSE_RST = 1 << 2,
	SW_CLOSE_RELEASE = 1 << 3,
};

enum sw_connect_flags {
	SW_CONN_EXEC_CACHED = 1 << 0, /* exe/args came from the exec hook */
	SW_CONN_EXEC_PARENT = 1 << 1, /* ... of the parent (forked, no exec) */
	SW_CONN_FLOW_LOST = 1 << 2,   /* flow map full: no payload will follow */
	SW_CONN_MAPPED_V4 = 1 << 3,   /* IPv6 socket, ::ffff:a.b.c.d destination */
	SW_CONN_FASTOPEN = 1 << 4,
	SW_CONN_DENIED = 1 << 5,      /* enforce mode: connect() failed with EPERM */
	SW_CONN_WOULD_DENY = 1 << 6,  /* monitor mode: enforce would have refused it */
};

/* Which allow rule let a connection through (sw_connect.policy). */
enum sw_policy_match {
	SW_POLICY_NONE = 0,	  /* port not enforced, or policy off */
	SW_POLICY_DESTINATION = 1, /* a relay anyone may reach */
	SW_POLICY_UID = 2,
	SW_POLICY_EXECUTABLE = 3, /* the image's device and inode */
	SW_POLICY_SCRIPT = 4,	  /* the #! script's path, as given to execve */
	SW_POLICY_CGROUP = 5,	  /* the task's cgroup or an ancestor (units, cgroups) */
	SW_POLICY_DENY = 6,	  /* no rule allows it */
};

#define SW_MODE_MONITOR 0
#define SW_MODE_ENFORCE 1
#define SW_CGROUP_LEVELS 8 /* ancestors of the task's cgroup checked against the allow list */

/* The policy switch, one entry of an array map: changes at run time (SIGHUP). */
struct sw_policy_cfg {
	__u32 mode;
	__u32 pad;
	__u64 port_bits[SW_PORT_WORDS]; /* enforced ports */
};

struct sw_exe_key {
	__u64 ino;
	__u32 dev; /* kernel encoding: major << 20 | minor */
	__u32 pad;
};

struct sw_lpm4 {
	__u32 prefixlen;
	__u8 addr[4];
};

struct sw_lpm6 {
	__u32 prefixlen;
	__u8 addr[16];
};

/* Counters in the per-CPU stats array, summed by the agent. */
enum sw_stat {
	SW_STAT_RING_FULL = 0,	 /* ring reserve failed: a record was lost */
	SW_STAT_FLOW_FULL,	 /* flow map full at connect */
	SW_STAT_WIRE_FULL,	 /* wire-flow map full at SYN */
	SW_STAT_EXEC_FULL,	 /* exec cache insert failed */
	SW_STAT_CONNECTS,	 /* watched-port connects seen */
	SW_STAT_DATA,		 /* data records emitted */
	SW_STAT_WIRE_FLOWS,	 /* unattributed wire flows */
	SW_STAT_TRUNCATED,	 /* payload beyond the per-flow capture bound */
	SW_STAT_DENIED,		 /* connects refused in enforce mode */
	SW_STAT_MAX,
};

struct sw_hdr {
	__u16 type;
	__u16 size; /* bytes of the whole record */
	__u32 cpu;
	__u64 ts_ns; /* bpf_ktime_get_ns(): CLOCK_MONOTONIC */
	__u64 id;    /* socket cookie, or SW_WIRE_ID_BIT | n for wire flows */
};

struct sw_addr {
	__u8 family; /* AF_INET or AF_INET6 (mapped v4 is stored as AF_INET) */
	__u8 pad;
	__u16 port; /* host order */
	__u32 pad2;
	__u8 addr[16]; /* IPv4 in the first four bytes */
};

struct sw_ancestor {
	__u32 pid;
	__u32 pad;
	__u64 start_ns;
	char comm[SW_COMM_LEN];
};

struct sw_connect {
	struct sw_hdr hdr;
	__u32 tgid;
	__u32 tid;
	__u32 ppid;
	__u32 uid;
	__u32 gid;
	__u32 flags; /* enum sw_connect_flags */
	__u64 cgroup_id;
	__u64 netns_cookie;
	__u64 start_ns;	       /* task start, boot-relative: with tgid, identifies it */
	__u64 parent_start_ns;
	struct sw_addr dst;
	char comm[SW_COMM_LEN];
	char exe_name[SW_COMM_LEN * 2]; /* mm->exe_file dentry name, always set */
	char cgroup_name[SW_CGNAME_LEN];
	__u16 exe_len;
	__u16 args_len;
	__u32 n_ancestors;
	__u32 policy; /* enum sw_policy_match */
	__u32 pad;
	struct sw_ancestor ancestors[SW_MAX_ANCESTORS];
	char exe[SW_EXE_LEN];
	char args[SW_ARGS_LEN];
};

/*
 * Payload bytes. A record is sizeof(struct sw_data) for more than SW_DATA_SMALL
 * bytes, else SW_DATA_REC_SMALL (data[] cut after SW_DATA_SMALL): hdr.size says
 * which, and len bytes of data[] are always inside it.
 */
struct sw_data {
	struct sw_hdr hdr;
	__u32 offset; /* byte offset of data[0] in its direction's stream */
	__u16 len;    /* bytes in data[] */
	__u8 dir;     /* enum sw_dir */
	__u8 pad;
	__u8 data[SW_DATA_MAX];
};
#define SW_DATA_HDR_LEN __builtin_offsetof(struct sw_data, data) /* bytes before data[] */
#define SW_DATA_REC_SMALL (SW_DATA_HDR_LEN + SW_DATA_SMALL)

struct sw_close {
	struct sw_hdr hdr;
	__u32 reason; /* enum sw_close_reason bits seen so far */
	__u32 pad;
};

/* SW_EV_SYN and SW_EV_WIRE: the flow's addresses as seen at that hook. */
struct sw_flow {
	struct sw_hdr hdr;
	struct sw_addr src;
	struct sw_addr dst;
	__u32 ifindex; /* 0 for cgroup hooks */
	__u32 pad;
};

/* Value of the exec cache, keyed by tgid. */
struct sw_exec {
	__u64 start_ns;
	__u64 script_hash; /* FNV-1a of the #! script path given to execve, 0 for binaries */
	__u16 exe_len;
	__u16 args_len;
	__u32 pad;
	char exe[SW_EXE_LEN];
	char args[SW_ARGS_LEN];
};

/* Kernel-side state of an attributed flow, keyed by socket cookie. */
struct sw_flow_state {
	__u32 client_isn;
	__u32 server_isn;
	__u32 closed; /* enum sw_close_reason bits already reported */
	__u8 have_client_isn;
	__u8 have_server_isn;
	__u16 pad;
};

/* Key and value of the wire view, for flows with no local socket. */
struct sw_wire_key {
	__u8 saddr[16];
	__u8 daddr[16];
	__u16 sport; /* network order */
	__u16 dport;
	__u8 family;
	__u8 pad[3];
};

struct sw_wire_state {
	__u64 id;
	__u32 client_isn;
	__u32 server_isn;
	__u32 closed;
	__u8 have_server_isn;
	__u8 pad[3];
};

/* SYN of an attributed flow, so that its NAT'd copy on the wire is recognised. */
struct sw_syn_key {
	__u8 daddr[16];
	__u32 isn;
	__u16 dport; /* network order */
	__u8 family;
	__u8 pad;
};

_Static_assert(sizeof(struct sw_hdr) == 24, "sw_hdr layout");
_Static_assert(sizeof(struct sw_addr) == 24, "sw_addr layout");
_Static_assert(sizeof(struct sw_ancestor) == 32, "sw_ancestor layout");
_Static_assert(sizeof(struct sw_connect) % 8 == 0, "sw_connect padding");
_Static_assert(__builtin_offsetof(struct sw_connect, exe) % 8 == 0, "sw_connect.exe alignment");
_Static_assert(sizeof(struct sw_data) == 24 + 8 + SW_DATA_MAX, "sw_data layout");
_Static_assert(sizeof(struct sw_close) == 32, "sw_close layout");
_Static_assert(sizeof(struct sw_flow) == 80, "sw_flow layout");
_Static_assert(sizeof(struct sw_wire_key) == 40, "sw_wire_key layout");
_Static_assert(sizeof(struct sw_syn_key) == 24, "sw_syn_key layout");
_Static_assert((SW_DATA_MAX & (SW_DATA_MAX - 1)) == 0, "SW_DATA_MAX is a power of two");
_Static_assert(SW_DATA_REC_SMALL % 8 == 0 && SW_DATA_SMALL < SW_DATA_MAX, "sw_data small record");

#endif
