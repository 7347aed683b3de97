// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* Prometheus text format from the status document; see metrics.h. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h> /* isnan, isinf: macros, no libm */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>
#include "util.h"
#include "metrics.h"

#define MAX_FAMILIES 256

struct text {
	char *p;
	size_t len, cap;
	int oom;
	/* Family names written so far: a name must appear once. */
	char *seen[MAX_FAMILIES];
	int nseen;
};

static void put(struct text *t, const char *s, size_t n)
{
	if (t->oom)
		return;
	if (t->len + n + 1 > t->cap) {
		size_t cap = t->cap ? t->cap : 4096;
		char *np;

		while (t->len + n + 1 > cap)
			cap *= 2;
		np = realloc(t->p, cap);
		if (!np) {
			t->oom = 1;
			return;
		}
		t->p = np;
		t->cap = cap;
	}
	memcpy(t->p + t->len, s, n);
	t->len += n;
	t->p[t->len] = 0;
}

static void puts_(struct text *t, const char *s)
{
	put(t, s, strlen(s));
}

static void putf(struct text *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void putf(struct text *t, const char *fmt, ...)
{
	char buf[512];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	if (n > 0)
		put(t, buf, (size_t)n < sizeof(buf) ? (size_t)n : sizeof(buf) - 1);
}

/* Length of the valid UTF-8 sequence at s, 0 if it is not one. */
static int utf8_len(const unsigned char *s)
{
	int n;
	unsigned int cp;

	if (s[0] < 0x80)
		return 1;
	if (s[0] >= 0xc2 && s[0] <= 0xdf)
		n = 2, cp = s[0] & 0x1f;
	else if (s[0] >= 0xe0 && s[0] <= 0xef)
		n = 3, cp = s[0] & 0x0f;
	else if (s[0] >= 0xf0 && s[0] <= 0xf4)
		n = 4, cp = s[0] & 0x07;
	else
		return 0;
	for (int i = 1; i < n; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = cp << 6 | (s[i] & 0x3f);
	}
	if ((n == 3 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) ||
	    (n == 4 && (cp < 0x10000 || cp > 0x10ffff)))
		return 0;
	return n;
}

/*
 * A label value or HELP text: the format escapes backslash, newline and (in
 * label values) the double quote. Other control characters and bytes that are
 * not UTF-8 become U+FFFD, so a cgroup name cannot write raw bytes to a terminal.
 */
static void put_escaped(struct text *t, const char *s, int quote)
{
	const unsigned char *p = (const unsigned char *)(s ? s : "");

	while (*p) {
		int n = utf8_len(p);

		if (*p == '\\')
			put(t, "\\\\", 2);
		else if (*p == '\n')
			put(t, "\\n", 2);
		else if (*p == '"' && quote)
			put(t, "\\\"", 2);
		else if (!n || *p < 0x20 || *p == 0x7f)
			put(t, "\xef\xbf\xbd", 3);
		else
			put(t, (const char *)p, n);
		p += n ? n : 1;
	}
}

static void put_value(struct text *t, double v)
{
	if (isnan(v))
		puts_(t, "NaN");
	else if (isinf(v))
		puts_(t, v > 0 ? "+Inf" : "-Inf");
	else if (v > -1e17 && v < 1e17 && v == (double)(long long)v)
		putf(t, "%.0f", v);
	else
		putf(t, "%.15g", v);
}

/* Metric names are [a-zA-Z_:][a-zA-Z0-9_:]*: anything else in a status key becomes '_'. */
static void make_name(char *out, size_t len, const char *prefix, const char *key,
		      const char *suffix)
{
	size_t n = snprintf(out, len, "%s", prefix);

	for (const char *k = key; *k && n + 1 < len; k++)
		out[n++] = ((*k >= 'a' && *k <= 'z') || (*k >= 'A' && *k <= 'Z') ||
			    (*k >= '0' && *k <= '9') || *k == '_') ?
				   *k :
				   '_';
	out[n] = 0;
	snprintf(out + n, len - n, "%s", suffix);
}

/* # HELP and # TYPE; 0 when the family was already written (then skip it). */
static int family(struct text *t, const char *name, const char *type, const char *help)
{
	for (int i = 0; i < t->nseen; i++)
		if (!strcmp(t->seen[i], name))
			return 0;
	if (t->nseen >= MAX_FAMILIES)
		return 0;
	t->seen[t->nseen] = strdup(name);
	if (!t->seen[t->nseen]) {
		t->oom = 1;
		return 0;
	}
	t->nseen++;
	putf(t, "# HELP %s ", name);
	put_escaped(t, help, 0);
	putf(t, "\n# TYPE %s %s\n", name, type);
	return 1;
}

static void sample(struct text *t, const char *name, double v)
{
	puts_(t, name);
	puts_(t, " ");
	put_value(t, v);
	puts_(t, "\n");
}

static void simple(struct text *t, const char *name, const char *type, const char *help,
		   double v)
{
	if (family(t, name, type, help))
		sample(t, name, v);
}

/* name{label="value",...} 1: an info metric. labels is NULL-terminated pairs. */
static void info(struct text *t, const char *name, const char *help, const char *const *labels)
{
	if (!family(t, name, "gauge", help))
		return;
	puts_(t, name);
	puts_(t, "{");
	for (int i = 0; labels[i]; i += 2) {
		putf(t, "%s%s=\"", i ? "," : "", labels[i]);
		put_escaped(t, labels[i + 1], 1);
		puts_(t, "\"");
	}
	puts_(t, "} 1\n");
}

static const char *str_at(const cJSON *obj, const char *key)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);

	return cJSON_IsString(v) ? v->valuestring : "";
}

struct known {
	const char *key, *name, *help;
};

/* status.counters: names and help where the key alone says too little. */
static const struct known counter_names[] = {
	{ "events_written", "events", "Event lines written to the output." },
	{ "records", "records", "Records read from the kernel ring buffer." },
	{ "connects_kernel", "connects_kernel", "connect() calls to a watched port seen by the kernel hooks." },
	{ "connects", "connects", "Connection attempts reported (connection_attempted events)." },
	{ "sessions", "sessions", "SMTP client sessions reported (smtp_session events)." },
	{ "unattributed", "unattributed", "Watched-port flows seen only on the wire (smtp_unattributed events)." },
	{ "alerts", "alerts", "Alerts raised (smtp_alert events)." },
	{ "data_records", "data_records", "Payload records captured by the kernel." },
	{ "output_rotations", "output_rotations", "Rotations of the output file." },
	{ "output_reopens", "output_reopens", "Reopens of the output file (SIGHUP)." },
	{ "payload_beyond_capture", "payload_beyond_capture", "Payload bytes seen beyond the capture bounds." },
	{ NULL, NULL, NULL },
};

static const struct known gauge_names[] = {
	{ "sessions_open", "sessions_open", "SMTP sessions open now." },
	{ "processes_tracked", "processes_tracked", "Processes with behaviour state in the window." },
	{ "ring_fill", "ring_fill_ratio", "Fill of the kernel ring buffer, 0 to 1." },
	{ "ring_used_bytes", "ring_used_bytes", "Bytes waiting in the kernel ring buffer." },
	{ "ring_size_bytes", "ring_size_bytes", "Size of the kernel ring buffer." },
	{ NULL, NULL, NULL },
};

static const struct known *lookup(const struct known *k, const char *key)
{
	for (; k->key; k++)
		if (!strcmp(k->key, key))
			return k;
	return NULL;
}

static void counters(struct text *t, const cJSON *obj)
{
	const cJSON *it;
	char name[160], help[200];

	cJSON_ArrayForEach(it, obj) {
		const struct known *g = lookup(gauge_names, it->string), *c;

		if (!cJSON_IsNumber(it))
			continue;
		if (g || !strncmp(it->string, "ring_", 5)) {
			make_name(name, sizeof(name), "smtpwatch_", g ? g->name : it->string, "");
			snprintf(help, sizeof(help), "%s", g ? g->help : "status.counters gauge.");
			simple(t, name, "gauge", help, it->valuedouble);
			continue;
		}
		c = lookup(counter_names, it->string);
		make_name(name, sizeof(name), "smtpwatch_", c ? c->name : it->string, "_total");
		if (c)
			snprintf(help, sizeof(help), "%s", c->help);
		else
			snprintf(help, sizeof(help), "status.counters.%s.", it->string);
		simple(t, name, "counter", help, it->valuedouble);
	}
}

static void losses(struct text *t, const cJSON *obj)
{
	const cJSON *it;
	int any = 0;

	cJSON_ArrayForEach(it, obj)
		any |= cJSON_IsNumber(it);
	if (!any || !family(t, "smtpwatch_losses_total", "counter",
			    "Events or records lost, by cause (status.losses)."))
		return;
	cJSON_ArrayForEach(it, obj) {
		if (!cJSON_IsNumber(it))
			continue;
		puts_(t, "smtpwatch_losses_total{cause=\"");
		put_escaped(t, it->string, 1);
		puts_(t, "\"} ");
		put_value(t, it->valuedouble);
		puts_(t, "\n");
	}
}

static void interfaces(struct text *t, const cJSON *arr)
{
	const cJSON *it;

	if (!cJSON_GetArraySize(arr) ||
	    !family(t, "smtpwatch_interface_attached", "gauge",
		    "1 when the tc programs are attached to the interface."))
		return;
	cJSON_ArrayForEach(it, arr) {
		puts_(t, "smtpwatch_interface_attached{interface=\"");
		put_escaped(t, str_at(it, "name"), 1);
		putf(t, "\"} %d\n", cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(it, "attached")));
	}
}

static double num(const cJSON *obj, const char *key, int *found)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);

	*found = cJSON_IsNumber(v);
	return *found ? v->valuedouble : 0;
}

static void syslog_out(struct text *t, const cJSON *sl)
{
	const char *target = str_at(sl, "target");
	double v;
	int found;

	v = num(sl, "sent", &found);
	if (found)
		simple(t, "smtpwatch_syslog_sent_total", "counter",
		       "Syslog messages delivered to the collector.", v);
	v = num(sl, "reconnects", &found);
	if (found)
		simple(t, "smtpwatch_syslog_reconnects_total", "counter",
		       "Times the syslog collector was reached again after losing it.", v);
	v = num(sl, "buffered", &found);
	if (found)
		simple(t, "smtpwatch_syslog_buffered_messages", "gauge",
		       "Syslog messages waiting for the collector.", v);
	v = num(sl, "buffered_bytes", &found);
	if (found)
		simple(t, "smtpwatch_syslog_buffered_bytes", "gauge",
		       "Bytes waiting for the syslog collector.", v);
	if (cJSON_IsBool(cJSON_GetObjectItemCaseSensitive(sl, "connected")) &&
	    family(t, "smtpwatch_syslog_connected", "gauge",
		   "1 when the syslog collector is reachable.")) {
		puts_(t, "smtpwatch_syslog_connected{target=\"");
		put_escaped(t, target, 1);
		putf(t, "\"} %d\n",
		     cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(sl, "connected")));
	}
}

char *sw_metrics_render(const cJSON *status)
{
	const cJSON *agent, *policy, *attach, *obj;
	struct text t = { 0 };
	double v;
	int found;

	simple(&t, "smtpwatch_up", "gauge",
	       "1 when the agent answers with all its hooks attached (status.ok).",
	       cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(status, "ok")));
	if (!status)
		goto done;
	agent = cJSON_GetObjectItemCaseSensitive(status, "agent");
	policy = cJSON_GetObjectItemCaseSensitive(status, "policy");
	attach = cJSON_GetObjectItemCaseSensitive(status, "attach");
	if (cJSON_IsObject(agent)) {
		const char *const build[] = { "version", str_at(agent, "version"), NULL };
		const char *const mode[] = { "mode", str_at(agent, "mode"), NULL };

		info(&t, "smtpwatch_build_info", "The agent's version.", build);
		info(&t, "smtpwatch_mode_info", "Policy mode: monitor or enforce.", mode);
		v = num(agent, "uptime_s", &found);
		if (found)
			simple(&t, "smtpwatch_uptime_seconds", "gauge", "Seconds since the agent started.", v);
	}
	if (cJSON_IsObject(attach)) {
		const char *const labels[] = { "tc_mode", str_at(attach, "tc_mode"), "cgroup",
					       str_at(attach, "cgroup"), NULL };

		info(&t, "smtpwatch_attach_info", "Where and how the kernel programs are attached.",
		     labels);
		obj = cJSON_GetObjectItemCaseSensitive(attach, "programs");
		if (cJSON_IsArray(obj))
			simple(&t, "smtpwatch_bpf_links", "gauge", "BPF programs attached.",
			       cJSON_GetArraySize(obj));
		interfaces(&t, cJSON_GetObjectItemCaseSensitive(attach, "interfaces"));
	}
	obj = cJSON_GetObjectItemCaseSensitive(status, "counters");
	if (cJSON_IsObject(obj))
		counters(&t, obj);
	if (cJSON_IsObject(policy)) {
		v = num(policy, "denied", &found);
		if (found)
			simple(&t, "smtpwatch_denied_total", "counter",
			       "Connections refused by the policy in enforce mode (connection_denied).", v);
		v = num(policy, "reloads", &found);
		if (found)
			simple(&t, "smtpwatch_config_reloads_total", "counter",
			       "Configuration reloads (SIGHUP).", v);
		simple(&t, "smtpwatch_config_reload_error", "gauge",
		       "1 when the last reload was refused and the previous policy runs.",
		       cJSON_GetObjectItemCaseSensitive(policy, "reload_error") != NULL);
		v = num(policy, "unresolved", &found);
		if (found)
			simple(&t, "smtpwatch_policy_unresolved", "gauge",
			       "Allow-list entries that do not resolve on this host.", v);
	}
	obj = cJSON_GetObjectItemCaseSensitive(status, "losses");
	if (cJSON_IsObject(obj))
		losses(&t, obj);
	obj = cJSON_GetObjectItemCaseSensitive(status, "syslog");
	if (cJSON_IsObject(obj))
		syslog_out(&t, obj);
done:
	for (int i = 0; i < t.nseen; i++)
		free(t.seen[i]);
	if (t.oom) {
		free(t.p);
		return NULL;
	}
	return t.p;
}

int sw_metrics_write_file(const char *path, const char *text)
{
	const char *slash = strrchr(path, '/'), *base = slash ? slash + 1 : path;
	char tmp[PATH_MAX], dir[PATH_MAX];
	int fd = -1, dfd = -1, ret;

	if (!*base)
		return -EINVAL;
	if (!slash)
		snprintf(dir, sizeof(dir), ".");
	else
		snprintf(dir, sizeof(dir), "%.*s", slash == path ? 1 : (int)(slash - path), path);
	if (snprintf(tmp, sizeof(tmp), "%s/.%s.XXXXXX", dir, base) >= (int)sizeof(tmp))
		return -ENAMETOOLONG;
	fd = mkostemp(tmp, O_CLOEXEC);
	if (fd < 0)
		return -errno;
	ret = sw_write_all(fd, text, strlen(text));
	if (ret)
		goto cleanup;
	/* node_exporter runs as its own user: the file must be world-readable. */
	if (fchmod(fd, 0644) || fsync(fd)) {
		ret = -errno;
		goto cleanup;
	}
	if (close(fd)) {
		fd = -1;
		ret = -errno;
		goto cleanup;
	}
	fd = -1;
	if (rename(tmp, path)) {
		ret = -errno;
		goto cleanup;
	}
	/* The rename itself survives a crash only once the directory is on disk. */
	dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd >= 0) {
		fsync(dfd);
		close(dfd);
	}
	return 0;
cleanup:
	if (fd >= 0)
		close(fd);
	unlink(tmp);
	return ret;
}
