// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "procinfo.h"

#define USER_CACHE 64

static struct {
	uint32_t uid;
	int valid;
	char name[64];
} user_cache[USER_CACHE];

const char *sw_user_name(uint32_t uid)
{
	unsigned slot = uid % USER_CACHE;
	struct passwd pw, *res = NULL;
	char buf[1024];

	if (user_cache[slot].valid && user_cache[slot].uid == uid)
		return user_cache[slot].name;
	user_cache[slot].uid = uid;
	user_cache[slot].valid = 1;
	user_cache[slot].name[0] = 0;
	if (!getpwuid_r(uid, &pw, buf, sizeof(buf), &res) && res)
		snprintf(user_cache[slot].name, sizeof(user_cache[slot].name), "%s", pw.pw_name);
	return user_cache[slot].name;
}

int sw_proc_exe(pid_t pid, char *buf, size_t len)
{
	char path[64];
	ssize_t n;

	snprintf(path, sizeof(path), "/proc/%d/exe", pid);
	n = readlink(path, buf, len - 1);
	if (n < 0)
		return -errno;
	buf[n] = 0;
	return 0;
}

ssize_t sw_proc_cmdline(pid_t pid, char *buf, size_t len)
{
	char path[64];
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "/proc/%d/cmdline", pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	n = read(fd, buf, len);
	if (n < 0)
		n = -errno;
	close(fd);
	return n;
}

int sw_proc_cgroup(pid_t pid, char *buf, size_t len)
{
	char path[64], line[4096];
	int ret = -ENOENT;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/cgroup", pid);
	f = fopen(path, "re");
	if (!f)
		return -errno;
	while (fgets(line, sizeof(line), f)) {
		if (strncmp(line, "0::", 3))
			continue;
		line[strcspn(line, "\n")] = 0;
		snprintf(buf, len, "%s", line + 3);
		ret = 0;
		break;
	}
	fclose(f);
	return ret;
}

int sw_cgroup_path_by_id(const char *root, uint64_t id, char *buf, size_t len)
{
	struct {
		struct file_handle fh;
		uint64_t id;
	} h = { .fh = { .handle_bytes = sizeof(uint64_t), .handle_type = 0xfe /* FILEID_KERNFS */ } };
	size_t rl = strlen(root);
	char link[64], path[4096];
	int mfd, fd, ret = 0;
	ssize_t n;

	memcpy(h.fh.f_handle, &id, sizeof(id));
	mfd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (mfd < 0)
		return -errno;
	fd = open_by_handle_at(mfd, &h.fh, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		ret = -errno;
		close(mfd);
		return ret;
	}
	snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
	n = readlink(link, path, sizeof(path) - 1);
	if (n < 0) {
		ret = -errno;
	} else {
		path[n] = 0;
		/* Relative to the mount, as /proc/PID/cgroup says it: "/" for the root. */
		if (strncmp(path, root, rl) || (path[rl] && path[rl] != '/'))
			ret = -EXDEV;
		else
			snprintf(buf, len, "%s", path[rl] ? path + rl : "/");
	}
	close(fd);
	close(mfd);
	return ret;
}

/* The last run of exactly 64 hex digits in the path. */
void sw_container_id(const char *cgroup, char *id, size_t len)
{
	const char *p = cgroup, *best = NULL;

	if (len)
		id[0] = 0;
	while (p && *p) {
		size_t n = 0;

		while (isxdigit((unsigned char)p[n]) && !isupper((unsigned char)p[n]))
			n++;
		if (n == 64)
			best = p;
		p += n ? n : 1;
	}
	if (best && len > 64) {
		memcpy(id, best, 64);
		id[64] = 0;
	}
}
