// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * smtp_peer: the smallest SMTP server and client the kernel tests need, libc only,
 * so that a static copy runs in a bare initramfs where no MTA or Python exists.
 *
 *   smtp_peer server PORT [COUNT [TIMEOUT]]
 *       Listens on every address (an IPv6 socket that accepts IPv4 too, or IPv4 alone
 *       when the kernel has no IPv6), serves COUNT connections (default 1) one after
 *       another and exits; gives up TIMEOUT seconds after start (default 30).
 *   smtp_peer client HOST PORT HELO
 *       Connects to a numeric HOST (IPv4 or IPv6), reads the banner, says
 *       "EHLO HELO", reads the reply, says QUIT, reads the reply, and exits 0 when
 *       every reply had the expected code.
 *
 * Both print one line per step on stdout and errors on stderr; exit code 1 on
 * failure, 64 on bad usage.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define LINE_MAX_LEN 1024
#define IO_TIMEOUT_MS 10000

struct conn {
	int fd;
	size_t len;
	char buf[LINE_MAX_LEN * 2];
};

static long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000L + ts.tv_nsec / 1000000L;
}

static int wait_fd(int fd, short events, int timeout_ms)
{
	struct pollfd p = { .fd = fd, .events = events };
	int n;

	do
		n = poll(&p, 1, timeout_ms);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return -errno;
	return n ? 0 : -ETIMEDOUT;
}

static int send_all(int fd, const char *s)
{
	size_t len = strlen(s);

	while (len) {
		ssize_t n = send(fd, s, len, MSG_NOSIGNAL);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return n < 0 ? -errno : -EPIPE;
		s += n;
		len -= n;
	}
	return 0;
}

/* One line, without its CRLF or bare LF, into line: 0, -ECONNRESET at EOF, or -errno. */
static int read_line(struct conn *c, char *line, size_t size, int timeout_ms)
{
	for (;;) {
		char *nl = memchr(c->buf, '\n', c->len);
		ssize_t n;
		int err;

		if (nl || c->len == sizeof(c->buf)) {
			size_t take = nl ? (size_t)(nl - c->buf) + 1 : c->len;
			size_t copy = take;

			if (nl)
				copy--;
			if (copy && c->buf[copy - 1] == '\r')
				copy--;
			if (copy >= size)
				copy = size - 1;
			memcpy(line, c->buf, copy);
			line[copy] = 0;
			memmove(c->buf, c->buf + take, c->len - take);
			c->len -= take;
			return 0;
		}
		err = wait_fd(c->fd, POLLIN, timeout_ms);
		if (err)
			return err;
		n = recv(c->fd, c->buf + c->len, sizeof(c->buf) - c->len, 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			return -ECONNRESET;
		c->len += n;
	}
}

static int is_verb(const char *line, const char *verb)
{
	size_t n = strlen(verb);

	return !strncasecmp(line, verb, n) && (line[n] == 0 || line[n] == ' ');
}

static void serve(int fd)
{
	struct conn c = { .fd = fd };
	char line[LINE_MAX_LEN];

	if (send_all(fd, "220 vm ESMTP\r\n"))
		return;
	while (!read_line(&c, line, sizeof(line), IO_TIMEOUT_MS)) {
		const char *reply = "500 unrecognized\r\n";
		int quit = 0;

		printf("server: C: %s\n", line);
		if (is_verb(line, "EHLO"))
			reply = "250-vm\r\n250 PIPELINING\r\n";
		else if (is_verb(line, "HELO") || is_verb(line, "MAIL") || is_verb(line, "RCPT") ||
			 is_verb(line, "RSET") || is_verb(line, "NOOP"))
			reply = "250 ok\r\n";
		else if (is_verb(line, "QUIT")) {
			reply = "221 bye\r\n";
			quit = 1;
		}
		if (send_all(fd, reply) || quit)
			break;
	}
}

static int listen_any(int port)
{
	struct sockaddr_in6 a6 = { .sin6_family = AF_INET6,
				   .sin6_port = htons(port),
				   .sin6_addr = IN6ADDR_ANY_INIT };
	struct sockaddr_in a4 = { .sin_family = AF_INET,
				  .sin_port = htons(port),
				  .sin_addr.s_addr = htonl(INADDR_ANY) };
	int one = 1, zero = 0;
	int fd = socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (fd >= 0) {
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof(zero));
		if (!bind(fd, (struct sockaddr *)&a6, sizeof(a6)) && !listen(fd, 16))
			return fd;
		close(fd);
	}
	/* No IPv6 in this kernel: IPv4 alone still serves the IPv4 half of a test. */
	fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&a4, sizeof(a4)) || listen(fd, 16)) {
		int err = -errno;

		close(fd);
		return err;
	}
	return fd;
}

static int run_server(int port, int count, int timeout_s)
{
	long deadline = now_ms() + timeout_s * 1000L;
	int lfd = listen_any(port), served = 0;

	if (lfd < 0) {
		fprintf(stderr, "smtp_peer: cannot listen on port %d: %s\n", port, strerror(-lfd));
		return 1;
	}
	printf("server: listening on port %d for %d connection(s), pid %d\n", port, count,
	       (int)getpid());
	fflush(stdout);
	while (served < count) {
		long left = deadline - now_ms();
		int err, fd;

		if (left <= 0 || (err = wait_fd(lfd, POLLIN, (int)left)) == -ETIMEDOUT) {
			fprintf(stderr, "smtp_peer: timeout after %d of %d connection(s)\n", served,
				count);
			break;
		}
		if (err) {
			fprintf(stderr, "smtp_peer: poll: %s\n", strerror(-err));
			break;
		}
		fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
		if (fd < 0) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			fprintf(stderr, "smtp_peer: accept: %s\n", strerror(errno));
			break;
		}
		serve(fd);
		close(fd);
		served++;
		printf("server: served %d\n", served);
		fflush(stdout);
	}
	close(lfd);
	return served == count ? 0 : 1;
}

/* Reads a whole (possibly multi-line) reply; returns its code, or -errno. */
static int read_reply(struct conn *c, const char *what)
{
	char line[LINE_MAX_LEN];

	for (;;) {
		int err = read_line(c, line, sizeof(line), IO_TIMEOUT_MS);

		if (err) {
			fprintf(stderr, "smtp_peer: reading the %s reply: %s\n", what,
				strerror(-err));
			return err;
		}
		printf("client: S: %s\n", line);
		if (strlen(line) < 3 || line[0] < '1' || line[0] > '5') {
			fprintf(stderr, "smtp_peer: bad %s reply\n", what);
			return -EPROTO;
		}
		if (line[3] != '-')
			return atoi(line);
	}
}

/* Numeric addresses only (inet_pton, not getaddrinfo): a static binary must not need NSS. */
static int connect_to(const char *host, int port)
{
	struct sockaddr_in6 a6 = { .sin6_family = AF_INET6, .sin6_port = htons(port) };
	struct sockaddr_in a4 = { .sin_family = AF_INET, .sin_port = htons(port) };
	struct sockaddr *sa;
	socklen_t len;
	int fd;

	if (inet_pton(AF_INET, host, &a4.sin_addr) == 1) {
		sa = (struct sockaddr *)&a4;
		len = sizeof(a4);
	} else if (inet_pton(AF_INET6, host, &a6.sin6_addr) == 1) {
		sa = (struct sockaddr *)&a6;
		len = sizeof(a6);
	} else {
		fprintf(stderr, "smtp_peer: %s is not a numeric IPv4 or IPv6 address\n", host);
		return -EINVAL;
	}
	fd = socket(sa->sa_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, sa, len)) {
		int err = -errno;

		fprintf(stderr, "smtp_peer: connect to %s port %d: %s\n", host, port,
			strerror(-err));
		if (fd >= 0)
			close(fd);
		return err;
	}
	return fd;
}

static int run_client(const char *host, int port, const char *helo)
{
	struct conn c = { .fd = -1 };
	char cmd[LINE_MAX_LEN];
	int ok = 0;

	if (strlen(helo) > sizeof(cmd) - 8 || strpbrk(helo, "\r\n")) {
		fprintf(stderr, "smtp_peer: HELO must be one line of at most %zu bytes\n",
			sizeof(cmd) - 8);
		return 64;
	}
	c.fd = connect_to(host, port);
	if (c.fd < 0)
		return 1;
	printf("client: pid %d connected to %s port %d\n", (int)getpid(), host, port);
	snprintf(cmd, sizeof(cmd), "EHLO %s\r\n", helo);
	if (read_reply(&c, "banner") == 220 && !send_all(c.fd, cmd) &&
	    read_reply(&c, "EHLO") == 250 && !send_all(c.fd, "QUIT\r\n") &&
	    read_reply(&c, "QUIT") == 221)
		ok = 1;
	close(c.fd);
	printf("client: %s\n", ok ? "done" : "failed");
	return ok ? 0 : 1;
}

static int usage(void)
{
	fprintf(stderr, "usage: smtp_peer server PORT [COUNT [TIMEOUT]]\n"
			"       smtp_peer client HOST PORT HELO\n");
	return 64;
}

static int number(const char *s, int lo, int hi)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno || end == s || *end || v < lo || v > hi)
		return -1;
	return (int)v;
}

int main(int argc, char **argv)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (argc >= 3 && argc <= 5 && !strcmp(argv[1], "server")) {
		int port = number(argv[2], 1, 65535);
		int count = argc > 3 ? number(argv[3], 1, 1000000) : 1;
		int timeout = argc > 4 ? number(argv[4], 1, 86400) : 30;

		if (port < 0 || count < 0 || timeout < 0)
			return usage();
		return run_server(port, count, timeout);
	}
	if (argc == 5 && !strcmp(argv[1], "client")) {
		int port = number(argv[3], 1, 65535);

		if (port < 0)
			return usage();
		return run_client(argv[2], port, argv[4]);
	}
	return usage();
}
