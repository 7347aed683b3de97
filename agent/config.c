// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cjson/cJSON.h>
#include "config.h"
#include "fileperm.h"
#include "util.h"

#define MAX_FILE (1 << 20)
#define MAX_LIST 1024

struct ctx {
	const char *path;
	char *err;
	size_t errlen;
};

static int fail(struct ctx *c, const char *key, const char *fmt, ...)
{
	char what[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	snprintf(c->err, c->errlen, "%s: %s: %s", c->path, key, what);
	return -1;
}

/* Reject keys we do not know: a typo must not silently mean a default. */
static int only_keys(struct ctx *c, const cJSON *obj, const char *where, const char *const *keys)
{
	const cJSON *it;

	cJSON_ArrayForEach(it, obj) {
		int ok = 0;

		for (const char *const *k = keys; *k; k++)
			ok |= !strcmp(it->string, *k);
		if (!ok) {
			char key[128];

			snprintf(key, sizeof(key), "%s%s%s", where, *where ? "." : "", it->string);
			return fail(c, key, "unknown key (see docs/config.md)");
		}
	}
	return 0;
}

static int get_uint(struct ctx *c, const cJSON *obj, const char *name, const char *key, uint64_t min,
		    uint64_t max, uint64_t *out)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, name);

	if (!v)
		return 1; /* absent: keep the default */
	if (cJSON_IsString(v) && !sw_parse_size(v->valuestring, out) && *out >= min && *out <= max)
		return 0;
	if (!cJSON_IsNumber(v) || v->valuedouble < (double)min || v->valuedouble > (double)max ||
	    v->valuedouble != (double)(uint64_t)v->valuedouble)
		return fail(c, key, "must be an integer from %llu to %llu", (unsigned long long)min,
			    (unsigned long long)max);
	*out = (uint64_t)v->valuedouble;
	return 0;
}

/* An array of strings, copied; each checked by valid() if given. */
static int get_strings(struct ctx *c, const cJSON *obj, const char *name, const char *key,
		       char ***out, int *n, const char *(*valid)(const char *))
{
	const cJSON *arr = cJSON_GetObjectItemCaseSensitive(obj, name), *it;
	char k[160];
	int i = 0;

	if (!arr)
		return 1;
	if (!cJSON_IsArray(arr))
		return fail(c, key, "must be an array of strings");
	if (cJSON_GetArraySize(arr) > MAX_LIST)
		return fail(c, key, "has more than %d entries", MAX_LIST);
	*out = calloc(cJSON_GetArraySize(arr) + 1, sizeof(char *));
	if (!*out)
		return fail(c, key, "out of memory");
	cJSON_ArrayForEach(it, arr) {
		const char *why;

		snprintf(k, sizeof(k), "%s[%d]", key, i);
		if (!cJSON_IsString(it) || !it->valuestring[0]) {
			fail(c, k, "must be a non-empty string");
			goto bad;
		}
		if (valid && (why = valid(it->valuestring))) {
			fail(c, k, "\"%s\" %s", it->valuestring, why);
			goto bad;
		}
		(*out)[i++] = strdup(it->valuestring);
	}
	*n = i;
	return 0;
bad:
	/* Nothing half-built is left for the caller to free. */
	while (i > 0)
		free((*out)[--i]);
	free(*out);
	*out = NULL;
	*n = 0;
	return -1;
}

static int get_ports(struct ctx *c, const cJSON *obj, const char *name, const char *key,
		     uint16_t *ports, int *n)
{
	const cJSON *arr = cJSON_GetObjectItemCaseSensitive(obj, name), *it;
	char k[64];
	int i = 0;

	if (!arr)
		return 1;
	if (!cJSON_IsArray(arr) || cJSON_GetArraySize(arr) < 1 ||
	    cJSON_GetArraySize(arr) > SW_MAX_PORTS)
		return fail(c, key, "must be an array of 1 to %d port numbers", SW_MAX_PORTS);
	cJSON_ArrayForEach(it, arr) {
		snprintf(k, sizeof(k), "%s[%d]", key, i);
		if (!cJSON_IsNumber(it) || it->valuedouble < 1 || it->valuedouble > 65535 ||
		    it->valuedouble != (int)it->valuedouble)
			return fail(c, k, "must be a port number from 1 to 65535");
		ports[i++] = (uint16_t)it->valuedouble;
	}
	*n = i;
	return 0;
}

int sw_parse_cidr(const char *s, struct sw_cidr *c)
{
	char buf[64], *slash;
	long prefix = -1;

	if (strlen(s) >= sizeof(buf))
		return -EINVAL;
	strcpy(buf, s);
	slash = strchr(buf, '/');
	if (slash) {
		char *end;

		*slash = 0;
		prefix = strtol(slash + 1, &end, 10);
		if (!slash[1] || *end)
			return -EINVAL;
	}
	memset(c, 0, sizeof(*c));
	if (inet_pton(AF_INET, buf, c->addr) == 1) {
		c->family = AF_INET;
		if (prefix < 0)
			prefix = 32;
		if (prefix > 32)
			return -EINVAL;
	} else if (inet_pton(AF_INET6, buf, c->addr) == 1) {
		c->family = AF_INET6;
		if (prefix < 0)
			prefix = 128;
		if (prefix > 128)
			return -EINVAL;
	} else {
		return -EINVAL;
	}
	c->prefix = prefix;
	return 0;
}

static const char *abs_path(const char *s)
{
	return s[0] == '/' ? NULL : "is not an absolute path";
}

static const char *cidr_ok(const char *s)
{
	struct sw_cidr c;

	return sw_parse_cidr(s, &c) ? "is not an address or address/prefix" : NULL;
}

static const char *unit_ok(const char *s)
{
	return strchr(s, '/') || !strchr(s, '.') ? "is not a unit name like postfix@-.service" : NULL;
}

void sw_opts_free(struct sw_run_opts *o)
{
	sw_policy_free(&o->policy);
	for (int i = 0; i < 32; i++) {
		free(o->mta_store[i]);
		o->mta_store[i] = NULL;
	}
	free(o->output_store);
	free(o->socket_store);
	free(o->syslog_store);
	free(o->metrics_store);
	free(o->pin_dir_store);
	o->output_store = o->socket_store = o->syslog_store = o->metrics_store = NULL;
	o->pin_dir_store = NULL;
}

void sw_policy_free(struct sw_policy *p)
{
	char **lists[] = { p->executables, p->units, p->cgroups };

	for (size_t i = 0; i < sizeof(lists) / sizeof(lists[0]); i++) {
		for (char **s = lists[i]; s && *s; s++)
			free(*s);
		free(lists[i]);
	}
	free(p->uids);
	free(p->dests);
	p->executables = p->units = p->cgroups = NULL;
	p->uids = NULL;
	p->dests = NULL;
	p->n_executables = p->n_units = p->n_cgroups = p->n_uids = p->n_dests = 0;
}

static char **dup_list(const char *const *src, int n)
{
	char **out = calloc(n + 1, sizeof(char *));

	for (int i = 0; out && i < n; i++)
		out[i] = strdup(src[i]);
	return out;
}

void sw_config_defaults(struct sw_run_opts *o)
{
	static const char *const mtas[] = { "/usr/lib/postfix/sbin/smtp", "/usr/sbin/exim4",
					    "/usr/sbin/sendmail", "/usr/sbin/smtpd" };
	static const char *const dests[] = { "127.0.0.0/8", "::1/128" };

	o->policy.mode = SW_MODE_MONITOR;
	o->policy.ports[0] = 25;
	o->policy.nports = 1;
	const char *present[4];
	int n = 0;

	/* Only the mail servers installed here: a default must not warn. */
	for (int i = 0; i < 4; i++)
		if (!access(mtas[i], X_OK))
			present[n++] = mtas[i];
	o->policy.executables = dup_list(present, n);
	o->policy.n_executables = n;
	o->policy.dests = calloc(2, sizeof(struct sw_cidr));
	for (int i = 0; o->policy.dests && i < 2; i++)
		sw_parse_cidr(dests[i], &o->policy.dests[o->policy.n_dests++]);
}

static int load_allow(struct ctx *c, const cJSON *allow, struct sw_policy *p)
{
	static const char *const keys[] = { "executables", "units", "cgroups", "uids",
					    "destinations", NULL };
	const cJSON *arr, *it;
	char **strs = NULL;
	int n = 0, r, i = 0;

	if (!cJSON_IsObject(allow))
		return fail(c, "allow", "must be an object");
	if (only_keys(c, allow, "allow", keys))
		return -1;
	/* Each list given replaces the default one. */
	if (cJSON_GetObjectItemCaseSensitive(allow, "executables")) {
		for (char **s = p->executables; s && *s; s++)
			free(*s);
		free(p->executables);
		p->executables = NULL;
		p->n_executables = 0;
		if (get_strings(c, allow, "executables", "allow.executables", &p->executables,
				&p->n_executables, abs_path) < 0)
			return -1;
	}
	if (get_strings(c, allow, "units", "allow.units", &p->units, &p->n_units, unit_ok) < 0 ||
	    get_strings(c, allow, "cgroups", "allow.cgroups", &p->cgroups, &p->n_cgroups,
			abs_path) < 0)
		return -1;
	arr = cJSON_GetObjectItemCaseSensitive(allow, "uids");
	if (arr) {
		if (!cJSON_IsArray(arr) || cJSON_GetArraySize(arr) > MAX_LIST)
			return fail(c, "allow.uids", "must be an array of at most %d uids", MAX_LIST);
		p->uids = calloc(cJSON_GetArraySize(arr) + 1, sizeof(uint32_t));
		cJSON_ArrayForEach(it, arr) {
			char k[64];

			snprintf(k, sizeof(k), "allow.uids[%d]", i);
			if (!cJSON_IsNumber(it) || it->valuedouble < 0 ||
			    it->valuedouble > 4294967295.0 ||
			    it->valuedouble != (double)(uint32_t)it->valuedouble)
				return fail(c, k, "must be an integer from 0 to 4294967295");
			p->uids[i++] = (uint32_t)it->valuedouble;
		}
		p->n_uids = i;
	}
	r = get_strings(c, allow, "destinations", "allow.destinations", &strs, &n, cidr_ok);
	if (r < 0)
		return -1;
	if (r == 0) {
		free(p->dests);
		p->dests = calloc(n + 1, sizeof(*p->dests));
		p->n_dests = 0;
		for (i = 0; i < n; i++) {
			sw_parse_cidr(strs[i], &p->dests[p->n_dests++]);
			free(strs[i]);
		}
		free(strs);
	}
	return 0;
}

static int load_rules(struct ctx *c, const cJSON *rules, struct sw_run_opts *o)
{
	static const char *const keys[] = { "window_s", "alert_threshold", "fanout", "rate_per_min",
					    "mtas", "weights", NULL };
	struct bhv_cfg *b = &o->evidence.bhv;
	const cJSON *w, *it;
	uint64_t v;
	char **mtas = NULL;
	int n = 0;

	if (!cJSON_IsObject(rules))
		return fail(c, "rules", "must be an object");
	if (only_keys(c, rules, "rules", keys))
		return -1;
	if (!get_uint(c, rules, "window_s", "rules.window_s", 10, 86400, &v))
		b->window_s = v;
	else if (*c->err)
		return -1;
	if (!get_uint(c, rules, "alert_threshold", "rules.alert_threshold", 0, 100, &v))
		b->alert_threshold = v;
	else if (*c->err)
		return -1;
	if (!get_uint(c, rules, "fanout", "rules.fanout", 1, 100000, &v))
		b->fanout = v;
	else if (*c->err)
		return -1;
	if (!get_uint(c, rules, "rate_per_min", "rules.rate_per_min", 1, 100000, &v))
		b->rate_per_min = v;
	else if (*c->err)
		return -1;
	if (get_strings(c, rules, "mtas", "rules.mtas", &mtas, &n, abs_path) < 0)
		return -1;
	for (int i = 0; mtas && i < n && i < 32; i++) {
		free(o->mta_store[i]);
		o->mta_store[i] = mtas[i];
		b->mtas = (const char *const *)o->mta_store;
		b->n_mtas = i + 1;
	}
	free(mtas);
	w = cJSON_GetObjectItemCaseSensitive(rules, "weights");
	if (w) {
		if (!cJSON_IsObject(w))
			return fail(c, "rules.weights", "must be an object of RULE: weight");
		cJSON_ArrayForEach(it, w) {
			char k[96];

			snprintf(k, sizeof(k), "rules.weights.%s", it->string);
			if (!cJSON_IsNumber(it) || it->valuedouble < 0 || it->valuedouble > 100)
				return fail(c, k, "must be a weight from 0 to 100");
			if (sw_evidence_set_weight(&o->evidence, it->string, (int)it->valuedouble))
				return fail(c, k, "is not a rule (see docs/rules.md)");
		}
	}
	return 0;
}

static int line_of(const char *text, const char *at)
{
	int line = 1;

	for (const char *p = text; p < at && *p; p++)
		line += *p == '\n';
	return line;
}

int sw_config_load(const char *path, struct sw_run_opts *o, char *err, size_t errlen)
{
	static const char *const top[] = { "mode", "ports", "enforce_ports", "allow", "output",
					   "rules", "limits", "persist", NULL };
	static const char *const persk[] = { "pin", "pin_dir", NULL };
	static const char *const outk[] = { "file", "socket", "socket_group", "rotate_size",
					    "rotate_keep", "syslog", "metrics_file", NULL };
	static const char *const limk[] = { "ring_size", "max_sessions", "idle_timeout_s", NULL };
	struct ctx c = { .path = path, .err = err, .errlen = errlen };
	cJSON *root = NULL, *v;
	char *text = NULL;
	struct stat st;
	uint64_t u;
	FILE *f;
	int fd, ret = -1;

	err[0] = 0;
	/* Whoever can write the file decides the policy: root only (docs/config.md). */
	fd = sw_fileperm_open(path, O_RDONLY, 0, "configuration file", 0, err, errlen);
	f = fd < 0 ? NULL : fdopen(fd, "re");
	if (!f) {
		if (fd >= 0) {
			snprintf(err, errlen, "%s: cannot read: %s", path, strerror(errno));
			close(fd);
		}
		return -1;
	}
	if (fstat(fileno(f), &st) || st.st_size > MAX_FILE) {
		snprintf(err, errlen, "%s: larger than 1 MiB, not a configuration", path);
		goto out;
	}
	text = calloc(1, st.st_size + 1);
	if (!text || fread(text, 1, st.st_size, f) != (size_t)st.st_size) {
		snprintf(err, errlen, "%s: cannot read: %s", path, strerror(errno ?: EIO));
		goto out;
	}
	root = cJSON_ParseWithLength(text, st.st_size);
	if (!root) {
		const char *at = cJSON_GetErrorPtr();

		snprintf(err, errlen, "%s: line %d: not valid JSON", path, at ? line_of(text, at) : 1);
		goto out;
	}
	if (!cJSON_IsObject(root)) {
		fail(&c, "(top)", "must be a JSON object");
		goto out;
	}
	if (only_keys(&c, root, "", top))
		goto out;
	v = cJSON_GetObjectItemCaseSensitive(root, "mode");
	if (v) {
		if (cJSON_IsString(v) && !strcmp(v->valuestring, "monitor"))
			o->policy.mode = SW_MODE_MONITOR;
		else if (cJSON_IsString(v) && !strcmp(v->valuestring, "enforce"))
			o->policy.mode = SW_MODE_ENFORCE;
		else {
			fail(&c, "mode", "must be \"monitor\" or \"enforce\"");
			goto out;
		}
	}
	if (get_ports(&c, root, "ports", "ports", o->ports, &o->nports) < 0 ||
	    get_ports(&c, root, "enforce_ports", "enforce_ports", o->policy.ports,
		      &o->policy.nports) < 0)
		goto out;
	v = cJSON_GetObjectItemCaseSensitive(root, "allow");
	if (v && load_allow(&c, v, &o->policy))
		goto out;
	v = cJSON_GetObjectItemCaseSensitive(root, "rules");
	if (v && load_rules(&c, v, o))
		goto out;
	v = cJSON_GetObjectItemCaseSensitive(root, "output");
	if (v) {
		const cJSON *s;

		if (!cJSON_IsObject(v)) {
			fail(&c, "output", "must be an object");
			goto out;
		}
		if (only_keys(&c, v, "output", outk))
			goto out;
		s = cJSON_GetObjectItemCaseSensitive(v, "file");
		if (s && (!cJSON_IsString(s) || !s->valuestring[0])) {
			fail(&c, "output.file", "must be a path or \"-\"");
			goto out;
		}
		if (s) {
			free(o->output_store);
			o->output = o->output_store = strdup(s->valuestring);
		}
		s = cJSON_GetObjectItemCaseSensitive(v, "socket");
		if (s && (!cJSON_IsString(s) || s->valuestring[0] != '/')) {
			fail(&c, "output.socket", "must be an absolute path");
			goto out;
		}
		if (s) {
			free(o->socket_store);
			o->socket_path = o->socket_store = strdup(s->valuestring);
		}
		if (!get_uint(&c, v, "rotate_size", "output.rotate_size", 0, 1ULL << 40, &u)) {
			if (u && u < 4096) {
				fail(&c, "output.rotate_size", "must be 0 (never) or at least 4096 bytes");
				goto out;
			}
			o->rotate_size = u;
		} else if (*err) {
			goto out;
		}
		if (!get_uint(&c, v, "rotate_keep", "output.rotate_keep", 1, 1000, &u))
			o->rotate_keep = u;
		else if (*err)
			goto out;
		s = cJSON_GetObjectItemCaseSensitive(v, "syslog");
		if (s && (!cJSON_IsString(s) || (strncmp(s->valuestring, "udp://", 6) &&
						 strncmp(s->valuestring, "tcp://", 6) &&
						 strncmp(s->valuestring, "unix://", 7)))) {
			fail(&c, "output.syslog", "must be udp://HOST:PORT, tcp://HOST:PORT or unix://PATH");
			goto out;
		}
		if (s) {
			free(o->syslog_store);
			o->syslog_target = o->syslog_store = strdup(s->valuestring);
		}
		s = cJSON_GetObjectItemCaseSensitive(v, "metrics_file");
		if (s && (!cJSON_IsString(s) || s->valuestring[0] != '/')) {
			fail(&c, "output.metrics_file", "must be an absolute path");
			goto out;
		}
		if (s) {
			free(o->metrics_store);
			o->metrics_file = o->metrics_store = strdup(s->valuestring);
		}
		s = cJSON_GetObjectItemCaseSensitive(v, "socket_group");
		if (s) {
			struct group *g = cJSON_IsString(s) ? getgrnam(s->valuestring) : NULL;

			if (!g) {
				fail(&c, "output.socket_group", "must name an existing group");
				goto out;
			}
			o->socket_group = g->gr_gid;
		}
	}
	v = cJSON_GetObjectItemCaseSensitive(root, "persist");
	if (v) {
		const cJSON *s;

		if (!cJSON_IsObject(v)) {
			fail(&c, "persist", "must be an object");
			goto out;
		}
		if (only_keys(&c, v, "persist", persk))
			goto out;
		s = cJSON_GetObjectItemCaseSensitive(v, "pin");
		if (s && !cJSON_IsBool(s)) {
			fail(&c, "persist.pin", "must be true or false");
			goto out;
		}
		if (s)
			o->pin = cJSON_IsTrue(s);
		s = cJSON_GetObjectItemCaseSensitive(v, "pin_dir");
		if (s && (!cJSON_IsString(s) || s->valuestring[0] != '/')) {
			fail(&c, "persist.pin_dir", "must be an absolute path on the BPF filesystem");
			goto out;
		}
		if (s) {
			free(o->pin_dir_store);
			o->pin_dir = o->pin_dir_store = strdup(s->valuestring);
		}
	}
	v = cJSON_GetObjectItemCaseSensitive(root, "limits");
	if (v) {
		if (!cJSON_IsObject(v)) {
			fail(&c, "limits", "must be an object");
			goto out;
		}
		if (only_keys(&c, v, "limits", limk))
			goto out;
		if (!get_uint(&c, v, "ring_size", "limits.ring_size", 4096, 1ULL << 30, &u)) {
			if (u & (u - 1)) {
				fail(&c, "limits.ring_size", "must be a power of two");
				goto out;
			}
			o->ring_bytes = u;
		} else if (*err) {
			goto out;
		}
		if (!get_uint(&c, v, "max_sessions", "limits.max_sessions", 16, 1000000, &u))
			o->max_sessions = u;
		else if (*err)
			goto out;
		if (!get_uint(&c, v, "idle_timeout_s", "limits.idle_timeout_s", 1, 86400, &u))
			o->idle_timeout_s = u;
		else if (*err)
			goto out;
	}
	ret = 0;
out:
	cJSON_Delete(root);
	free(text);
	fclose(f);
	return ret;
}
