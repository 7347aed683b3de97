// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * syslog_send: drives agent/syslog_out.c the way the agent does, for
 * tests/integration/test_syslog.py.
 *
 *   syslog_send [--buffer BYTES] [--hostname NAME] [--app NAME] TARGET
 *
 * Reads stdin line by line. A line is sent as one event (sw_syslog_send), unless
 * it starts with '!', a command that answers with one JSON line of counters on
 * stdout:
 *   !stats          the counters now
 *   !severity N     the severity of the lines that follow (default 6, info)
 *   !drain SECS     run the event loop until nothing is queued or SECS pass
 *   !run SECS       run the event loop for SECS
 *   !close MS       sw_syslog_close(MS), the counters, exit 0
 * The event loop only calls sw_syslog_poll() when sw_syslog_fd() is readable,
 * never on a timer of its own, so the tests also prove that descriptor enough.
 * Exit 64 on bad usage, 1 when open fails (its message on stderr).
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include "syslog_out.h"

static uint64_t mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + ts.tv_nsec;
}

static unsigned long long rejected;

static void stats(struct sw_syslog *s)
{
	printf("{\"sent\":%llu,\"dropped\":%llu,\"reconnects\":%llu,\"buffered\":%llu,"
	       "\"buffered_bytes\":%zu,\"connected\":%s,\"rejected\":%llu}\n",
	       (unsigned long long)s->sent, (unsigned long long)s->dropped,
	       (unsigned long long)s->reconnects, (unsigned long long)s->buffered, s->buffered_bytes,
	       sw_syslog_connected(s) ? "true" : "false", rejected);
	fflush(stdout);
}

/* The agent's loop, reduced: wake on the output's descriptor only. */
static void loop(struct sw_syslog *s, double secs, int until_empty)
{
	uint64_t deadline = mono_ns() + (uint64_t)(secs * 1e9);

	while (!(until_empty && s->buffered == 0)) {
		uint64_t now = mono_ns();
		struct pollfd p = { .fd = sw_syslog_fd(s), .events = POLLIN };
		int ms;

		if (now >= deadline)
			break;
		ms = (int)((deadline - now) / 1000000) + 1;
		if (poll(&p, 1, ms < 100 ? ms : 100) > 0)
			sw_syslog_poll(s, mono_ns());
	}
}

int main(int argc, char **argv)
{
	const char *hostname = "testhost", *app = NULL, *target = NULL;
	struct sw_syslog s = { 0 };
	size_t len = 0, cap = 1 << 16;
	char err[256], *buf;
	int severity = SW_SYSLOG_INFO, eof = 0;

	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--buffer") && i + 1 < argc)
			s.buffer_limit = strtoull(argv[++i], NULL, 10);
		else if (!strcmp(argv[i], "--hostname") && i + 1 < argc)
			hostname = argv[++i];
		else if (!strcmp(argv[i], "--app") && i + 1 < argc)
			app = argv[++i];
		else if (!target && argv[i][0] != '-')
			target = argv[i];
		else
			target = NULL, i = argc;
	}
	if (!target) {
		fprintf(stderr, "usage: syslog_send [--buffer BYTES] [--hostname NAME] [--app NAME] TARGET\n");
		return 64;
	}
	if (sw_syslog_open(&s, target, app, hostname, err, sizeof(err))) {
		fprintf(stderr, "syslog_send: %s\n", err);
		return 1;
	}
	buf = malloc(cap);
	if (!buf)
		return 1;
	while (!eof) {
		struct pollfd p[2] = { { .fd = 0, .events = POLLIN },
				       { .fd = sw_syslog_fd(&s), .events = POLLIN } };
		char *nl;
		ssize_t r;

		if (poll(p, 2, -1) < 0 && errno != EINTR)
			break;
		if (p[1].revents)
			sw_syslog_poll(&s, mono_ns());
		if (!p[0].revents)
			continue;
		if (len + 4096 > cap) {
			char *nb = realloc(buf, cap * 2);

			if (!nb)
				return 1;
			buf = nb;
			cap *= 2;
		}
		r = read(0, buf + len, cap - len);
		if (r <= 0) {
			eof = 1;
			continue;
		}
		len += r;
		while ((nl = memchr(buf, '\n', len))) {
			size_t n = nl - buf;

			*nl = 0;
			if (buf[0] != '!') {
				if (sw_syslog_send(&s, buf, n, 0, severity))
					rejected++;
			} else if (!strncmp(buf, "!severity ", 10)) {
				severity = atoi(buf + 10);
				stats(&s);
			} else if (!strncmp(buf, "!drain ", 7)) {
				loop(&s, atof(buf + 7), 1);
				stats(&s);
			} else if (!strncmp(buf, "!run ", 5)) {
				loop(&s, atof(buf + 5), 0);
				stats(&s);
			} else if (!strncmp(buf, "!close ", 7)) {
				sw_syslog_close(&s, atoi(buf + 7));
				stats(&s);
				free(buf);
				return 0;
			} else {
				stats(&s);
			}
			memmove(buf, nl + 1, len - n - 1);
			len -= n + 1;
		}
	}
	sw_syslog_close(&s, 0);
	free(buf);
	return 0;
}
