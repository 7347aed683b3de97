/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Files the agent trusts (its configuration) or appends evidence to (the journal)
 * must not be writable by anyone but root or the agent's own user: the rules are
 * in docs/config.md ("Who may write the configuration and the journal").
 */
#ifndef SMTPWATCH_FILEPERM_H
#define SMTPWATCH_FILEPERM_H
#include <stddef.h>
#include <sys/types.h>

enum sw_perm_flags {
	SW_PERM_DEVICE_OK = 1 << 0,  /* a character device (/dev/null) is accepted */
	SW_PERM_DIR_PRIVATE = 1 << 1, /* the file's own directory: no group/other write, even sticky */
};

/*
 * Every directory from the file's own up to / : owned by root or the agent's
 * user, and not writable by group or others unless sticky (or not at all with
 * SW_PERM_DIR_PRIVATE for the file's own directory). 0, or -EPERM (-errno when
 * a directory cannot be examined) with one sentence in why.
 */
int sw_fileperm_dirs(const char *path, const char *what, unsigned flags, char *why, size_t len);
/* The opened file itself: a regular file (or a character device with
 * SW_PERM_DEVICE_OK), owned by root or the agent's user, no group/other write. */
int sw_fileperm_fd(int fd, const char *path, const char *what, unsigned flags, char *why,
		   size_t len);
/*
 * Checks the directories, opens path with O_NOFOLLOW | O_CLOEXEC added to
 * oflags, checks the file. The fd, or -errno with one sentence in why. `what`
 * names the file in the sentence ("configuration file", "journal").
 */
int sw_fileperm_open(const char *path, int oflags, mode_t mode, const char *what, unsigned flags,
		     char *why, size_t len);

#endif
