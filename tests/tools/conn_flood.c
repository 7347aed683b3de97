// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * A flood of short TCP connections, for the fault tests and `make stress`.
 *
 *   conn_flood serve ADDR PORT                 accept and close, until killed
 *   conn_flood connect ADDR PORT COUNT [HELO]  COUNT connections, one after the
 *                                              other: connect, optionally send
 *                                              "EHLO HELO\r\n", close with RST
 *
 * The client closes with SO_LINGER 0 so that a million connections from one
 * address do not exhaust the ephemeral ports in TIME_WAIT. Run it on loopback
 * or towards a network namespace the test created; it prints one summary line.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static int addr_of(const char *host, int port, struct sockaddr_storage *ss, socklen_t *len)
{
	struct sockaddr_in *s4 = (struct sockaddr_in *)ss;
	struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;

	memset(ss, 0, sizeof(*ss));
	if (inet_pton(AF_INET, host, &s4->sin_addr) == 1) {
		s4->sin_family = AF_INET;
		s4->sin_port = htons(port);
		*len = sizeof(*s4);
		return 0;
	}
	if (inet_pton(AF_INET6, host, &s6->sin6_addr) == 1) {
		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons(port);
		*len = sizeof(*s6);
		return 0;
	}
	return -1;
}

static int serve(const struct sockaddr_storage *ss, socklen_t len)
{
	int one = 1, fd = socket(ss->ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) ||
	    bind(fd, (const struct sockaddr *)ss, len) || listen(fd, 4096)) {
		perror("conn_flood: listen");
		return 1;
	}
	for (;;) {
		int c = accept4(fd, NULL, NULL, SOCK_CLOEXEC);

		if (c >= 0)
			close(c);
		else if (errno != EINTR && errno != ECONNABORTED && errno != EMFILE)
			return 1;
	}
}

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static int flood(const struct sockaddr_storage *ss, socklen_t len, long count, const char *helo)
{
	struct linger lg = { .l_onoff = 1, .l_linger = 0 };
	struct timeval tv = { .tv_sec = 2 };
	long ok = 0, failed = 0;
	char line[300];
	int n = 0;
	double t0 = now();

	if (helo)
		n = snprintf(line, sizeof(line), "EHLO %s\r\n", helo);
	for (long i = 0; i < count; i++) {
		int fd = socket(ss->ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);

		if (fd < 0) {
			failed++;
			continue;
		}
		setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
		setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
		if (connect(fd, (const struct sockaddr *)ss, len) ||
		    (n > 0 && send(fd, line, n, MSG_NOSIGNAL) != n))
			failed++;
		else
			ok++;
		close(fd);
	}
	printf("connections %ld failed %ld seconds %.2f pid %d\n", ok, failed, now() - t0,
	       (int)getpid());
	return ok ? 0 : 1;
}

int main(int argc, char **argv)
{
	struct sockaddr_storage ss;
	socklen_t len;

	if (argc < 4 || addr_of(argv[2], atoi(argv[3]), &ss, &len)) {
		fprintf(stderr, "usage: conn_flood serve ADDR PORT | connect ADDR PORT COUNT [HELO]\n");
		return 64;
	}
	if (!strcmp(argv[1], "serve"))
		return serve(&ss, len);
	if (!strcmp(argv[1], "connect") && argc >= 5)
		return flood(&ss, len, atol(argv[4]), argc > 5 ? argv[5] : NULL);
	fprintf(stderr, "usage: conn_flood serve ADDR PORT | connect ADDR PORT COUNT [HELO]\n");
	return 64;
}
