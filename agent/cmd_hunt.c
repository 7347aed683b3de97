// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * smtpwatch hunt: answer a blocklist listing ("your address said HELO x at
 * 06:25:00 UTC") from the agent's journal. Prints the session events with
 * that HELO whose span meets the time window, oldest first, each line byte
 * for byte as in the file, from plain or gzip files (told apart by their
 * magic bytes, inflated by zlib).
 *
 * hunt_match_line() decides on one line in memory, without files: it is
 * what tests/fuzz/fuzz_hunt.c drives.
 */
#include <arpa/inet.h>
#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <glob.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sysexits.h>
#include <unistd.h>
#include <zlib.h>

#include "textsafe.h"
#include "timeparse.h"
#include "util.h"

#define HUNT_DEFAULT_JOURNAL "/var/log/smtpwatch/events.json"
#define HUNT_DEFAULT_WINDOW_US (600LL * 1000000)
/* Longest line read; longer ones are skipped as malformed. */
#define HUNT_LINE_MAX (1u << 20)

int sw_cmd_hunt(int argc, char **argv);

static const char usage_hunt[] =
	"Usage: smtpwatch hunt --helo VALUE --at TIME [OPTIONS] [FILE...]\n"
	"Answer a blocklist listing (address, UTC time, HELO): print the smtp_session\n"
	"and smtp_unattributed events with that HELO whose span, event.start to\n"
	"event.end, meets TIME +/- the window. Oldest first by @timestamp, each line\n"
	"exactly as in the file (control bytes shown as \\xNN on a terminal).\n"
	"FILEs are plain or gzip NDJSON, - is standard input. Without FILE or\n"
	"--journal: " HUNT_DEFAULT_JOURNAL " and its rotations (.1, .2.gz, ...).\n\n"
	"  -H, --helo VALUE           the HELO/EHLO argument, whole; ASCII case ignored\n"
	"  -C, --helo-contains TEXT   a part of it, instead of or with --helo\n"
	"  -t, --at TIME              2026-11-23T06:25:00Z, 2026-11-23T08:25:00.5+02:00 or\n"
	"                             \"2026-11-23 06:25:00\" (UTC when there is no offset)\n"
	"  -w, --window DURATION      either side of TIME: 600, 90s, 10m, 2h, 1d, 1h30m\n"
	"                             (default 10m)\n"
	"  -d, --dst IP               only sessions to this address (IPv4 or IPv6)\n"
	"  -p, --pid N                only sessions of this process id\n"
	"  -j, --journal PATH         also search PATH and PATH.* (repeatable)\n"
	"  -h, --help                 this text\n\n"
	"Lines that are not JSON objects are skipped and counted on stderr; a gzip\n"
	"file cut short (being rotated) gives what it has, with a warning.\n"
	"Exit status: 0 events printed, 1 none matched, 64 usage error, 65 a file is\n"
	"corrupt (what could be read is printed), 66 a named file or the journal does\n"
	"not exist, 74 read or write error, 77 permission denied (the journal is\n"
	"root's: use sudo), 71 out of memory.\n";

struct hunt_query {
	const char *helo; /* whole, ASCII case-insensitive; NULL: any */
	const char *helo_sub; /* a part, ASCII case-insensitive; NULL: any */
	int64_t from_us, to_us; /* the window, both ends included */
	bool have_dst;
	uint8_t dst[16]; /* IPv4 as IPv4-mapped IPv6 */
	bool have_pid;
	double pid;
};

struct hunt_match {
	int64_t key_us; /* @timestamp */
	size_t seq; /* input order: ties stay in file order */
	char *line;
	size_t len;
};

struct hunt_seen {
	dev_t dev;
	ino_t ino;
};

struct hunt_ctx {
	struct hunt_query q;
	struct hunt_match *m;
	size_t n, cap;
	size_t lines, files;
	char *buf; /* HUNT_LINE_MAX, its '\n' and a NUL */
	struct hunt_seen *seen; /* a file named twice is read once */
	size_t nseen;
	int late_exit; /* 65 or 74: a file was read only in part */
};

static char ascii_lower(char c)
{
	return c >= 'A' && c <= 'Z' ? c + ('a' - 'A') : c;
}

/* Case folding for ASCII only: HELOs are DNS names, and locales differ. */
static bool ascii_caseeq(const char *a, const char *b)
{
	for (; *a && ascii_lower(*a) == ascii_lower(*b); a++, b++)
		;
	return !*a && !*b;
}

static bool ascii_casestr(const char *hay, const char *needle)
{
	size_t n = strlen(needle), i;

	for (; *hay; hay++) {
		for (i = 0; i < n && ascii_lower(hay[i]) == ascii_lower(needle[i]); i++)
			;
		if (i == n)
			return true;
	}
	return !n;
}

/* An address as 16 bytes; IPv4 mapped, as the agent writes a mapped address as IPv4. */
static int parse_addr(const char *s, uint8_t a[16])
{
	memset(a, 0, 16);
	if (inet_pton(AF_INET6, s, a) == 1)
		return 0;
	memset(a, 0, 16);
	if (inet_pton(AF_INET, s, a + 12) != 1)
		return -EINVAL;
	a[10] = a[11] = 0xff;
	return 0;
}

static int time_of(const cJSON *obj, const char *name, int64_t *us)
{
	const char *s = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(obj, name));

	return s ? sw_parse_time(s, us) : -ENOENT;
}

static bool only_space(const char *p, const char *end)
{
	for (; p < end; p++)
		if (*p != ' ' && *p != '\t' && *p != '\r' && *p != '\n')
			return false;
	return true;
}

/*
 * One journal line, len bytes followed by a NUL (cJSON may peek at it).
 * Returns 1 with the sort key for a matching session event, 0 for any other
 * event, -EINVAL when the line is not one JSON object.
 */
static int hunt_match_line(const struct hunt_query *q, const char *line, size_t len,
			   int64_t *key_us)
{
	const char *end = NULL, *action, *helo, *ip;
	const cJSON *ev, *pid;
	cJSON *root;
	int64_t ts, start, stop, t;
	uint8_t addr[16];
	bool have_ts;
	int ret = 0;

	root = cJSON_ParseWithLengthOpts(line, len, &end, false);
	if (!root)
		return -EINVAL;
	/* Strict: '{...} junk' is not an event, whatever cJSON accepts. */
	if (!cJSON_IsObject(root) || !end || end < line || end > line + len ||
	    !only_space(end, line + len)) {
		ret = -EINVAL;
		goto cleanup;
	}
	ev = cJSON_GetObjectItemCaseSensitive(root, "event");
	action = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(ev, "action"));
	if (!action || (strcmp(action, "smtp_session") && strcmp(action, "smtp_unattributed")))
		goto cleanup;
	helo = cJSON_GetStringValue(
		cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(root, "smtp"), "helo"));
	if (!helo || (q->helo && !ascii_caseeq(helo, q->helo)) ||
	    (q->helo_sub && !ascii_casestr(helo, q->helo_sub)))
		goto cleanup;

	/* The session's span; @timestamp, its connect time, where a bound is missing. */
	have_ts = !time_of(root, "@timestamp", &ts);
	if (time_of(ev, "start", &start)) {
		if (!have_ts)
			goto cleanup;
		start = ts;
	}
	if (time_of(ev, "end", &stop))
		stop = start;
	if (stop < start) {
		t = start;
		start = stop;
		stop = t;
	}
	if (stop < q->from_us || start > q->to_us)
		goto cleanup;

	if (q->have_dst) {
		ip = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(
			cJSON_GetObjectItemCaseSensitive(root, "destination"), "ip"));
		if (!ip || parse_addr(ip, addr) || memcmp(addr, q->dst, 16))
			goto cleanup;
	}
	if (q->have_pid) {
		pid = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(root, "process"),
						       "pid");
		if (!cJSON_IsNumber(pid) || pid->valuedouble != q->pid)
			goto cleanup;
	}
	*key_us = have_ts ? ts : start;
	ret = 1;
cleanup:
	cJSON_Delete(root);
	return ret;
}

/*
 * The line as it is in the file; on a terminal, with every control byte
 * (C0, DEL, C1) and invalid UTF-8 as \xNN, so a hostile line cannot drive it.
 */
static int hunt_print_line(FILE *f, const char *line, size_t len, bool tty)
{
	char *safe, *p;

	if (!tty) {
		fwrite(line, 1, len, f);
		putc('\n', f);
		return ferror(f) ? -EIO : 0;
	}
	/* sw_text_json() does NUL, DEL, C1 and bad UTF-8; the rest of C0 is ours. */
	safe = sw_text_json((const uint8_t *)line, len);
	if (!safe)
		return -ENOMEM;
	for (p = safe; *p; p++) {
		if ((unsigned char)*p < 0x20)
			fprintf(f, "\\x%02x", (unsigned char)*p);
		else
			putc(*p, f);
	}
	putc('\n', f);
	free(safe);
	return ferror(f) ? -EIO : 0;
}

static int add_match(struct hunt_ctx *c, const char *line, size_t len, int64_t key)
{
	struct hunt_match *m;
	char *copy;

	if (c->n == c->cap) {
		size_t cap = c->cap ? c->cap * 2 : 64;

		m = realloc(c->m, cap * sizeof(*m));
		if (!m)
			return -ENOMEM;
		c->m = m;
		c->cap = cap;
	}
	copy = malloc(len + 1);
	if (!copy)
		return -ENOMEM;
	memcpy(copy, line, len);
	copy[len] = '\0';
	c->m[c->n++] = (struct hunt_match){ .key_us = key, .seq = c->lines, .line = copy, .len = len };
	return 0;
}

/* line[len] is writable: it held the '\n' or is the spare byte. */
static int hunt_line(struct hunt_ctx *c, char *line, size_t len, size_t *malformed)
{
	int64_t key;
	int r;

	c->lines++;
	if (only_space(line, line + len))
		return 0; /* a blank line is no event, but not damage either */
	line[len] = '\0';
	r = hunt_match_line(&c->q, line, len, &key);
	if (r < 0) {
		(*malformed)++;
		return 0;
	}
	return r ? add_match(c, line, len, key) : 0;
}

/* How a file's text ended. */
enum hunt_end {
	HUNT_END_OK,
	HUNT_END_CUT, /* EOF inside a gzip member: being rotated, or cut */
	HUNT_END_CORRUPT, /* inflate() refused the data */
	HUNT_END_IOERR, /* read() failed */
};

/*
 * A file's text, plain or gzip (by its magic bytes 1f 8b). inflate()
 * rather than gzread(): gzread() drops what its last call decoded when it
 * meets bad data, and that is evidence.
 */
struct hunt_src {
	int fd;
	bool gz, z_ready, after_member, done;
	enum hunt_end end;
	int err; /* errno, for HUNT_END_IOERR */
	const char *zmsg; /* zlib's words, for HUNT_END_CORRUPT */
	z_stream zs;
	unsigned char *pend; /* plain: bytes read while looking for the magic */
	size_t npend;
	unsigned char in[64 * 1024];
};

static ssize_t read_some(int fd, void *buf, size_t n)
{
	ssize_t r;

	do
		r = read(fd, buf, n);
	while (r < 0 && errno == EINTR);
	return r < 0 ? -errno : r;
}

/* Returns 0, or -errno when not even the first read works. */
static int src_init(struct hunt_src *s, int fd)
{
	ssize_t r = 0, got;

	s->fd = fd;
	/* A pipe may deliver the two magic bytes one at a time. */
	do {
		got = read_some(fd, s->in + r, sizeof(s->in) - r);
		if (got < 0)
			return got;
		r += got;
	} while (got && r < 2);
	s->gz = r >= 2 && s->in[0] == 0x1f && s->in[1] == 0x8b;
	if (!s->gz) {
		s->pend = s->in;
		s->npend = r;
		return 0;
	}
	/* 15 + 16: a 32 KiB window behind a gzip header, not a zlib one. */
	if (inflateInit2(&s->zs, 15 + 16) != Z_OK)
		return -ENOMEM;
	s->z_ready = true;
	s->zs.next_in = s->in;
	s->zs.avail_in = r;
	return 0;
}

static void src_free(struct hunt_src *s)
{
	if (s->z_ready)
		inflateEnd(&s->zs);
}

static void src_end(struct hunt_src *s, enum hunt_end end, int err)
{
	s->end = end;
	s->err = err;
	s->done = true;
}

static ssize_t src_read_plain(struct hunt_src *s, char *buf, size_t n)
{
	ssize_t r;

	if (s->npend) {
		r = s->npend < n ? s->npend : n;
		memcpy(buf, s->pend, r);
		s->pend += r;
		s->npend -= r;
		return r;
	}
	r = read_some(s->fd, buf, n);
	if (r <= 0)
		src_end(s, r ? HUNT_END_IOERR : HUNT_END_OK, -r);
	return r > 0 ? r : 0;
}

/*
 * Up to n (at most UINT_MAX) bytes of text. Returns the count, 0 at the
 * end (s->end says how it ended), or -ENOMEM.
 */
static ssize_t src_read(struct hunt_src *s, char *buf, size_t n)
{
	ssize_t r;
	int zr;

	if (s->done)
		return 0;
	if (!s->gz)
		return src_read_plain(s, buf, n);
	s->zs.next_out = (Bytef *)buf;
	s->zs.avail_out = n;
	while (s->zs.avail_out == n && !s->done) {
		if (!s->zs.avail_in) {
			r = read_some(s->fd, s->in, sizeof(s->in));
			if (r <= 0) {
				/* EOF between members is the end; inside one, a cut. */
				src_end(s, r ? HUNT_END_IOERR : s->after_member ? HUNT_END_OK : HUNT_END_CUT,
					-r);
				break;
			}
			s->zs.next_in = s->in;
			s->zs.avail_in = r;
		}
		if (s->after_member) {
			/* Like gzip(1) and gzread(), ignore what is not another member. */
			if (s->zs.next_in[0] != 0x1f) {
				src_end(s, HUNT_END_OK, 0);
				break;
			}
			s->after_member = false;
		}
		zr = inflate(&s->zs, Z_NO_FLUSH);
		if (zr == Z_STREAM_END) {
			/* Members may follow one another (cat a.gz b.gz). */
			if (inflateReset(&s->zs) != Z_OK)
				return -ENOMEM;
			s->after_member = true;
		} else if (zr == Z_MEM_ERROR) {
			return -ENOMEM;
		} else if (zr != Z_OK && zr != Z_BUF_ERROR) {
			/* What inflate() wrote before it stopped is kept. */
			s->zmsg = s->zs.msg ? s->zs.msg : "bad compressed data";
			src_end(s, HUNT_END_CORRUPT, 0);
		}
	}
	return n - s->zs.avail_out;
}

/* Every line of a file. Returns 0 or -ENOMEM. */
static int hunt_stream(struct hunt_ctx *c, struct hunt_src *s, size_t *malformed)
{
	const size_t room = HUNT_LINE_MAX + 1; /* a longest line and its '\n' */
	size_t len = 0, off = 0;
	bool skipping = false;
	ssize_t n;
	char *nl;
	int err;

	for (;;) {
		nl = memchr(c->buf + off, '\n', len - off);
		if (nl) {
			if (skipping)
				skipping = false; /* the end of a line too long */
			else if ((err = hunt_line(c, c->buf + off, nl - (c->buf + off), malformed)))
				return err;
			off = nl + 1 - c->buf;
			continue;
		}
		memmove(c->buf, c->buf + off, len - off);
		len -= off;
		off = 0;
		if (len == room) {
			/* No '\n' in a full buffer: drop the line, count it once. */
			if (!skipping) {
				(*malformed)++;
				c->lines++;
			}
			skipping = true;
			len = 0;
		}
		n = src_read(s, c->buf + len, room - len);
		if (n < 0)
			return n;
		if (!n)
			break;
		len += n;
	}
	/* A last line without '\n': a file being written, or cut. */
	if (!skipping && len)
		return hunt_line(c, c->buf, len, malformed);
	return 0;
}

static bool seen_before(struct hunt_ctx *c, const struct stat *st, int *err)
{
	struct hunt_seen *s;

	*err = 0;
	for (size_t i = 0; i < c->nseen; i++)
		if (c->seen[i].dev == st->st_dev && c->seen[i].ino == st->st_ino)
			return true;
	s = realloc(c->seen, (c->nseen + 1) * sizeof(*s));
	if (!s) {
		*err = -ENOMEM;
		return false;
	}
	c->seen = s;
	c->seen[c->nseen++] = (struct hunt_seen){ st->st_dev, st->st_ino };
	return false;
}

/* Warn about a file read only in part; the exit status says so too unless it was cut. */
static void say_end(struct hunt_ctx *c, const struct hunt_src *s, const char *path)
{
	switch (s->end) {
	case HUNT_END_OK:
		break;
	case HUNT_END_CUT:
		fprintf(stderr, "smtpwatch: hunt: %s ends inside its gzip stream (cut short, or being rotated): searched what it has\n",
			path);
		break;
	case HUNT_END_CORRUPT:
		fprintf(stderr, "smtpwatch: hunt: %s is corrupt (%s): searched what came before\n",
			path, s->zmsg);
		c->late_exit = c->late_exit ?: EX_DATAERR;
		break;
	case HUNT_END_IOERR:
		fprintf(stderr, "smtpwatch: hunt: reading %s failed (%s): searched what came before\n",
			path, strerror(s->err));
		c->late_exit = c->late_exit ?: EX_IOERR;
		break;
	}
}

/*
 * One file. A named one must be readable; in the journal's set a file that
 * is gone (rotated away meanwhile) or is no regular file is skipped.
 * Returns 0 or -errno after saying what failed.
 */
static int hunt_file(struct hunt_ctx *c, const char *path, bool named)
{
	bool is_stdin = named && !strcmp(path, "-");
	struct hunt_src *s = NULL;
	size_t malformed = 0;
	struct stat st;
	int fd, err = 0;

	fd = is_stdin ? dup(STDIN_FILENO) : open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0) {
		err = -errno;
		if (!named && err == -ENOENT)
			return 0;
		goto fail;
	}
	if (fstat(fd, &st)) {
		err = -errno;
		goto fail;
	}
	if (S_ISDIR(st.st_mode) || (!named && !S_ISREG(st.st_mode))) {
		err = named ? -EISDIR : 0;
		goto fail;
	}
	if (S_ISREG(st.st_mode) && seen_before(c, &st, &err))
		goto cleanup;
	if (err)
		goto fail;
	s = calloc(1, sizeof(*s));
	if (!s) {
		err = -ENOMEM;
		goto fail;
	}
	err = src_init(s, fd);
	if (err)
		goto fail;
	c->files++;
	err = hunt_stream(c, s, &malformed);
	if (err)
		goto fail;
	say_end(c, s, path);
	goto cleanup;
fail:
	if (err)
		fprintf(stderr, "smtpwatch: hunt: cannot read %s: %s%s\n", path, strerror(-err),
			err == -EACCES || err == -EPERM ? " (the journal is root's: use sudo)" : "");
cleanup:
	if (malformed)
		fprintf(stderr, "smtpwatch: hunt: skipped %zu malformed lines in %s\n", malformed, path);
	if (s)
		src_free(s);
	free(s);
	if (fd >= 0)
		close(fd);
	return err;
}

/* A base file and its rotations: PATH, then PATH.* (PATH.1, PATH.2.gz, ...). */
static int hunt_journal(struct hunt_ctx *c, const char *base)
{
	size_t before = c->files, n = 0;
	glob_t g = {};
	char *pat;
	int err, r;

	err = hunt_file(c, base, false);
	if (err)
		return err;
	/* The base name is data, not a pattern: escape what glob() would read. */
	pat = malloc(strlen(base) * 2 + 3);
	if (!pat)
		return -ENOMEM;
	for (const char *p = base; *p; p++) {
		if (strchr("\\*?[", *p))
			pat[n++] = '\\';
		pat[n++] = *p;
	}
	memcpy(pat + n, ".*", 3);
	r = glob(pat, 0, NULL, &g);
	free(pat);
	if (r == GLOB_NOSPACE)
		err = -ENOMEM;
	for (size_t i = 0; !r && !err && i < g.gl_pathc; i++) {
		const char *f = g.gl_pathv[i];
		size_t fl = strlen(f);
		bool compressed = false;

		/* PATH.1 beside PATH.1.gz: the compressor has just renamed the whole .gz
		 * into place and not yet removed PATH.1. Read the lines once. */
		for (size_t j = 0; j < g.gl_pathc && !compressed; j++)
			compressed = !strncmp(g.gl_pathv[j], f, fl) && !strcmp(g.gl_pathv[j] + fl, ".gz");
		if (!compressed)
			err = hunt_file(c, f, false);
	}
	globfree(&g);
	if (!err && c->files == before) {
		fprintf(stderr, "smtpwatch: hunt: no journal at %s: name the files, or give --journal PATH\n",
			base);
		err = -ENOENT;
	}
	return err;
}

static int cmp_match(const void *a, const void *b)
{
	const struct hunt_match *x = a, *y = b;

	if (x->key_us != y->key_us)
		return x->key_us < y->key_us ? -1 : 1;
	return x->seq < y->seq ? -1 : x->seq > y->seq;
}

static int exit_of(int err)
{
	switch (err) {
	case -ENOENT:
	case -ENOTDIR:
	case -EISDIR:
		return EX_NOINPUT;
	case -EACCES:
	case -EPERM:
		return EX_SW_NOPERM;
	case -ENOMEM:
		return EX_OSERR;
	default:
		return EX_IOERR;
	}
}

static void say_window(const struct hunt_ctx *c)
{
	char from[40], to[40];

	/* sw_format_time() takes unsigned ns: say the window only when it fits. */
	if (c->q.from_us < 0 || c->q.to_us > INT64_MAX / 1000) {
		fprintf(stderr, "smtpwatch: hunt: no match in %zu files (%zu lines)\n", c->files,
			c->lines);
		return;
	}
	sw_format_time((uint64_t)c->q.from_us * 1000, from, sizeof(from));
	sw_format_time((uint64_t)c->q.to_us * 1000, to, sizeof(to));
	fprintf(stderr, "smtpwatch: hunt: no match from %s to %s in %zu files (%zu lines)\n", from,
		to, c->files, c->lines);
}

int sw_cmd_hunt(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "helo", required_argument, NULL, 'H' },
		{ "helo-contains", required_argument, NULL, 'C' },
		{ "at", required_argument, NULL, 't' },
		{ "window", required_argument, NULL, 'w' },
		{ "dst", required_argument, NULL, 'd' },
		{ "pid", required_argument, NULL, 'p' },
		{ "journal", required_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{},
	};
	struct hunt_ctx c = {};
	const char **journals = NULL;
	int64_t at = 0, window = HUNT_DEFAULT_WINDOW_US;
	bool have_at = false, tty;
	int ch, njournals = 0, err = 0, ret = EX_SW_USAGE;
	char *end;
	long pid;

	journals = calloc(argc, sizeof(*journals));
	if (!journals) {
		ret = EX_OSERR;
		goto cleanup;
	}
	optind = 0;
	opterr = 0; /* our own message, in our own form */
	while ((ch = getopt_long(argc, argv, "H:C:t:w:d:p:j:h", longopts, NULL)) != -1) {
		switch (ch) {
		case 'H':
			c.q.helo = optarg;
			break;
		case 'C':
			if (!*optarg) {
				fprintf(stderr, "smtpwatch: hunt: --helo-contains needs some text\n");
				goto cleanup;
			}
			c.q.helo_sub = optarg;
			break;
		case 't':
			if (sw_parse_time(optarg, &at)) {
				fprintf(stderr, "smtpwatch: hunt: --at takes a time as 2026-11-23T06:25:00Z, 2026-11-23T08:25:00+02:00 or \"2026-11-23 06:25:00\" (UTC), not '%s'\n",
					optarg);
				goto cleanup;
			}
			have_at = true;
			break;
		case 'w':
			if (sw_parse_duration(optarg, &window)) {
				fprintf(stderr, "smtpwatch: hunt: --window takes a duration as 600, 90s, 10m, 2h or 1d, not '%s'\n",
					optarg);
				goto cleanup;
			}
			break;
		case 'd':
			if (parse_addr(optarg, c.q.dst)) {
				fprintf(stderr, "smtpwatch: hunt: --dst takes an IPv4 or IPv6 address, not '%s'\n",
					optarg);
				goto cleanup;
			}
			c.q.have_dst = true;
			break;
		case 'p':
			errno = 0;
			pid = strtol(optarg, &end, 10);
			if (errno || end == optarg || *end || pid < 1 || pid > INT32_MAX) {
				fprintf(stderr, "smtpwatch: hunt: --pid takes a process id, not '%s'\n",
					optarg);
				goto cleanup;
			}
			c.q.pid = pid;
			c.q.have_pid = true;
			break;
		case 'j':
			journals[njournals++] = optarg;
			break;
		case 'h':
			fputs(usage_hunt, stdout);
			ret = 0;
			goto cleanup;
		default:
			/* A long option is the last word read; a short one is optopt. */
			if (optopt && strncmp(argv[optind - 1], "--", 2))
				fprintf(stderr, "smtpwatch: hunt: unknown option, or one without its value: '-%c'\n%s",
					optopt, usage_hunt);
			else
				fprintf(stderr, "smtpwatch: hunt: unknown option, or one without its value: '%s'\n%s",
					argv[optind - 1], usage_hunt);
			goto cleanup;
		}
	}
	if ((!c.q.helo && !c.q.helo_sub) || !have_at) {
		fprintf(stderr, "smtpwatch: hunt needs --helo (or --helo-contains) and --at\n%s",
			usage_hunt);
		goto cleanup;
	}
	/* Both within bounds (years 0-9999, SW_DURATION_MAX_US): no overflow. */
	c.q.from_us = at - window;
	c.q.to_us = at + window;

	c.buf = malloc(HUNT_LINE_MAX + 2);
	if (!c.buf) {
		fprintf(stderr, "smtpwatch: hunt: out of memory\n");
		err = -ENOMEM;
		goto fail;
	}
	for (int i = optind; i < argc && !err; i++)
		err = hunt_file(&c, argv[i], true);
	for (int i = 0; i < njournals && !err; i++)
		err = hunt_journal(&c, journals[i]);
	if (!err && optind == argc && !njournals)
		err = hunt_journal(&c, HUNT_DEFAULT_JOURNAL);
	if (err)
		goto fail;

	if (c.n)
		qsort(c.m, c.n, sizeof(*c.m), cmp_match);
	tty = isatty(STDOUT_FILENO);
	for (size_t i = 0; i < c.n && !err; i++)
		err = hunt_print_line(stdout, c.m[i].line, c.m[i].len, tty);
	if (!err && fflush(stdout))
		err = -EIO;
	if (err) {
		fprintf(stderr, "smtpwatch: hunt: writing the events failed: %s\n", strerror(-err));
		goto fail;
	}
	if (!c.n)
		say_window(&c);
	ret = c.late_exit ?: (c.n ? 0 : 1);
	goto cleanup;
fail:
	ret = exit_of(err); /* the message is out already */
cleanup:
	for (size_t i = 0; i < c.n; i++)
		free(c.m[i].line);
	free(c.m);
	free(c.seen);
	free(c.buf);
	free(journals);
	return ret;
}
