// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* sw_sd_notify against a socket standing in for systemd: path and abstract forms. */
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>
#include "check.h"
#include "sdnotify.h"

/* A datagram socket bound like systemd's; name starting with '@' is abstract. */
static int listener(const char *name)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	size_t len = strlen(name);
	int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);

	memcpy(sa.sun_path, name, len);
	if (name[0] == '@')
		sa.sun_path[0] = 0;
	if (fd < 0 || bind(fd, (struct sockaddr *)&sa, offsetof(struct sockaddr_un, sun_path) + len)) {
		if (fd >= 0)
			close(fd);
		return -1;
	}
	return fd;
}

static void expect_msg(int fd, const char *want)
{
	char buf[256];
	ssize_t n = recv(fd, buf, sizeof(buf) - 1, MSG_DONTWAIT);

	CHECK(n >= 0);
	buf[n < 0 ? 0 : n] = 0;
	CHECK_STR(buf, want);
}

static void test_path_socket(void)
{
	char dir[] = "/tmp/sw-notify-XXXXXX", path[128];
	int fd;

	CHECK(mkdtemp(dir) != NULL);
	snprintf(path, sizeof(path), "%s/notify", dir);
	fd = listener(path);
	CHECK(fd >= 0);
	setenv("NOTIFY_SOCKET", path, 1);
	CHECK(sw_sd_notify("READY=1") == 0);
	expect_msg(fd, "READY=1");
	CHECK(sw_sd_notify("WATCHDOG=1") == 0);
	expect_msg(fd, "WATCHDOG=1");
	CHECK(sw_sd_notify("STOPPING=1\nSTATUS=detaching") == 0);
	expect_msg(fd, "STOPPING=1\nSTATUS=detaching");
	close(fd);
	unlink(path);
	rmdir(dir);
	/* Nobody listens any more: an error, not a hang. */
	CHECK(sw_sd_notify("READY=1") < 0);
}

static void test_abstract_socket(void)
{
	char name[64];
	int fd;

	snprintf(name, sizeof(name), "@sw-notify-test-%d", (int)getpid());
	fd = listener(name);
	CHECK(fd >= 0);
	setenv("NOTIFY_SOCKET", name, 1);
	CHECK(sw_sd_notify("READY=1") == 0);
	expect_msg(fd, "READY=1");
	close(fd);
}

static void test_no_systemd(void)
{
	unsetenv("NOTIFY_SOCKET");
	CHECK(sw_sd_notify("READY=1") == 0);
	setenv("NOTIFY_SOCKET", "vsock:2:1234", 1);
	CHECK(sw_sd_notify("READY=1") == -EAFNOSUPPORT);
	unsetenv("NOTIFY_SOCKET");
}

static void test_watchdog_interval(void)
{
	char pid[32];

	unsetenv("WATCHDOG_USEC");
	unsetenv("WATCHDOG_PID");
	CHECK(sw_sd_watchdog_interval_ns() == 0);
	setenv("WATCHDOG_USEC", "30000000", 1);
	CHECK(sw_sd_watchdog_interval_ns() == 15000000000ULL);
	snprintf(pid, sizeof(pid), "%d", (int)getpid());
	setenv("WATCHDOG_PID", pid, 1);
	CHECK(sw_sd_watchdog_interval_ns() == 15000000000ULL);
	setenv("WATCHDOG_PID", "1", 1); /* meant for another process */
	CHECK(sw_sd_watchdog_interval_ns() == 0);
	unsetenv("WATCHDOG_PID");
	setenv("WATCHDOG_USEC", "30s", 1);
	CHECK(sw_sd_watchdog_interval_ns() == 0);
	unsetenv("WATCHDOG_USEC");
}

int main(void)
{
	RUN(test_path_socket);
	RUN(test_abstract_socket);
	RUN(test_no_systemd);
	RUN(test_watchdog_interval);
	CHECK_EXIT();
}
