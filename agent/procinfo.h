/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
#ifndef SMTPWATCH_PROCINFO_H
#define SMTPWATCH_PROCINFO_H
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* User name for a uid, cached; "" when the uid has no name here. */
const char *sw_user_name(uint32_t uid);
/* /proc/PID/exe, for processes that exec'd before the agent started. */
int sw_proc_exe(pid_t pid, char *buf, size_t len);
/* /proc/PID/cmdline, NUL separated; returns the length or -errno. */
ssize_t sw_proc_cmdline(pid_t pid, char *buf, size_t len);
/* /proc/PID/cgroup's v2 path ("0::/..."). */
int sw_proc_cgroup(pid_t pid, char *buf, size_t len);
/*
 * The same path from the cgroup's id (what bpf_get_current_cgroup_id() gives),
 * through a file handle on the cgroup2 mount at root: it needs no live process.
 * 0 or -errno.
 */
int sw_cgroup_path_by_id(const char *root, uint64_t id, char *buf, size_t len);
/*
 * Container id (64 hex digits) named by a cgroup path or leaf name, as docker,
 * containerd, cri-o and podman name their scopes; "" when there is none.
 */
void sw_container_id(const char *cgroup, char *id, size_t len);

#endif
