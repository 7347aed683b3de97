// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "log.h"
#include "output.h"
#include "util.h"

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

int sw_output_open(struct sw_output *o, const char *path)
{
	memset(o, 0, sizeof(*o));
	if (gethostname(o->host, sizeof(o->host) - 1))
		snprintf(o->host, sizeof(o->host), "localhost");
	read_line("/etc/machine-id", o->host_id, sizeof(o->host_id));
	read_line("/proc/sys/kernel/random/boot_id", o->boot_id, sizeof(o->boot_id));
	if (!path || !strcmp(path, "-")) {
		o->f = stdout;
		return 0;
	}
	o->f = fopen(path, "ae");
	if (!o->f)
		return -errno;
	o->path = strdup(path);
	return 0;
}

void sw_output_close(struct sw_output *o)
{
	if (o->f && o->f != stdout)
		fclose(o->f);
	else if (o->f)
		fflush(o->f);
	free(o->path);
	o->f = NULL;
	o->path = NULL;
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

int sw_output_write(struct sw_output *o, cJSON *ev)
{
	char *line;
	int ret = 0;

	cJSON_AddNumberToObject(sw_obj(ev, "event"), "sequence", (double)++o->sequence);
	line = cJSON_PrintUnformatted(ev);
	cJSON_Delete(ev);
	if (!line) {
		o->write_errors++;
		return -ENOMEM;
	}
	if (fputs(line, o->f) == EOF || fputc('\n', o->f) == EOF) {
		o->write_errors++;
		ret = -EIO;
	} else {
		o->written++;
	}
	free(line);
	return ret;
}

void sw_output_flush(struct sw_output *o)
{
	if (o->f && fflush(o->f) == EOF)
		clearerr(o->f);
}
