// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <zlib.h>
#include "fileperm.h"
#include "log.h"
#include "output.h"
#include "util.h"

static size_t write_lines(struct sw_output *o, const char *buf, size_t len, int *err);
static void journal_state(struct sw_output *o, int err);

static void read_line(const char *path, char *buf, size_t len)
{
	FILE *f = fopen(path, "re");

	buf[0] = 0;
	if (!f)
		return;
	if (!fgets(buf, len, f))
		buf[0] = 0;
	buf[strcspn(buf, "\n")] = 0;
	fclose(f);
}

/* The journal is evidence: only root may be able to write it or its directories
 * (docs/config.md); with rotation, no one else may write its own directory. */
static unsigned perm_flags(const struct sw_output *o)
{
	return SW_PERM_DEVICE_OK | (o->rotate_size ? SW_PERM_DIR_PRIVATE : 0);
}

static int open_file(struct sw_output *o)
{
	struct stat st;
	int fd;

	fd = sw_fileperm_open(o->path, O_WRONLY | O_APPEND | O_CREAT, 0640, "journal",
			      perm_flags(o), o->error, sizeof(o->error));
	o->fd = fd < 0 ? -1 : fd;
	if (fd < 0)
		return fd;
	o->size = fstat(o->fd, &st) ? 0 : st.st_size;
	o->error[0] = 0;
	return 0;
}

int sw_output_open(struct sw_output *o, const char *path)
{
	memset(o, 0, sizeof(*o));
	if (gethostname(o->host, sizeof(o->host) - 1))
		snprintf(o->host, sizeof(o->host), "localhost");
	read_line("/etc/machine-id", o->host_id, sizeof(o->host_id));
	read_line("/proc/sys/kernel/random/boot_id", o->boot_id, sizeof(o->boot_id));
	o->cap = 256 * 1024;
	o->buf = malloc(o->cap);
	if (!o->buf)
		return -ENOMEM;
	if (!path || !strcmp(path, "-")) {
		o->fd = STDOUT_FILENO;
		return 0;
	}
	o->path = strdup(path);
	if (!o->path)
		return -ENOMEM;
	return open_file(o);
}

int sw_output_set_rotation(struct sw_output *o, uint64_t size, uint32_t keep)
{
	o->rotate_size = o->path ? size : 0;
	o->rotate_keep = keep ? keep : 1;
	if (o->rotate_size)
		return sw_fileperm_dirs(o->path, "journal", perm_flags(o), o->error,
					sizeof(o->error));
	return 0;
}

int sw_output_reopen(struct sw_output *o)
{
	sw_output_flush(o);
	if (!o->path)
		return 0;
	if (o->fd >= 0)
		close(o->fd);
	o->reopens++;
	return open_file(o);
}

void sw_output_reap(struct sw_output *o, int wait)
{
	if (o->compressor > 0 && waitpid(o->compressor, NULL, wait ? 0 : WNOHANG) != 0)
		o->compressor = 0;
}

/* In a child: PATH.1 -> PATH.1.gz with zlib, so the event loop never waits on it. */
static void compress_child(const char *src, const char *dst)
{
	char tmp[4300], buf[65536];
	int in = open(src, O_RDONLY | O_CLOEXEC);
	gzFile gz;
	ssize_t n;

	const char *slash = strrchr(dst, '/');

	/* A hidden name while it is written: readers globbing PATH.* never see half a gzip. */
	if (slash)
		snprintf(tmp, sizeof(tmp), "%.*s/.%s.tmp", (int)(slash - dst), dst, slash + 1);
	else
		snprintf(tmp, sizeof(tmp), ".%s.tmp", dst);
	gz = gzopen(tmp, "wb6");
	if (in < 0 || !gz)
		_exit(1);
	while ((n = read(in, buf, sizeof(buf))) > 0)
		if (gzwrite(gz, buf, n) != n)
			_exit(1);
	if (n < 0 || gzclose(gz) != Z_OK || rename(tmp, dst))
		_exit(1);
	unlink(src);
	_exit(0);
}

/*
 * Called between whole lines only: nothing is split, lost or written twice.
 * PATH.N.gz ages to PATH.(N+1).gz, the oldest goes, PATH becomes PATH.1 and a
 * child compresses it to PATH.1.gz.
 */
static void rotate(struct sw_output *o)
{
	char from[4200], to[4200];
	pid_t pid;

	sw_output_reap(o, 1); /* the previous compression must be done with PATH.1 */
	snprintf(to, sizeof(to), "%s.%u.gz", o->path, o->rotate_keep);
	unlink(to);
	for (uint32_t i = o->rotate_keep; i > 1; i--) {
		snprintf(from, sizeof(from), "%s.%u.gz", o->path, i - 1);
		snprintf(to, sizeof(to), "%s.%u.gz", o->path, i);
		rename(from, to);
	}
	snprintf(to, sizeof(to), "%s.1", o->path);
	if (rename(o->path, to)) {
		o->write_errors++; /* cannot rotate (read-only dir?): keep appending */
		return;
	}
	close(o->fd);
	if (open_file(o))
		o->fd = -1;
	o->rotations++;
	pid = fork();
	if (pid == 0) {
		snprintf(from, sizeof(from), "%s.1.gz", o->path);
		compress_child(to, from);
	}
	o->compressor = pid > 0 ? pid : 0;
}

void sw_output_close(struct sw_output *o)
{
	sw_output_flush(o);
	sw_output_reap(o, 1);
	if (o->fd > STDOUT_FILENO)
		close(o->fd);
	free(o->path);
	free(o->buf);
	o->fd = -1;
	o->path = NULL;
	o->buf = NULL;
}

cJSON *sw_obj(cJSON *root, const char *dotted)
{
	char key[64];
	const char *p = dotted;
	cJSON *cur = root;

	while (*p) {
		size_t n = strcspn(p, ".");
		cJSON *next;

		if (n >= sizeof(key))
			n = sizeof(key) - 1;
		memcpy(key, p, n);
		key[n] = 0;
		next = cJSON_GetObjectItemCaseSensitive(cur, key);
		if (!next)
			next = cJSON_AddObjectToObject(cur, key);
		cur = next;
		p += n;
		if (*p == '.')
			p++;
	}
	return cur;
}

cJSON *sw_event_new(struct sw_output *o, const char *action, uint64_t epoch_ns)
{
	cJSON *ev = cJSON_CreateObject();
	char ts[64];

	if (!ev)
		return NULL;
	sw_format_time(epoch_ns, ts, sizeof(ts));
	cJSON_AddStringToObject(ev, "@timestamp", ts);
	cJSON_AddStringToObject(sw_obj(ev, "event"), "action", action);
	cJSON_AddStringToObject(sw_obj(ev, "host"), "name", o->host);
	if (o->host_id[0])
		cJSON_AddStringToObject(sw_obj(ev, "host"), "id", o->host_id);
	if (o->boot_id[0])
		cJSON_AddStringToObject(sw_obj(ev, "host.boot"), "id", o->boot_id);
	return ev;
}

/*
 * One line, given in up to three pieces (the writer's text around the sequence
 * number), into the buffer, or on its own when it is larger than the buffer.
 * Every line also goes to syslog when that is set.
 */
static int emit(struct sw_output *o, const char *a, size_t na, const char *b, size_t nb,
		const char *c, size_t nc, int sev)
{
	size_t n = na + nb + nc;
	char *line, *big = NULL;
	int werr, ret = 0;

	if (o->len + n + 1 > o->cap)
		sw_output_flush(o);
	if (o->len + n + 1 <= o->cap) {
		line = o->buf + o->len;
	} else { /* a line larger than the buffer: on its own */
		big = malloc(n + 1);
		if (!big) {
			o->write_errors++;
			return -ENOMEM;
		}
		line = big;
	}
	memcpy(line, a, na);
	if (nb)
		memcpy(line + na, b, nb);
	if (nc)
		memcpy(line + na + nb, c, nc);
	line[n] = '\n';
	if (o->syslog)
		sw_syslog_send(o->syslog, line, n, 0, sev);
	if (!big) {
		o->len += n + 1;
		o->pending++;
		return 0;
	}
	if (o->fd < 0 || write_lines(o, big, n + 1, &werr) != n + 1) {
		journal_state(o, o->fd < 0 ? EBADF : werr);
		o->write_errors++;
		ret = -EIO;
	} else {
		o->written++;
		o->size += n + 1;
	}
	if (o->seq_flushed)
		*o->seq_flushed = o->sequence;
	free(big);
	return ret;
}

int sw_output_write(struct sw_output *o, cJSON *ev)
{
	int sev, ret;
	char *line;

	cJSON_AddNumberToObject(sw_obj(ev, "event"), "sequence", (double)++o->sequence);
	if (o->seq_assigned)
		*o->seq_assigned = o->sequence;
	sev = sw_syslog_severity(cJSON_GetStringValue(cJSON_GetObjectItem(sw_obj(ev, "event"), "action")));
	line = cJSON_PrintUnformatted(ev);
	cJSON_Delete(ev);
	if (!line) {
		o->write_errors++;
		return -ENOMEM;
	}
	ret = emit(o, line, strlen(line), NULL, 0, NULL, 0, sev);
	free(line);
	return ret;
}

int sw_output_line(struct sw_output *o, const char *text, size_t len, size_t seq_at,
		   const char *action)
{
	char seq[32] = ",\"sequence\":", tmp[20];
	size_t n = 12, d = 0;
	uint64_t v;

	if (!text || seq_at > len) {
		o->write_errors++;
		return -ENOMEM;
	}
	v = ++o->sequence;
	if (o->seq_assigned)
		*o->seq_assigned = o->sequence;
	do {
		tmp[d++] = '0' + v % 10;
		v /= 10;
	} while (v);
	while (d)
		seq[n++] = tmp[--d];
	return emit(o, text, seq_at, seq, n, text + seq_at, len - seq_at,
		    sw_syslog_severity(action));
}

/*
 * Write buf; on an error (disk full, EIO, the file made immutable) keep the
 * whole lines that made it, cut a partial one off the file so that the next
 * line starts a line of its own, and return how many bytes are kept.
 */
static size_t write_lines(struct sw_output *o, const char *buf, size_t len, int *err)
{
	size_t done = 0, keep;
	off_t end;

	*err = 0;
	while (done < len) {
		ssize_t n = write(o->fd, buf + done, len - done);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			*err = n < 0 ? errno : EIO;
			break;
		}
		done += n;
	}
	if (!*err)
		return len;
	for (keep = done; keep && buf[keep - 1] != '\n'; keep--)
		;
	/* O_APPEND: the offset is the end of what this write added. */
	end = lseek(o->fd, 0, SEEK_CUR);
	if (keep < done && end >= (off_t)(done - keep))
		if (ftruncate(o->fd, end - (done - keep)))
			keep = done; /* cannot cut: the next line still starts fresh */
	return keep;
}

/* Say once when the journal starts failing and once when it works again. */
static void journal_state(struct sw_output *o, int err)
{
	if (!err) {
		if (o->failing)
			pr_info("%s: writing the journal again; %llu lines lost in all "
				"(losses.write_errors)\n",
				o->path ? o->path : "stdout", (unsigned long long)o->write_errors);
		o->failing = 0;
		o->error[0] = 0;
		return;
	}
	if (o->fd >= 0 || !o->error[0]) /* else keep why it could not be opened */
		snprintf(o->error, sizeof(o->error), "%s: cannot write the journal: %s",
			 o->path ? o->path : "stdout", strerror(err));
	if (!o->failing)
		pr_warn("%s; events are lost, and counted in losses.write_errors, until it "
			"can be written again\n", o->error);
	o->failing = 1;
}

static uint64_t count_lines(const char *buf, size_t len)
{
	uint64_t n = 0;

	for (const char *p = buf; (p = memchr(p, '\n', buf + len - p)); p++)
		n++;
	return n;
}

void sw_output_flush(struct sw_output *o)
{
	size_t kept;
	int err;

	if (!o->len)
		return;
	/* A journal that could not be reopened (deleted directory, ...) is tried
	 * again at every flush: the lines in between are lost, and counted. */
	if (o->fd < 0 && o->path)
		open_file(o);
	kept = o->fd >= 0 ? write_lines(o, o->buf, o->len, &err) : 0;
	if (o->fd < 0)
		err = EBADF;
	if (kept == o->len) {
		o->written += o->pending;
		o->size += o->len;
		journal_state(o, 0);
	} else {
		uint64_t ok = count_lines(o->buf, kept);

		if (kept && o->buf[kept - 1] != '\n')
			ok = 0; /* ftruncate failed: the partial line is there */
		o->written += ok;
		o->size += kept;
		o->write_errors += o->pending - ok; /* disk full, ...: lost, counted */
		journal_state(o, err);
	}
	o->len = 0;
	o->pending = 0;
	if (o->seq_flushed)
		*o->seq_flushed = o->sequence;
	if (o->rotate_size && o->size >= o->rotate_size)
		rotate(o);
}
