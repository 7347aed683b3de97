// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * smtpwatch top: the agent's ranking of the processes that spoke SMTP, as a
 * live full-screen view, a plain table or the contract's JSON document.
 *
 * No curses: the view needs a handful of ANSI sequences that every terminal
 * emulator in use understands, and raw termios is all the input it needs.
 * Every string the agent sends goes through sw_text_terminal() first, so the
 * screen only ever receives printable ASCII from the network.
 */
#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/time.h>
#include <sysexits.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>
#include <cjson/cJSON.h>

#include "agent.h"
#include "control.h"
#include "textsafe.h"
#include "util.h"

/* Longer than the agent's own client deadline: a stopped agent must not hang top. */
#define TOP_REQUEST_TIMEOUT_S 5
#define TOP_HEADER_LINES 4
#define TOP_MIN_DELAY_S 0.1 /* interactive refresh floor: -d 0 would spin */

static const char usage_top[] =
	"Usage: smtpwatch top [OPTIONS]\n"
	"Rank the processes that spoke SMTP in the agent's window, worst first.\n"
	"On a terminal: a full-screen view refreshed every -d seconds. With -b, or when\n"
	"standard output is not a terminal: a plain table without escape codes.\n\n"
	"  -S, --socket PATH      control socket (default " SW_DEFAULT_SOCKET ")\n"
	"  -b, --batch            plain text, then exit after -n iterations\n"
	"  -n, --iterations N     refreshes before exiting (default: 1 in batch mode,\n"
	"                         until 'q' in the full-screen view)\n"
	"  -d, --delay SECONDS    time between refreshes, fractions allowed (default 2)\n"
	"  -s, --sort KEY         risk (default), sessions, rate, dests, rejected or pid\n"
	"  -o, --output FORMAT    table (default) or json: one line per iteration,\n"
	"                         {\"processes\":[{\"pid\",\"name\",\"executable\",\"user\",\n"
	"                         \"container_id\",\"sessions\",\"destinations\",\"helos\",\n"
	"                         \"replies_rejected\",\"risk_score\",\"rules\"}...]}\n"
	"  -h, --help             this text\n\n"
	"Keys: q quit, s next sort key, p pause, Up/Down/PgUp/PgDn/Home/End scroll.\n"
	"Exit codes: 0, 64 usage, 65 bad reply, 69 no agent answers, 77 permission denied.\n";

enum top_key { KEY_RISK, KEY_SESSIONS, KEY_RATE, KEY_DESTS, KEY_REJECTED, KEY_PID, KEY_MAX };

static const struct {
	const char *name;
	const char *field;
} sort_keys[KEY_MAX] = {
	[KEY_RISK] = { "risk", "risk_score" },
	[KEY_SESSIONS] = { "sessions", "sessions" },
	[KEY_RATE] = { "rate", "sessions_per_min" },
	[KEY_DESTS] = { "dests", "destinations" },
	[KEY_REJECTED] = { "rejected", "replies_rejected" },
	[KEY_PID] = { "pid", "pid" },
};

/* The document of the contract: exactly these keys, in this order. */
static const char *const contract_keys[] = {
	"pid", "name", "executable", "user", "container_id", "sessions",
	"destinations", "helos", "replies_rejected", "risk_score", "rules",
};

enum cut { CUT_MARK, CUT_PLAIN, CUT_TAIL };

static const struct column {
	const char *title;
	size_t width; /* 0: the rest of the line */
	bool right;
	enum cut cut;
} columns[] = {
	{ "PID", 7, true, CUT_MARK },	     { "USER", 10, false, CUT_MARK },
	{ "CONTAINER", 12, false, CUT_PLAIN }, { "EXECUTABLE", 28, false, CUT_TAIL },
	{ "SESS/MIN", 8, true, CUT_MARK },   { "DESTS", 5, true, CUT_MARK },
	{ "LAST HELO", 28, false, CUT_MARK }, { "REJ", 4, true, CUT_MARK },
	{ "LISTS", 16, false, CUT_MARK },    { "RISK", 4, true, CUT_MARK },
	{ "RULES", 0, false, CUT_MARK },
};
#define NCOLS (sizeof(columns) / sizeof(columns[0]))

struct top_opts {
	const char *path;
	bool batch, json;
	long iterations; /* 0: until 'q' */
	double delay_s;
	int key;
};

struct sbuf {
	char *p;
	size_t len, cap;
	bool oom;
};

struct proc_ref {
	const cJSON *p;
	int idx; /* the agent's order breaks ties */
};

/* Set by the handlers only; the loop does the work (no work in signal handlers). */
static volatile sig_atomic_t got_quit, got_winch, got_tstp, got_alarm;

static void on_signal(int sig)
{
	switch (sig) {
	case SIGWINCH:
	case SIGCONT:
		got_winch = 1;
		break;
	case SIGTSTP:
		got_tstp = 1;
		break;
	case SIGALRM:
		got_alarm = 1;
		break;
	default:
		got_quit = sig;
	}
}

static bool sb_reserve(struct sbuf *b, size_t n)
{
	size_t cap;
	char *p;

	if (b->oom)
		return false;
	if (b->len + n + 1 <= b->cap)
		return true;
	cap = b->cap ? b->cap : 4096;
	while (cap < b->len + n + 1)
		cap *= 2;
	p = realloc(b->p, cap);
	if (!p) {
		b->oom = true;
		return false;
	}
	b->p = p;
	b->cap = cap;
	return true;
}

static void sb_add(struct sbuf *b, const char *s, size_t n)
{
	if (!sb_reserve(b, n))
		return;
	memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = '\0';
}

static void sb_puts(struct sbuf *b, const char *s)
{
	sb_add(b, s, strlen(s));
}

static void sb_spaces(struct sbuf *b, size_t n)
{
	while (n--)
		sb_add(b, " ", 1);
}

__attribute__((format(printf, 2, 3))) static void sb_printf(struct sbuf *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0 || !sb_reserve(b, n))
		return;
	va_start(ap, fmt);
	vsnprintf(b->p + b->len, n + 1, fmt, ap);
	va_end(ap);
	b->len += n;
}

/* Untrusted bytes, as printable ASCII ("\xNN" for the rest). */
static void sb_esc(struct sbuf *b, const char *s)
{
	size_t len = s ? strlen(s) : 0;

	if (!sb_reserve(b, len * 4))
		return;
	b->len += sw_text_terminal((const uint8_t *)s, len, b->p + b->len, len * 4 + 1);
}

/* An agent string, escaped; "-" when absent or empty. */
static void sb_field(struct sbuf *b, const cJSON *o, const char *key)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);

	if (cJSON_IsString(v) && v->valuestring[0])
		sb_esc(b, v->valuestring);
	else
		sb_puts(b, "-");
}

/* An array of agent strings, escaped, comma separated; "-" when empty. */
static void sb_list(struct sbuf *b, const cJSON *o, const char *key)
{
	const cJSON *arr = cJSON_GetObjectItemCaseSensitive(o, key), *v;
	bool any = false;

	cJSON_ArrayForEach(v, arr) {
		if (!cJSON_IsString(v))
			continue;
		if (any)
			sb_puts(b, ",");
		sb_esc(b, v->valuestring);
		any = true;
	}
	if (!any)
		sb_puts(b, "-");
}

static void sb_num(struct sbuf *b, const cJSON *o, const char *key)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);

	if (!cJSON_IsNumber(v))
		sb_puts(b, "-");
	else if (v->valuedouble == (double)(long long)v->valuedouble)
		sb_printf(b, "%lld", (long long)v->valuedouble);
	else
		sb_printf(b, "%.1f", v->valuedouble);
}

/* Length of the escape (or plain character) that starts at t. */
static size_t tok_len(const char *t)
{
	if (t[0] != '\\' || !t[1])
		return 1;
	if (t[1] != 'x')
		return 2;
	return strnlen(t, 4);
}

/*
 * Text from sb_esc() in exactly w columns, padded, or cut when longer. A cut
 * never splits an escape: half of "\x1b" would look like other bytes.
 */
static void sb_cell(struct sbuf *b, const char *t, size_t w, bool right, enum cut cut)
{
	size_t len = strlen(t), n = 0, start = 0;

	if (!w)
		return;
	if (len <= w) {
		if (right)
			sb_spaces(b, w - len);
		sb_add(b, t, len);
		if (!right)
			sb_spaces(b, w - len);
		return;
	}
	if (cut == CUT_TAIL) {
		/* The end of a path names the program; the start is often /usr/bin. */
		while (len - start > w - 1)
			start += tok_len(t + start);
		sb_puts(b, "+");
		sb_add(b, t + start, len - start);
		sb_spaces(b, w - 1 - (len - start));
		return;
	}
	while (n < len && n + tok_len(t + n) <= w - (cut == CUT_MARK))
		n += tok_len(t + n);
	sb_add(b, t, n);
	if (cut == CUT_MARK)
		sb_puts(b, "+");
	sb_spaces(b, w - n - (cut == CUT_MARK));
}

/*
 * One table line from escaped cells, at most limit columns (SIZE_MAX: the
 * last column whole, for batch output), trailing blanks trimmed.
 */
static void put_line(struct sbuf *b, struct sbuf cells[NCOLS], size_t limit)
{
	size_t used = 0, start = b->len, w;

	for (size_t i = 0; i < NCOLS && used < limit; i++) {
		const char *t = cells[i].p ? cells[i].p : "";

		if (i) {
			sb_puts(b, " ");
			used++;
		}
		w = columns[i].width;
		if (!w)
			w = limit == SIZE_MAX ? strlen(t) : limit - used;
		if (w > limit - used)
			w = limit - used;
		sb_cell(b, t, w, columns[i].right, columns[i].cut);
		used += w;
	}
	while (b->len > start && b->p[b->len - 1] == ' ')
		b->p[--b->len] = '\0';
}

static void put_titles(struct sbuf *b, size_t limit)
{
	struct sbuf cells[NCOLS] = {};

	for (size_t i = 0; i < NCOLS; i++)
		sb_puts(&cells[i], columns[i].title);
	put_line(b, cells, limit);
	for (size_t i = 0; i < NCOLS; i++)
		free(cells[i].p);
}

static void put_row(struct sbuf *b, const cJSON *p, size_t limit)
{
	struct sbuf c[NCOLS] = {};

	sb_num(&c[0], p, "pid");
	sb_field(&c[1], p, "user");
	sb_field(&c[2], p, "container_id");
	sb_field(&c[3], p, "executable");
	sb_num(&c[4], p, "sessions_per_min");
	sb_num(&c[5], p, "destinations");
	sb_field(&c[6], p, "last_helo");
	sb_num(&c[7], p, "replies_rejected");
	sb_list(&c[8], p, "lists");
	sb_num(&c[9], p, "risk_score");
	sb_list(&c[10], p, "rules");
	for (size_t i = 0; i < NCOLS; i++)
		b->oom |= c[i].oom;
	put_line(b, c, limit);
	for (size_t i = 0; i < NCOLS; i++)
		free(c[i].p);
}

static void put_uptime(struct sbuf *b, const cJSON *agent)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(agent, "uptime_s");
	long long s;

	if (!cJSON_IsNumber(v) || v->valuedouble < 0) {
		sb_puts(b, "-");
		return;
	}
	s = (long long)v->valuedouble;
	if (s >= 86400)
		sb_printf(b, "%lldd%02lldh", s / 86400, s % 86400 / 3600);
	else if (s >= 3600)
		sb_printf(b, "%lldh%02lldm", s / 3600, s % 3600 / 60);
	else
		sb_printf(b, "%lldm%02llds", s / 60, s % 60);
}

/* "host H  agent monitor  tc tcx  window 600s" */
static void put_identity(struct sbuf *b, const cJSON *agent)
{
	sb_puts(b, "host ");
	sb_field(b, agent, "host");
	sb_puts(b, "  agent ");
	sb_field(b, agent, "mode");
	sb_puts(b, "  tc ");
	sb_field(b, agent, "tc_mode");
	sb_puts(b, "  window ");
	sb_num(b, agent, "window_s");
	sb_puts(b, "s");
}

/* "events N  sessions N  alerts N  losses N  uptime U  processes N" */
static void put_health(struct sbuf *b, const cJSON *agent, int nproc)
{
	static const char *const fields[] = { "events", "sessions", "alerts", "losses" };

	for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++) {
		sb_printf(b, "%s ", fields[i]);
		sb_num(b, agent, fields[i]);
		sb_puts(b, "  ");
	}
	sb_puts(b, "uptime ");
	put_uptime(b, agent);
	sb_printf(b, "  processes %d", nproc);
}

static double num(const cJSON *o, const char *key)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);

	return cJSON_IsNumber(v) ? v->valuedouble : 0;
}

static int cmp_desc(double a, double b)
{
	return a > b ? -1 : a < b ? 1 : 0;
}

static int by_key(const void *x, const void *y, void *arg)
{
	const struct proc_ref *a = x, *b = y;
	int key = *(const int *)arg, r;

	if (key == KEY_PID)
		r = -cmp_desc(num(a->p, "pid"), num(b->p, "pid"));
	else
		r = cmp_desc(num(a->p, sort_keys[key].field), num(b->p, sort_keys[key].field));
	if (!r && key == KEY_RISK)
		r = cmp_desc(num(a->p, "sessions"), num(b->p, "sessions"));
	return r ? r : a->idx - b->idx;
}

/* The reply's processes sorted by key. Returns the count, or -ENOMEM. */
static int rank(const cJSON *reply, int key, struct proc_ref **out)
{
	const cJSON *arr = cJSON_GetObjectItemCaseSensitive(reply, "processes"), *p;
	struct proc_ref *v;
	int n = 0;

	*out = NULL;
	v = calloc(cJSON_GetArraySize(arr) + 1, sizeof(*v));
	if (!v)
		return -ENOMEM;
	cJSON_ArrayForEach(p, arr) {
		if (!cJSON_IsObject(p))
			continue;
		v[n].p = p;
		v[n].idx = n;
		n++;
	}
	qsort_r(v, n, sizeof(*v), by_key, &key);
	*out = v;
	return n;
}

/*
 * The agent's reply to "top": 0, or -errno with one sentence in msg
 * (-EACCES when the socket or the agent refused us).
 */
static int fetch(const char *path, cJSON **out, struct sbuf *msg)
{
	struct itimerval t = { .it_value = { TOP_REQUEST_TIMEOUT_S, 0 },
			       .it_interval = { 0, 200000 } }; /* again, if the first one lands before recv() */
	struct itimerval off = {};
	const cJSON *e;
	cJSON *r;
	int err;

	*out = NULL;
	msg->len = 0;
	got_alarm = 0;
	setitimer(ITIMER_REAL, &t, NULL);
	r = sw_control_request(path, "top");
	err = errno;
	setitimer(ITIMER_REAL, &off, NULL);
	if (!r) {
		if (got_alarm)
			err = ETIMEDOUT;
		if (!err)
			err = EIO;
		if (err == EACCES || err == EPERM) {
			sb_puts(msg, "permission denied on ");
			sb_esc(msg, path);
			sb_puts(msg, ": top needs root or a member of the agent's --socket-group");
			return -EACCES;
		}
		sb_puts(msg, "no agent answers on ");
		sb_esc(msg, path);
		sb_printf(msg, " (%s): start one with 'smtpwatch run'", strerror(err));
		return -err;
	}
	e = cJSON_GetObjectItemCaseSensitive(r, "error");
	if (cJSON_IsString(e)) {
		err = strstr(e->valuestring, "permission") ? EACCES : EPROTO;
		sb_puts(msg, "the agent on ");
		sb_esc(msg, path);
		sb_puts(msg, " refused: ");
		sb_esc(msg, e->valuestring);
		cJSON_Delete(r);
		return -err;
	}
	if (!cJSON_IsArray(cJSON_GetObjectItemCaseSensitive(r, "processes"))) {
		sb_puts(msg, "the agent on ");
		sb_esc(msg, path);
		sb_puts(msg, " sent a reply without a processes list: is it an older version?");
		cJSON_Delete(r);
		return -EBADMSG;
	}
	*out = r;
	return 0;
}

static int exit_code(int err)
{
	if (err == -EACCES)
		return EX_SW_NOPERM;
	if (err == -EBADMSG)
		return EX_SW_DATAERR;
	return err == -ENOMEM ? EX_OSERR : EX_SW_UNAVAILABLE;
}

/* {"processes":[...]} with the contract's keys only, on one line. */
static int print_json(const struct proc_ref *v, int n)
{
	cJSON *doc = cJSON_CreateObject(), *arr, *o;
	char *line = NULL;
	int err = -ENOMEM;

	arr = cJSON_AddArrayToObject(doc, "processes");
	if (!arr)
		goto cleanup;
	for (int i = 0; i < n; i++) {
		o = cJSON_CreateObject();
		if (!o || !cJSON_AddItemToArray(arr, o))
			goto cleanup;
		for (size_t k = 0; k < sizeof(contract_keys) / sizeof(contract_keys[0]); k++) {
			const cJSON *src = cJSON_GetObjectItemCaseSensitive(v[i].p, contract_keys[k]);
			/* A key the agent left out stays in the document, as null. */
			cJSON *dup = src ? cJSON_Duplicate(src, true) : cJSON_CreateNull();

			if (!dup || !cJSON_AddItemToObject(o, contract_keys[k], dup)) {
				cJSON_Delete(dup);
				goto cleanup;
			}
		}
	}
	line = cJSON_PrintUnformatted(doc);
	if (!line)
		goto cleanup;
	err = puts(line) == EOF || fflush(stdout) ? -EIO : 0;
cleanup:
	free(line);
	cJSON_Delete(doc);
	return err;
}

static int print_table(const cJSON *reply, const struct proc_ref *v, int n, int key, bool first)
{
	const cJSON *agent = cJSON_GetObjectItemCaseSensitive(reply, "agent");
	struct sbuf b = {};
	int err = 0;

	if (!first)
		sb_puts(&b, "\n");
	put_identity(&b, agent);
	sb_printf(&b, "  sort: %s\n", sort_keys[key].name);
	put_health(&b, agent, n);
	sb_puts(&b, "\n");
	put_titles(&b, SIZE_MAX);
	sb_puts(&b, "\n");
	for (int i = 0; i < n; i++) {
		put_row(&b, v[i].p, SIZE_MAX);
		sb_puts(&b, "\n");
	}
	if (b.oom)
		err = -ENOMEM;
	else if (fwrite(b.p, 1, b.len, stdout) != b.len || fflush(stdout))
		err = -EIO;
	free(b.p);
	return err;
}

static void sleep_s(double s)
{
	struct timespec ts = { (time_t)s, (long)((s - (time_t)s) * 1e9) };

	while (nanosleep(&ts, &ts) && errno == EINTR)
		;
}

/* -b, -o json, or standard output that is not a terminal. */
static int run_batch(const struct top_opts *o)
{
	struct sbuf msg = {};
	struct proc_ref *v = NULL;
	cJSON *reply = NULL;
	long iters = o->iterations ? o->iterations : 1;
	int ret = 0, err, n;

	for (long i = 0; i < iters; i++) {
		if (i)
			sleep_s(o->delay_s);
		err = fetch(o->path, &reply, &msg);
		if (err) {
			fprintf(stderr, "smtpwatch: %s\n", msg.p ? msg.p : strerror(-err));
			ret = exit_code(err);
			goto cleanup;
		}
		n = rank(reply, o->key, &v);
		if (n < 0)
			err = n;
		else if (o->json)
			err = print_json(v, n);
		else
			err = print_table(reply, v, n, o->key, i == 0);
		free(v);
		v = NULL;
		cJSON_Delete(reply);
		reply = NULL;
		if (err) {
			fprintf(stderr, "smtpwatch: top: %s\n",
				err == -EIO ? "writing standard output failed" : strerror(-err));
			ret = err == -EIO ? EX_IOERR : EX_OSERR;
			goto cleanup;
		}
	}
cleanup:
	free(msg.p);
	return ret;
}

struct view {
	const struct top_opts *o;
	double delay_s;	 /* -d, with a floor */
	cJSON *reply;	 /* the last good reply; NULL before the first */
	struct sbuf err; /* why the last fetch failed; empty when it did not */
	int key;
	bool paused, clear, have_tios;
	size_t scroll;
	int nproc;
	unsigned short rows, cols;
	struct termios saved;
	struct sbuf frame;
};

static void term_size(struct view *v)
{
	struct winsize ws;

	if (ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) || !ws.ws_row || !ws.ws_col) {
		ws.ws_row = 24;
		ws.ws_col = 80;
	}
	v->rows = ws.ws_row;
	v->cols = ws.ws_col;
	v->clear = true;
}

/*
 * Keys one at a time, no echo; ISIG stays so ^C and ^Z arrive as signals.
 * Alternate screen, hidden cursor, no autowrap: a long line can never wrap.
 */
static int term_enter(struct view *v)
{
	static const char enter[] = "\x1b[?1049h\x1b[?25l\x1b[?7l\x1b[2J";
	struct termios raw;

	if (!v->have_tios && isatty(STDIN_FILENO) && !tcgetattr(STDIN_FILENO, &v->saved)) {
		raw = v->saved;
		raw.c_lflag &= ~(ICANON | ECHO);
		raw.c_iflag &= ~(IXON | ICRNL);
		raw.c_cc[VMIN] = 1;
		raw.c_cc[VTIME] = 0;
		if (tcsetattr(STDIN_FILENO, TCSANOW, &raw))
			return -errno;
		v->have_tios = true;
	}
	term_size(v);
	return sw_write_all(STDOUT_FILENO, enter, sizeof(enter) - 1);
}

static void term_leave(struct view *v)
{
	static const char reset[] = "\x1b[m\x1b[?7h\x1b[?25h\x1b[?1049l";

	sw_write_all(STDOUT_FILENO, reset, sizeof(reset) - 1);
	if (v->have_tios)
		tcsetattr(STDIN_FILENO, TCSANOW, &v->saved);
	v->have_tios = false;
}

static size_t visible_rows(const struct view *v)
{
	return v->rows > TOP_HEADER_LINES ? v->rows - TOP_HEADER_LINES : 0;
}

static size_t max_scroll(const struct view *v)
{
	size_t vis = visible_rows(v);

	return (size_t)v->nproc > vis ? v->nproc - vis : 0;
}

/*
 * One screen line: cut to the width, cleared to its end; no newline after the
 * last. A line that fills the width is not cleared: with the cursor on the
 * last column, erase-line would take the last character with it.
 */
static void screen_line(struct view *v, int *line, const char *text, const char *attr)
{
	struct sbuf *f = &v->frame;
	size_t len = strlen(text), w = attr || len > v->cols ? v->cols : len;

	if (*line >= v->rows)
		return;
	if (*line)
		sb_puts(f, "\r\n");
	if (attr)
		sb_puts(f, attr); /* padded to the width: a full bar */
	sb_cell(f, text, w, false, CUT_PLAIN);
	if (attr)
		sb_puts(f, "\x1b[m");
	if (w < v->cols)
		sb_puts(f, "\x1b[K");
	(*line)++;
}

static int draw(struct view *v)
{
	const cJSON *agent = cJSON_GetObjectItemCaseSensitive(v->reply, "agent");
	struct sbuf t = {};
	struct proc_ref *refs = NULL;
	char clock[16] = "";
	time_t now = time(NULL);
	struct tm tm;
	size_t vis = visible_rows(v);
	int n = 0, line = 0, err;

	if (v->reply) {
		n = rank(v->reply, v->key, &refs);
		if (n < 0)
			return n;
	}
	v->nproc = n;
	if (v->scroll > max_scroll(v))
		v->scroll = max_scroll(v);
	if (localtime_r(&now, &tm))
		strftime(clock, sizeof(clock), "%H:%M:%S", &tm);

	v->frame.len = 0;
	sb_puts(&v->frame, v->clear ? "\x1b[H\x1b[2J" : "\x1b[H");
	v->clear = false;

	/* What the keys change comes first: it must survive a narrow terminal. */
	sb_printf(&t, "smtpwatch top %s  sort: %s%s  ", clock, sort_keys[v->key].name,
		  v->paused ? "  [PAUSED]" : "");
	put_identity(&t, agent);
	screen_line(v, &line, t.p, NULL);

	t.len = 0;
	if (v->err.len) {
		sb_add(&t, v->err.p, v->err.len);
		sb_printf(&t, "; retrying every %gs%s", v->delay_s,
			  v->reply ? " (the table below is the last answer)" : "");
	} else {
		put_health(&t, agent, n);
		if (n && vis)
			sb_printf(&t, "  rows %zu-%zu", v->scroll + 1,
				  v->scroll + (vis < (size_t)n - v->scroll ? vis : (size_t)n - v->scroll));
	}
	screen_line(v, &line, t.p ? t.p : "", v->err.len ? "\x1b[1m" : NULL);

	screen_line(v, &line, "keys: q quit  s sort  p pause  Up/Down PgUp/PgDn Home/End scroll", NULL);

	t.len = 0;
	put_titles(&t, v->cols);
	screen_line(v, &line, t.p ? t.p : "", "\x1b[7m");

	for (size_t i = v->scroll; i < (size_t)n && i < v->scroll + vis; i++) {
		t.len = 0;
		put_row(&t, refs[i].p, v->cols);
		screen_line(v, &line, t.p ? t.p : "", NULL);
	}
	sb_puts(&v->frame, "\x1b[J");

	err = t.oom || v->frame.oom ? -ENOMEM : sw_write_all(STDOUT_FILENO, v->frame.p, v->frame.len);
	free(t.p);
	free(refs);
	return err;
}

/* Keys read in one go; escape sequences for the arrows and pages. */
static void on_keys(struct view *v, const char *k, size_t n, uint64_t *next_ns)
{
	size_t page = visible_rows(v) > 1 ? visible_rows(v) - 1 : 1;

	for (size_t i = 0; i < n; i++) {
		switch (k[i]) {
		case 'q':
		case 'Q':
			got_quit = 1;
			return;
		case 's':
			v->key = (v->key + 1) % KEY_MAX;
			v->scroll = 0;
			continue;
		case 'S':
			v->key = (v->key + KEY_MAX - 1) % KEY_MAX;
			v->scroll = 0;
			continue;
		case 'p':
		case ' ':
			v->paused = !v->paused;
			if (!v->paused)
				*next_ns = 0; /* fresh data at once on resume */
			continue;
		case 'k':
			v->scroll -= v->scroll > 0;
			continue;
		case 'j':
			v->scroll++;
			continue;
		case 0x0c: /* ^L */
			v->clear = true;
			continue;
		case 0x1b:
			break;
		default:
			continue;
		}
		if (i + 2 >= n || (k[i + 1] != '[' && k[i + 1] != 'O'))
			continue;
		i += 2;
		switch (k[i]) {
		case 'A':
			v->scroll -= v->scroll > 0;
			break;
		case 'B':
			v->scroll++;
			break;
		case 'H':
			v->scroll = 0;
			break;
		case 'F':
			v->scroll = max_scroll(v);
			break;
		case '1':
		case '4':
		case '5':
		case '6':
			if (i + 1 < n && k[i + 1] == '~') {
				if (k[i] == '1')
					v->scroll = 0;
				else if (k[i] == '4')
					v->scroll = max_scroll(v);
				else if (k[i] == '5')
					v->scroll = v->scroll > page ? v->scroll - page : 0;
				else
					v->scroll += page;
			}
			break;
		}
		/* Skip the rest of any sequence up to its final byte. */
		while (i < n && !(k[i] >= 0x40 && k[i] <= 0x7e))
			i++;
	}
	if (v->scroll > max_scroll(v))
		v->scroll = max_scroll(v);
}

static int install_handlers(const int *sigs, size_t n, struct sigaction *old)
{
	struct sigaction sa = { .sa_handler = on_signal };

	/* No SA_RESTART: a signal must interrupt a blocked request or poll. */
	sigemptyset(&sa.sa_mask);
	for (size_t i = 0; i < n; i++)
		if (sigaction(sigs[i], &sa, &old[i]))
			return -errno;
	return 0;
}

static const int view_signals[] = { SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGWINCH, SIGTSTP, SIGCONT };
#define NVSIG (sizeof(view_signals) / sizeof(view_signals[0]))

/* The full-screen view. Signals are blocked except inside ppoll() and requests. */
static int run_interactive(const struct top_opts *o)
{
	struct view v = {
		.o = o,
		.key = o->key,
		.delay_s = o->delay_s > TOP_MIN_DELAY_S ? o->delay_s : TOP_MIN_DELAY_S,
	};
	struct sigaction old[NVSIG];
	sigset_t block, orig;
	struct pollfd pfd = { .fd = STDIN_FILENO, .events = POLLIN };
	uint64_t next = 0, now;
	long fetched = 0;
	int err, ret = 0;
	bool entered = false, handlers = false;

	sigemptyset(&block);
	for (size_t i = 0; i < NVSIG; i++)
		sigaddset(&block, view_signals[i]);
	sigprocmask(SIG_BLOCK, &block, &orig);
	err = install_handlers(view_signals, NVSIG, old);
	if (err)
		goto cleanup;
	handlers = true;
	err = term_enter(&v);
	if (err)
		goto cleanup;
	entered = true;

	while (!got_quit) {
		bool redraw = false;
		struct timespec ts, *tsp = NULL;
		char keys[64];
		int r;

		if (got_tstp) {
			/* ^Z: hand the terminal back as it was, stop, take it again. */
			got_tstp = 0;
			term_leave(&v);
			raise(SIGSTOP);
			err = term_enter(&v);
			if (err)
				goto cleanup;
			redraw = true;
		}
		if (got_winch) {
			got_winch = 0;
			term_size(&v);
			redraw = true;
		}
		now = sw_now_ns(CLOCK_MONOTONIC);
		if (o->iterations && fetched >= o->iterations && now >= next)
			break;
		if (!v.paused && now >= next) {
			cJSON *reply;

			sigprocmask(SIG_SETMASK, &orig, NULL);
			err = fetch(o->path, &reply, &v.err);
			sigprocmask(SIG_BLOCK, &block, NULL);
			if (got_quit)
				break;
			if (err == -ENOMEM)
				goto cleanup;
			if (!err) {
				cJSON_Delete(v.reply);
				v.reply = reply;
				v.err.len = 0;
			}
			fetched++;
			now = sw_now_ns(CLOCK_MONOTONIC);
			next = now + (uint64_t)(v.delay_s * 1e9);
			redraw = true;
		}
		if (redraw) {
			err = draw(&v);
			if (err)
				goto cleanup;
		}
		if (!v.paused) {
			uint64_t left = next > now ? next - now : 0;

			ts.tv_sec = left / 1000000000ULL;
			ts.tv_nsec = left % 1000000000ULL;
			tsp = &ts;
		}
		r = ppoll(pfd.fd >= 0 ? &pfd : NULL, pfd.fd >= 0, tsp, &orig);
		if (r < 0 && errno != EINTR) {
			err = -errno;
			goto cleanup;
		}
		if (r <= 0)
			continue;
		if (pfd.revents & POLLIN) {
			ssize_t k = read(STDIN_FILENO, keys, sizeof(keys));

			if (k > 0) {
				on_keys(&v, keys, k, &next);
				err = draw(&v);
				if (err)
					goto cleanup;
			} else if (k == 0 || errno != EINTR) {
				pfd.fd = -1; /* no more keys: refresh until a signal */
			}
		} else if (pfd.revents & (POLLHUP | POLLERR | POLLNVAL)) {
			pfd.fd = -1;
		}
	}
	err = 0;
cleanup:
	if (entered)
		term_leave(&v);
	if (handlers)
		for (size_t i = 0; i < NVSIG; i++)
			sigaction(view_signals[i], &old[i], NULL);
	sigprocmask(SIG_SETMASK, &orig, NULL);
	if (err) {
		fprintf(stderr, "smtpwatch: top: %s\n",
			err == -EIO ? "writing to the terminal failed" : strerror(-err));
		ret = err == -EIO ? EX_IOERR : EX_OSERR;
	}
	cJSON_Delete(v.reply);
	free(v.err.p);
	free(v.frame.p);
	return ret;
}

static int parse_key(const char *s)
{
	for (int i = 0; i < KEY_MAX; i++)
		if (!strcmp(s, sort_keys[i].name))
			return i;
	return -1;
}

int sw_cmd_top(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "socket", required_argument, NULL, 'S' },
		{ "batch", no_argument, NULL, 'b' },
		{ "iterations", required_argument, NULL, 'n' },
		{ "delay", required_argument, NULL, 'd' },
		{ "sort", required_argument, NULL, 's' },
		{ "output", required_argument, NULL, 'o' },
		{ "help", no_argument, NULL, 'h' },
		{},
	};
	struct top_opts o = { .path = SW_DEFAULT_SOCKET, .delay_s = 2, .key = KEY_RISK };
	struct sigaction old_alrm;
	char *end;
	int c;

	optind = 0;
	while ((c = getopt_long(argc, argv, "S:bn:d:s:o:h", longopts, NULL)) != -1) {
		switch (c) {
		case 'S':
			o.path = optarg;
			break;
		case 'b':
			o.batch = true;
			break;
		case 'n':
			errno = 0;
			o.iterations = strtol(optarg, &end, 10);
			if (errno || end == optarg || *end || o.iterations < 1 || o.iterations > 1000000000) {
				fprintf(stderr, "smtpwatch: -n takes a number of iterations from 1 to 1000000000\n");
				return EX_SW_USAGE;
			}
			break;
		case 'd':
			o.delay_s = strtod(optarg, &end);
			/* The negated test also refuses NaN. */
			if (end == optarg || *end || !(o.delay_s >= 0 && o.delay_s <= 86400)) {
				fprintf(stderr, "smtpwatch: -d takes seconds from 0 to 86400, fractions allowed\n");
				return EX_SW_USAGE;
			}
			break;
		case 's':
			o.key = parse_key(optarg);
			if (o.key < 0) {
				fprintf(stderr, "smtpwatch: -s takes risk, sessions, rate, dests, rejected or pid\n");
				return EX_SW_USAGE;
			}
			break;
		case 'o':
			if (strcmp(optarg, "table") && strcmp(optarg, "json")) {
				fprintf(stderr, "smtpwatch: -o takes table or json\n");
				return EX_SW_USAGE;
			}
			o.json = !strcmp(optarg, "json");
			break;
		case 'h':
			fputs(usage_top, stdout);
			return 0;
		default:
			fputs(usage_top, stderr);
			return EX_SW_USAGE;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "smtpwatch: top takes no arguments (got '%s')\n%s", argv[optind], usage_top);
		return EX_SW_USAGE;
	}
	/* The request timeout needs SIGALRM to interrupt, not to kill. */
	if (install_handlers((const int[]){ SIGALRM }, 1, &old_alrm)) {
		fprintf(stderr, "smtpwatch: top: %s\n", strerror(errno));
		return EX_OSERR;
	}
	c = o.batch || o.json || !isatty(STDOUT_FILENO) ? run_batch(&o) : run_interactive(&o);
	sigaction(SIGALRM, &old_alrm, NULL);
	return c;
}
