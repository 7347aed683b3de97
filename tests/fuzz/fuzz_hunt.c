// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * libFuzzer harness for 'smtpwatch hunt': the line matcher, the terminal
 * printer, the time parsers and, on one flag bit, the file reader (plain or
 * gzip) over a memfd. Input: a flags byte, the --helo value up to '\n', then
 * the journal line (or file). Beyond crashes, it traps on a result outside
 * {-EINVAL, 0, 1}, a matcher that answers twice differently, a sort key or
 * parsed time outside years 0-9999 (+/- a day), a raw control byte reaching
 * a terminal, and a non-terminal print that is not the line byte for byte.
 *
 * Built by 'make build/fuzz/fuzz_hunt'; by hand, it needs only
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -Iinclude -Iagent \
 *     tests/fuzz/fuzz_hunt.c agent/timeparse.c agent/textsafe.c agent/util.c \
 *     -lcjson -lz -o build/fuzz_hunt
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* memfd_create */
#endif
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

/* Included, not linked: the matcher and reader stay static in the agent. */
#include "cmd_hunt.c"

/* Years 0 to 9999, and a day more either side for the widest offsets. */
#define DAY_US (86400LL * 1000000)
#define TIME_MIN_US (-62167219200LL * 1000000 - DAY_US)
#define TIME_MAX_US (253402300800LL * 1000000 + DAY_US)

enum {
	F_DST4 = 1 << 0,
	F_DST6 = 1 << 1,
	F_PID = 1 << 2,
	F_SUB = 1 << 3,
	F_NARROW = 1 << 4, /* a 1 s window at 2026-11-23T06:25:00Z, else all time */
	F_FILE = 1 << 5, /* the rest is a whole file for the reader */
};

static void check_print(const char *line, size_t len)
{
	char *out = NULL;
	size_t olen = 0, i;
	FILE *f;

	f = open_memstream(&out, &olen);
	if (!f)
		return;
	if (hunt_print_line(f, line, len, true))
		__builtin_trap();
	fclose(f);
	if (!olen || out[olen - 1] != '\n')
		__builtin_trap();
	for (i = 0; i + 1 < olen; i++) {
		uint8_t b = out[i], n = out[i + 1];

		if (b < 0x20 || b == 0x7f || (b == 0xc2 && n >= 0x80 && n < 0xa0))
			__builtin_trap();
	}
	free(out);

	f = open_memstream(&out, &olen);
	if (!f)
		return;
	if (hunt_print_line(f, line, len, false))
		__builtin_trap();
	fclose(f);
	if (olen != len + 1 || memcmp(out, line, len) || out[len] != '\n')
		__builtin_trap();
	free(out);
}

static void check_parsers(const char *s)
{
	int64_t v;

	if (!sw_parse_time(s, &v) && (v < TIME_MIN_US || v > TIME_MAX_US))
		__builtin_trap();
	if (!sw_parse_duration(s, &v) && (v < 0 || v > SW_DURATION_MAX_US))
		__builtin_trap();
}

static void check_file(struct hunt_query *q, const uint8_t *data, size_t size)
{
	static char *buf;
	struct hunt_ctx c = { .q = *q };
	struct hunt_src *s;
	size_t malformed = 0;
	int fd;

	if (!buf && !(buf = malloc(HUNT_LINE_MAX + 2)))
		return;
	c.buf = buf;
	fd = memfd_create("fuzz_hunt", MFD_CLOEXEC);
	if (fd < 0)
		return;
	s = calloc(1, sizeof(*s));
	if (s && write(fd, data, size) == (ssize_t)size && !lseek(fd, 0, SEEK_SET) &&
	    !src_init(s, fd)) {
		if (hunt_stream(&c, s, &malformed))
			__builtin_trap();
		if (malformed > c.lines || c.n > c.lines)
			__builtin_trap();
		for (size_t i = 0; i < c.n; i++) {
			if (c.m[i].key_us < TIME_MIN_US || c.m[i].key_us > TIME_MAX_US ||
			    memchr(c.m[i].line, '\n', c.m[i].len))
				__builtin_trap();
			free(c.m[i].line);
		}
	}
	if (s)
		src_free(s);
	free(s);
	free(c.m);
	close(fd);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct hunt_query q = { .from_us = TIME_MIN_US, .to_us = TIME_MAX_US };
	const uint8_t *nl;
	char *helo, *line;
	size_t hlen, len;
	int64_t key = 0, key2 = 0;
	int r, r2;
	uint8_t flags;

	if (!size)
		return 0;
	flags = data[0];
	data++;
	size--;
	nl = memchr(data, '\n', size);
	hlen = nl ? (size_t)(nl - data) : 0;
	helo = strndup((const char *)data, hlen);
	if (!helo)
		return 0;
	if (nl) {
		data += hlen + 1;
		size -= hlen + 1;
	}
	if (flags & F_SUB)
		q.helo_sub = *helo ? helo : "x";
	else
		q.helo = helo;
	if (flags & (F_DST4 | F_DST6)) {
		parse_addr(flags & F_DST6 ? "2001:db8::25" : "198.51.100.7", q.dst);
		q.have_dst = true;
	}
	if (flags & F_PID) {
		q.pid = 4242;
		q.have_pid = true;
	}
	if (flags & F_NARROW) {
		q.from_us = 1795415099LL * 1000000;
		q.to_us = 1795415101LL * 1000000;
	}
	if (flags & F_FILE) {
		check_file(&q, data, size);
		free(helo);
		return 0;
	}

	/* Exactly len bytes and the NUL the matcher's contract asks for. */
	len = size;
	line = malloc(len + 1);
	if (!line) {
		free(helo);
		return 0;
	}
	memcpy(line, data, len);
	line[len] = '\0';

	r = hunt_match_line(&q, line, len, &key);
	if (r != -EINVAL && r != 0 && r != 1)
		__builtin_trap();
	if (r == 1 && (key < TIME_MIN_US || key > TIME_MAX_US))
		__builtin_trap();
	r2 = hunt_match_line(&q, line, len, &key2);
	if (r2 != r || (r == 1 && key2 != key))
		__builtin_trap();
	check_print(line, len);
	check_parsers(line);
	free(line);
	free(helo);
	return 0;
}
