// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * A configuration file decides what the kernel allows; a journal is evidence.
 * Whoever can write either, or replace it through a directory they can write,
 * can make the agent allow a spam bot or erase its traces. So both must be
 * writable by root (or the agent's own user) only, all the way up from /.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>
#include "fileperm.h"

static int trusted_uid(uid_t uid)
{
	return uid == 0 || uid == geteuid();
}

/* The directory part of path, made absolute without resolving the last name. */
static int parent_dir(const char *path, char *out, size_t len)
{
	const char *slash = strrchr(path, '/');
	char dir[PATH_MAX];

	if (!slash)
		snprintf(dir, sizeof(dir), ".");
	else if (slash == path)
		snprintf(dir, sizeof(dir), "/");
	else
		snprintf(dir, sizeof(dir), "%.*s", (int)(slash - path), path);
	if (!realpath(dir, out))
		return -errno;
	(void)len;
	return 0;
}

int sw_fileperm_dirs(const char *path, const char *what, unsigned flags, char *why, size_t len)
{
	char dir[PATH_MAX];
	int err, own = 1;

	err = parent_dir(path, dir, sizeof(dir));
	if (err) {
		snprintf(why, len, "%s: cannot check the directory of the %s: %s", path, what,
			 strerror(-err));
		return err;
	}
	for (;;) {
		struct stat st;
		char *slash;

		if (lstat(dir, &st)) {
			err = -errno;
			snprintf(why, len, "%s: cannot check the directory %s: %s", path, dir,
				 strerror(errno));
			return err;
		}
		if (!trusted_uid(st.st_uid)) {
			snprintf(why, len,
				 "%s: the directory %s is owned by uid %u, who could replace the %s: "
				 "refused (it must belong to root)",
				 path, dir, (unsigned)st.st_uid, what);
			return -EPERM;
		}
		if ((st.st_mode & (S_IWGRP | S_IWOTH)) &&
		    (!(st.st_mode & S_ISVTX) || (own && (flags & SW_PERM_DIR_PRIVATE)))) {
			snprintf(why, len,
				 "%s: the directory %s is writable by group or others (mode %04o), "
				 "who could replace the %s%s: refused (chmod go-w %s)",
				 path, dir, (unsigned)(st.st_mode & 07777), what,
				 st.st_mode & S_ISVTX ? " or its rotated files, sticky or not" : "",
				 dir);
			return -EPERM;
		}
		own = 0;
		if (!strcmp(dir, "/"))
			return 0;
		slash = strrchr(dir, '/');
		if (slash == dir)
			dir[1] = 0;
		else
			*slash = 0;
	}
}

int sw_fileperm_fd(int fd, const char *path, const char *what, unsigned flags, char *why,
		   size_t len)
{
	struct stat st;

	if (fstat(fd, &st)) {
		int err = -errno;

		snprintf(why, len, "%s: cannot check the %s: %s", path, what, strerror(errno));
		return err;
	}
	if (S_ISCHR(st.st_mode) && (flags & SW_PERM_DEVICE_OK))
		return 0;
	if (!S_ISREG(st.st_mode)) {
		snprintf(why, len, "%s: the %s is not a regular file: refused", path, what);
		return -EPERM;
	}
	if (!trusted_uid(st.st_uid)) {
		snprintf(why, len,
			 "%s: the %s is owned by uid %u, not by root: refused (chown root %s)", path,
			 what, (unsigned)st.st_uid, path);
		return -EPERM;
	}
	if (st.st_mode & (S_IWGRP | S_IWOTH)) {
		snprintf(why, len,
			 "%s: the %s is writable by group or others (mode %04o): refused (chmod go-w %s)",
			 path, what, (unsigned)(st.st_mode & 07777), path);
		return -EPERM;
	}
	return 0;
}

int sw_fileperm_open(const char *path, int oflags, mode_t mode, const char *what, unsigned flags,
		     char *why, size_t len)
{
	int fd, err;

	err = sw_fileperm_dirs(path, what, flags, why, len);
	if (err)
		return err;
	/* O_NONBLOCK: a FIFO planted at the path must not hang the agent in open(). */
	fd = open(path, oflags | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK, mode);
	if (fd < 0) {
		err = -errno;
		if (errno == ELOOP)
			snprintf(why, len, "%s: the %s is a symbolic link: refused (give the real path)",
				 path, what);
		else
			snprintf(why, len, "%s: cannot open the %s: %s", path, what, strerror(errno));
		return err;
	}
	err = sw_fileperm_fd(fd, path, what, flags, why, len);
	if (!err && !(oflags & O_NONBLOCK) && fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK))
		err = -errno;
	if (err) {
		close(fd);
		return err;
	}
	return fd;
}
