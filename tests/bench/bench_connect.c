// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * `make bench`, figure 3: connect()+accept()+close() rate on 127.0.0.1.
 * A listener thread accepts and closes; the main thread connects and closes,
 * a fixed number of times, one connection at a time. Prints one JSON line:
 * the wall time of the whole loop and the rate. Loopback only, and bounded:
 * an alarm ends the process if the loop takes longer than --timeout seconds.
 */
#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

static atomic_int connected;   /* connections the client made */
static atomic_int client_done;
static int accepted;
static int lfd = -1;

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Accept until every connection the client made is accepted. */
static void *server(void *arg)
{
	struct pollfd p = { .fd = lfd, .events = POLLIN };

	(void)arg;
	for (;;) {
		int fd = accept(lfd, NULL, NULL);

		if (fd >= 0) {
			close(fd);
			accepted++;
			continue;
		}
		if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR &&
		    errno != ECONNABORTED)
			break;
		if (atomic_load(&client_done) && accepted >= atomic_load(&connected))
			break;
		poll(&p, 1, 20);
	}
	return NULL;
}

static void usage(FILE *f)
{
	fprintf(f, "Usage: bench_connect --port PORT [--count N] [--timeout SECONDS]\n"
		   "connect()+accept()+close() N times on 127.0.0.1:PORT; prints JSON.\n");
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "port", required_argument, NULL, 'p' },
		{ "count", required_argument, NULL, 'c' },
		{ "timeout", required_argument, NULL, 't' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	struct sockaddr_in sa = { .sin_family = AF_INET };
	int port = 0, count = 5000, timeout = 60, errors = 0, one = 1, opt, first_errno = 0;
	pthread_t th;
	double t0, t1;

	while ((opt = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		switch (opt) {
		case 'p':
			port = atoi(optarg);
			break;
		case 'c':
			count = atoi(optarg);
			break;
		case 't':
			timeout = atoi(optarg);
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 64;
		}
	}
	if (port <= 0 || port > 65535 || count < 1 || count > 10000000 || timeout < 1) {
		usage(stderr);
		return 64;
	}
	alarm(timeout);
	sa.sin_port = htons(port);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);

	lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (lfd < 0 || setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) ||
	    bind(lfd, (struct sockaddr *)&sa, sizeof(sa)) || listen(lfd, 4096)) {
		fprintf(stderr, "bench_connect: cannot listen on 127.0.0.1:%d: %s\n", port,
			strerror(errno));
		return 1;
	}
	if (pthread_create(&th, NULL, server, NULL)) {
		fprintf(stderr, "bench_connect: cannot start the listener thread\n");
		return 1;
	}
	t0 = now_s();
	for (int i = 0; i < count; i++) {
		int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

		if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa))) {
			if (!first_errno)
				first_errno = errno;
			errors++;
		} else {
			atomic_fetch_add(&connected, 1);
		}
		if (fd >= 0)
			close(fd);
	}
	atomic_store(&client_done, 1);
	pthread_join(th, NULL);
	t1 = now_s();
	close(lfd);
	printf("{\"port\":%d,\"count\":%d,\"connected\":%d,\"accepted\":%d,\"errors\":%d,\"seconds\":%.6f,\"rate\":%.1f}\n",
	       port, count, atomic_load(&connected), accepted, errors, t1 - t0,
	       atomic_load(&connected) / (t1 - t0));
	if (errors)
		fprintf(stderr, "bench_connect: %d of %d connects failed, the first with: %s\n", errors,
			count, strerror(first_errno));
	return errors || accepted != atomic_load(&connected) ? 1 : 0;
}
