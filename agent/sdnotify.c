// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* sd_notify(3) in a few lines: see sdnotify.h. */
#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include "sdnotify.h"

int sw_sd_notify(const char *state)
{
	const char *path = getenv("NOTIFY_SOCKET");
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	size_t len, n = state ? strlen(state) : 0;
	socklen_t salen;
	int fd, ret = 0;

	if (!path || !path[0])
		return 0; /* not started by systemd, or Type= is not notify */
	if (!n)
		return -EINVAL;
	len = strlen(path);
	/* Paths and abstract names only ("vsock:" is for VMs, not an agent on the host). */
	if ((path[0] != '/' && path[0] != '@') || len < 2)
		return -EAFNOSUPPORT;
	if (len > sizeof(sa.sun_path) - (path[0] == '/'))
		return -ENAMETOOLONG;
	memcpy(sa.sun_path, path, len);
	if (path[0] == '@')
		sa.sun_path[0] = 0; /* abstract: the name is exactly len bytes, no NUL */
	salen = offsetof(struct sockaddr_un, sun_path) + len;
	fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	/* MSG_DONTWAIT: a busy PID 1 must not stall the event loop. */
	if (sendto(fd, state, n, MSG_NOSIGNAL | MSG_DONTWAIT, (struct sockaddr *)&sa, salen) < 0)
		ret = -errno;
	close(fd);
	return ret;
}

uint64_t sw_sd_watchdog_interval_ns(void)
{
	const char *usec = getenv("WATCHDOG_USEC"), *pid = getenv("WATCHDOG_PID");
	unsigned long long v;
	char *end;

	if (!usec || !usec[0])
		return 0;
	if (pid && pid[0] && strtol(pid, NULL, 10) != getpid())
		return 0;
	errno = 0;
	v = strtoull(usec, &end, 10);
	if (errno || *end || !v || v > UINT64_MAX / 1000)
		return 0;
	return v * 1000 / 2;
}
