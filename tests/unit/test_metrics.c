// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* Prometheus text from a status document, checked line by line against the format. */
#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cjson/cJSON.h>
#include "check.h"
#include "metrics.h"

/* A status document shaped like the agent's (docs/control.md). */
static cJSON *status_doc(void)
{
	cJSON *r = cJSON_CreateObject(), *o, *arr, *f;

	cJSON_AddBoolToObject(r, "ok", 1);
	o = cJSON_AddObjectToObject(r, "agent");
	cJSON_AddStringToObject(o, "version", "0.1.0");
	cJSON_AddNumberToObject(o, "pid", 4242);
	cJSON_AddNumberToObject(o, "uptime_s", 3.25);
	cJSON_AddStringToObject(o, "mode", "monitor");
	o = cJSON_AddObjectToObject(r, "policy");
	cJSON_AddNumberToObject(o, "reloads", 2);
	cJSON_AddNumberToObject(o, "denied", 5);
	cJSON_AddNumberToObject(o, "unresolved", 1);
	o = cJSON_AddObjectToObject(r, "attach");
	/* A hostile cgroup path: quote, backslash, newline, ESC and a byte that is not UTF-8. */
	cJSON_AddStringToObject(o, "cgroup", "/sys/fs/cgroup/a\"b\\c\nd\x1b\xff-\xc3\xa9");
	arr = cJSON_AddArrayToObject(o, "programs");
	cJSON_AddItemToArray(arr, cJSON_CreateString("cgroup/connect4"));
	cJSON_AddItemToArray(arr, cJSON_CreateString("cgroup/connect6"));
	cJSON_AddStringToObject(o, "tc_mode", "tcx");
	arr = cJSON_AddArrayToObject(o, "interfaces");
	f = cJSON_CreateObject();
	cJSON_AddStringToObject(f, "name", "lo");
	cJSON_AddBoolToObject(f, "attached", 1);
	cJSON_AddItemToArray(arr, f);
	f = cJSON_CreateObject();
	cJSON_AddStringToObject(f, "name", "eth0");
	cJSON_AddBoolToObject(f, "attached", 0);
	cJSON_AddItemToArray(arr, f);
	o = cJSON_AddObjectToObject(r, "counters");
	cJSON_AddNumberToObject(o, "records", 100);
	cJSON_AddNumberToObject(o, "connects", 7);
	cJSON_AddNumberToObject(o, "sessions", 6);
	cJSON_AddNumberToObject(o, "unattributed", 1);
	cJSON_AddNumberToObject(o, "alerts", 2);
	cJSON_AddNumberToObject(o, "processes_tracked", 3);
	cJSON_AddNumberToObject(o, "sessions_open", 4);
	cJSON_AddNumberToObject(o, "data_records", 9007199254740992.0); /* 2^53 */
	cJSON_AddNumberToObject(o, "events_written", 42);
	cJSON_AddNumberToObject(o, "brand_new-counter", 11);
	o = cJSON_AddObjectToObject(r, "losses");
	cJSON_AddNumberToObject(o, "ring_full", 3);
	cJSON_AddNumberToObject(o, "flow_map_full", 0);
	cJSON_AddNumberToObject(o, "syslog_dropped", 8);
	o = cJSON_AddObjectToObject(r, "syslog");
	cJSON_AddStringToObject(o, "target", "tcp://192.0.2.1:514");
	cJSON_AddBoolToObject(o, "connected", 1);
	cJSON_AddNumberToObject(o, "sent", 40);
	cJSON_AddNumberToObject(o, "reconnects", 1);
	cJSON_AddNumberToObject(o, "buffered", 0);
	cJSON_AddNumberToObject(o, "buffered_bytes", 0);
	return r;
}

static int name_char(char c, int first)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':' ||
	       (!first && c >= '0' && c <= '9');
}

/*
 * The text format, strictly: "# HELP name text", "# TYPE name counter|gauge",
 * then that family's samples "name{label="value",...} number", each family
 * once, HELP and TYPE before its samples, counters named *_total, label values
 * with only \\ \" \n escapes, valid UTF-8, no control characters, final newline.
 * Returns NULL or what is wrong.
 */
static const char *validate(const char *text)
{
	static char why[1200];
	char fam[160] = "", seen[64][160];
	int nseen = 0, typed = 0;
	const char *p = text;

	if (!*text || text[strlen(text) - 1] != '\n')
		return "empty or no final newline";
	for (const unsigned char *u = (const unsigned char *)text; *u; u++)
		if ((*u < 0x20 && *u != '\n') || *u == 0x7f || *u == 0xff)
			return "raw control byte or 0xff in the output";
	while (*p) {
		const char *eol = strchr(p, '\n');
		char line[1024], name[160];
		size_t n = eol - p, k = 0;

		if (n >= sizeof(line))
			return "line too long";
		memcpy(line, p, n);
		line[n] = 0;
		p = eol + 1;
		if (!strncmp(line, "# HELP ", 7) || !strncmp(line, "# TYPE ", 7)) {
			const char *q = line + 7;

			while (name_char(*q, q == line + 7))
				name[k++] = *q++;
			name[k] = 0;
			if (!k || *q != ' ' || !q[1]) {
				snprintf(why, sizeof(why), "bad comment line: %s", line);
				return why;
			}
			if (line[2] == 'H') {
				for (int i = 0; i < nseen; i++)
					if (!strcmp(seen[i], name)) {
						snprintf(why, sizeof(why), "family %s appears twice", name);
						return why;
					}
				if (nseen == 64)
					return "too many families for the checker";
				snprintf(seen[nseen++], sizeof(seen[0]), "%s", name);
				snprintf(fam, sizeof(fam), "%s", name);
				typed = 0;
			} else {
				if (strcmp(name, fam) || typed)
					return "TYPE without its HELP just before";
				if (strcmp(q + 1, "counter") && strcmp(q + 1, "gauge"))
					return "unknown TYPE";
				if (!strcmp(q + 1, "counter") &&
				    (strlen(name) < 6 || strcmp(name + strlen(name) - 6, "_total")))
					return "a counter not named *_total";
				typed = 1;
			}
			continue;
		}
		/* A sample. */
		{
			const char *q = line;
			char *end;

			while (name_char(*q, q == line))
				name[k++] = *q++;
			name[k] = 0;
			if (!k || strcmp(name, fam) || !typed) {
				snprintf(why, sizeof(why), "sample outside its family: %s", line);
				return why;
			}
			if (strncmp(name, "smtpwatch_", 10))
				return "a name without the smtpwatch_ prefix";
			if (*q == '{') {
				q++;
				while (*q != '}') {
					const char *l0 = q;

					while (name_char(*q, q == l0))
						q++;
					if (q == l0 || q[0] != '=' || q[1] != '"')
						return "bad label name";
					q += 2;
					while (*q && *q != '"') {
						if (*q == '\\') {
							if (q[1] != '\\' && q[1] != '"' && q[1] != 'n')
								return "bad escape in a label value";
							q++;
						}
						q++;
					}
					if (*q != '"')
						return "unterminated label value";
					q++;
					if (*q == ',')
						q++;
					else if (*q != '}')
						return "bad label separator";
				}
				q++;
			}
			if (*q != ' ')
				return "no space before the value";
			q++;
			if (strcmp(q, "NaN") && strcmp(q, "+Inf") && strcmp(q, "-Inf")) {
				strtod(q, &end);
				if (end == q || *end) {
					snprintf(why, sizeof(why), "bad value: %s", line);
					return why;
				}
			}
		}
	}
	return NULL;
}

static int has_line(const char *text, const char *line)
{
	size_t n = strlen(line);

	for (const char *p = text; (p = strstr(p, line)); p++)
		if ((p == text || p[-1] == '\n') && p[n] == '\n')
			return 1;
	return 0;
}

static void test_render_format(void)
{
	cJSON *st = status_doc();
	char *m = sw_metrics_render(st);
	const char *why;

	CHECK(m != NULL);
	if (!m)
		goto out;
	why = validate(m);
	if (why)
		printf("  %s\n", why);
	CHECK(why == NULL);
	/* The validator itself must reject what is wrong. */
	CHECK(validate("smtpwatch_x 1\n") != NULL);
	CHECK(validate("# HELP smtpwatch_x h\n# TYPE smtpwatch_x counter\nsmtpwatch_x 1\n") != NULL);
	CHECK(validate("# HELP smtpwatch_x h\n# TYPE smtpwatch_x gauge\nsmtpwatch_x{a=\"\\t\"} 1\n") !=
	      NULL);
	CHECK(validate("# HELP smtpwatch_x h\n# TYPE smtpwatch_x gauge\nsmtpwatch_x 1\n"
		       "# HELP smtpwatch_x h\n# TYPE smtpwatch_x gauge\nsmtpwatch_x 2\n") != NULL);
	CHECK(validate("# HELP smtpwatch_x h\n# TYPE smtpwatch_x gauge\nsmtpwatch_x one\n") != NULL);
out:
	free(m);
	cJSON_Delete(st);
}

static void test_render_values(void)
{
	cJSON *st = status_doc();
	char *m = sw_metrics_render(st);

	CHECK(m != NULL);
	if (!m)
		goto out;
	CHECK(has_line(m, "smtpwatch_up 1"));
	CHECK(has_line(m, "# TYPE smtpwatch_up gauge"));
	CHECK(has_line(m, "smtpwatch_build_info{version=\"0.1.0\"} 1"));
	CHECK(has_line(m, "smtpwatch_mode_info{mode=\"monitor\"} 1"));
	CHECK(has_line(m, "smtpwatch_uptime_seconds 3.25"));
	CHECK(has_line(m, "# TYPE smtpwatch_events_total counter"));
	CHECK(has_line(m, "smtpwatch_events_total 42"));
	CHECK(has_line(m, "smtpwatch_sessions_total 6"));
	CHECK(has_line(m, "smtpwatch_unattributed_total 1"));
	CHECK(has_line(m, "smtpwatch_alerts_total 2"));
	CHECK(has_line(m, "smtpwatch_connects_total 7"));
	CHECK(has_line(m, "smtpwatch_records_total 100"));
	CHECK(has_line(m, "smtpwatch_data_records_total 9007199254740992"));
	CHECK(has_line(m, "smtpwatch_denied_total 5"));
	CHECK(has_line(m, "smtpwatch_config_reloads_total 2"));
	CHECK(has_line(m, "smtpwatch_config_reload_error 0"));
	/* Gauges are not _total, and are typed gauge. */
	CHECK(has_line(m, "# TYPE smtpwatch_sessions_open gauge"));
	CHECK(has_line(m, "smtpwatch_sessions_open 4"));
	CHECK(has_line(m, "smtpwatch_processes_tracked 3"));
	CHECK(!strstr(m, "sessions_open_total"));
	/* A counter the agent adds later shows up, its name made valid. */
	CHECK(has_line(m, "smtpwatch_brand_new_counter_total 11"));
	/* Every loss, by cause, in one family. */
	CHECK(has_line(m, "smtpwatch_losses_total{cause=\"ring_full\"} 3"));
	CHECK(has_line(m, "smtpwatch_losses_total{cause=\"flow_map_full\"} 0"));
	CHECK(has_line(m, "smtpwatch_losses_total{cause=\"syslog_dropped\"} 8"));
	CHECK(has_line(m, "smtpwatch_interface_attached{interface=\"lo\"} 1"));
	CHECK(has_line(m, "smtpwatch_interface_attached{interface=\"eth0\"} 0"));
	CHECK(has_line(m, "smtpwatch_bpf_links 2"));
	CHECK(has_line(m, "smtpwatch_syslog_sent_total 40"));
	CHECK(has_line(m, "smtpwatch_syslog_connected{target=\"tcp://192.0.2.1:514\"} 1"));
	/* Escapes: quote, backslash, newline; ESC and 0xff become U+FFFD; é stays. */
	CHECK(has_line(m, "smtpwatch_attach_info{tc_mode=\"tcx\",cgroup=\"/sys/fs/cgroup/a\\\"b\\\\c\\nd"
			  "\xef\xbf\xbd\xef\xbf\xbd-\xc3\xa9\"} 1"));
out:
	free(m);
	cJSON_Delete(st);
}

static void test_render_down(void)
{
	cJSON *st = status_doc();
	char *m;

	cJSON_ReplaceItemInObject(st, "ok", cJSON_CreateFalse());
	cJSON_AddStringToObject(cJSON_GetObjectItem(st, "policy"), "reload_error", "line 3: not JSON");
	m = sw_metrics_render(st);
	CHECK(m && has_line(m, "smtpwatch_up 0"));
	CHECK(m && has_line(m, "smtpwatch_config_reload_error 1"));
	free(m);
	cJSON_Delete(st);
	/* No agent answered: only smtpwatch_up 0, still a valid document. */
	m = sw_metrics_render(NULL);
	CHECK(m != NULL);
	CHECK_STR(m, "# HELP smtpwatch_up 1 when the agent answers with all its hooks attached (status.ok).\n"
		     "# TYPE smtpwatch_up gauge\nsmtpwatch_up 0\n");
	CHECK(m && validate(m) == NULL);
	free(m);
}

static void test_write_file(void)
{
	char dir[] = "/tmp/sw-metrics-XXXXXX", path[128], buf[64];
	struct stat st1, st2;
	struct dirent *de;
	int entries = 0;
	FILE *f;
	DIR *d;

	CHECK(mkdtemp(dir) != NULL);
	snprintf(path, sizeof(path), "%s/smtpwatch.prom", dir);
	CHECK(sw_metrics_write_file(path, "smtpwatch_up 1\n") == 0);
	CHECK(stat(path, &st1) == 0);
	CHECK((st1.st_mode & 0777) == 0644);
	CHECK(sw_metrics_write_file(path, "smtpwatch_up 0\n") == 0);
	CHECK(stat(path, &st2) == 0);
	/* Replaced by rename, not rewritten in place: a reader never sees half a file. */
	CHECK(st1.st_ino != st2.st_ino);
	f = fopen(path, "r");
	CHECK(f && fgets(buf, sizeof(buf), f));
	CHECK_STR(f ? buf : NULL, "smtpwatch_up 0\n");
	if (f)
		fclose(f);
	/* No temporary file left behind. */
	d = opendir(dir);
	while (d && (de = readdir(d)))
		entries += de->d_name[0] != '.' || (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."));
	if (d)
		closedir(d);
	CHECK(entries == 1);
	unlink(path);
	rmdir(dir);
	CHECK(sw_metrics_write_file("/nonexistent-dir-sw/x.prom", "x\n") == -ENOENT);
	CHECK(sw_metrics_write_file("/tmp/", "x\n") == -EINVAL);
}

int main(void)
{
	RUN(test_render_format);
	RUN(test_render_values);
	RUN(test_render_down);
	RUN(test_write_file);
	CHECK_EXIT();
}
