// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include "community_id.h"
#include "jsonw.h"
#include "procinfo.h"
#include "report.h"
#include "smtp.h"
#include "util.h"

#define IPPROTO_TCP_NUM 6

static const struct sw_output *ident; /* host id and boot id for entity ids */
static struct jw w; /* the event writer: one buffer, grown once, reused */
static void write_process(const struct sw_session *s);

static char cgroup_root[4096]; /* the cgroup2 mount, for paths by cgroup id */

void sw_report_init(const struct sw_output *o, const char *cgroup_mount)
{
	ident = o;
	snprintf(cgroup_root, sizeof(cgroup_root), "%s", cgroup_mount ? cgroup_mount : "");
}

/* A digest per (pid, start): the same processes connect again and again. */
#define ENTITY_CACHE 256

static struct {
	uint32_t pid;
	uint64_t start_ns;
	char id[32];
} entity_cache[ENTITY_CACHE];

void sw_entity_id(uint32_t pid, uint64_t start_ns, char *out, size_t len)
{
	unsigned slot = (pid * 2654435761u ^ (uint32_t)start_ns) % ENTITY_CACHE;
	char key[256];
	int n;

	if (!entity_cache[slot].id[0] || entity_cache[slot].pid != pid ||
	    entity_cache[slot].start_ns != start_ns) {
		n = snprintf(key, sizeof(key), "%s:%s:%u:%llu", ident ? ident->host_id : "",
			     ident ? ident->boot_id : "", pid, (unsigned long long)start_ns);
		sw_digest_id(key, n, entity_cache[slot].id, sizeof(entity_cache[slot].id));
		entity_cache[slot].pid = pid;
		entity_cache[slot].start_ns = start_ns;
	}
	if (len) {
		n = strnlen(entity_cache[slot].id, len - 1);
		memcpy(out, entity_cache[slot].id, n);
		out[n] = 0;
	}
}

/*
 * Per-connection lookups are cached: an ancestor's executable by (pid, start
 * time), a cgroup's path by its id. Shells and daemons recur in every chain.
 */
#define EXE_CACHE 512
#define CGROUP_CACHE 256

static struct {
	uint32_t pid;
	uint64_t start_ns;
	char exe[256]; /* "" when none could be found */
	bool valid;
} exe_cache[EXE_CACHE];

static struct {
	uint64_t id;
	char path[256];
} cgroup_cache[CGROUP_CACHE];

static const char *ancestor_exe(uint32_t pid, uint64_t start_ns, sw_exec_lookup_fn lookup,
				void *ctx)
{
	unsigned slot = (pid * 2654435761u ^ (uint32_t)start_ns) % EXE_CACHE;
	char buf[4096];

	if (exe_cache[slot].valid && exe_cache[slot].pid == pid &&
	    exe_cache[slot].start_ns == start_ns)
		return exe_cache[slot].exe[0] ? exe_cache[slot].exe : NULL;
	if (lookup(ctx, pid, start_ns, buf, sizeof(buf)) && sw_proc_exe(pid, buf, sizeof(buf)))
		buf[0] = 0;
	exe_cache[slot].pid = pid;
	exe_cache[slot].start_ns = start_ns;
	exe_cache[slot].valid = true;
	snprintf(exe_cache[slot].exe, sizeof(exe_cache[slot].exe), "%s", buf);
	return exe_cache[slot].exe[0] ? exe_cache[slot].exe : NULL;
}

static void cgroup_path(uint32_t pid, uint64_t id, char *out, size_t len)
{
	unsigned slot = id % CGROUP_CACHE;

	if (id && cgroup_cache[slot].id == id) {
		snprintf(out, len, "%s", cgroup_cache[slot].path);
		return;
	}
	/* By id first: the process may be gone by the time its record is read. */
	if ((!cgroup_root[0] || !id || sw_cgroup_path_by_id(cgroup_root, id, out, len)) &&
	    sw_proc_cgroup(pid, out, len)) {
		out[0] = 0;
		return; /* the process and its cgroup are gone: try again next time */
	}
	cgroup_cache[slot].id = id;
	snprintf(cgroup_cache[slot].path, sizeof(cgroup_cache[slot].path), "%s", out);
}

/* The innermost systemd unit named in a cgroup path: "postfix@-.service". */
static void unit_of(const char *cgroup, char *out, size_t len)
{
	const char *p = cgroup, *best = NULL;
	size_t best_len = 0;

	out[0] = 0;
	while (p && *p) {
		size_t n = strcspn(p, "/");

		if ((n > 8 && !strncmp(p + n - 8, ".service", 8)) ||
		    (n > 6 && !strncmp(p + n - 6, ".scope", 6))) {
			best = p;
			best_len = n;
		}
		p += n;
		while (*p == '/')
			p++;
	}
	if (best && best_len < len) {
		memcpy(out, best, best_len);
		out[best_len] = 0;
	}
}

void sw_report_resolve(struct sw_session *s, sw_exec_lookup_fn lookup, void *ctx)
{
	const struct sw_connect *c = &s->conn;
	char buf[4096];
	ssize_t n;

	sw_entity_id(c->tgid, c->start_ns, s->entity_id, sizeof(s->entity_id));
	for (uint32_t i = 0; i < c->n_ancestors && i < SW_MAX_ANCESTORS; i++) {
		const struct sw_ancestor *a = &c->ancestors[i];
		const char *exe = ancestor_exe(a->pid, a->start_ns, lookup, ctx);

		if (exe)
			s->anc_exe[i] = strdup(exe);
	}

	if (c->exe_len > 0 && c->exe_len < SW_EXE_LEN) {
		s->exe = strndup(c->exe, c->exe_len);
	} else if (!sw_proc_exe(c->tgid, buf, sizeof(buf))) {
		/* Exec'd before the agent started: /proc, while the process lives. */
		s->exe = strdup(buf);
	}
	if (c->args_len > 0 && c->args_len < SW_ARGS_LEN) {
		s->args = malloc(c->args_len);
		if (s->args) {
			memcpy(s->args, c->args, c->args_len);
			s->args_len = c->args_len;
		}
		s->args_truncated = c->args_len == SW_ARGS_LEN - 1;
	} else if ((n = sw_proc_cmdline(c->tgid, buf, sizeof(buf))) > 0) {
		s->args = malloc(n);
		if (s->args) {
			memcpy(s->args, buf, n);
			s->args_len = n;
		}
	}
	cgroup_path(c->tgid, c->cgroup_id, s->cgroup, sizeof(s->cgroup));
	sw_container_id(s->cgroup[0] ? s->cgroup : c->cgroup_name, s->container_id,
			sizeof(s->container_id));
	unit_of(s->cgroup[0] ? s->cgroup : c->cgroup_name, s->unit, sizeof(s->unit));
	write_process(s);
	if (jw_text(&w))
		s->proc_json = strdup(jw_text(&w));
	jw_reset(&w);
}

/*
 * The events are written as text by one reusable writer (jsonw.h): a cJSON tree
 * per event cost two allocations per field and printf/strtod per number. Only
 * the common head (sw_event_new: @timestamp, event.action, host) and the
 * sequence number stay with the output, which numbers and writes the line;
 * every other member is added to it as raw JSON text.
 */
/* The value just written in w becomes member key of obj. */
static void take(cJSON *obj, const char *key)
{
	const char *t = jw_text(&w);

	if (t && w.len)
		cJSON_AddRawToObject(obj, key, t);
	jw_reset(&w);
}

/* A scalar member of obj, written by the writer first. */
#define RAW(obj, key, write)                                                                \
	do {                                                                                \
		write;                                                                      \
		take(obj, key);                                                             \
	} while (0)

void sw_report_fini(void)
{
	jw_free(&w);
}

static void cstr(const char *key, const char *s, size_t max)
{
	jw_bytes(&w, key, s, strnlen(s, max));
}

/* process.parent (ECS) and the whole chain up to init in process.ancestors. */
static void write_parents(const struct sw_session *s)
{
	const struct sw_connect *c = &s->conn;
	char id[32];

	jw_obj(&w, "parent");
	jw_u64(&w, "pid", c->ppid);
	if (c->n_ancestors > 0 && c->ancestors[0].pid == c->ppid) {
		cstr("name", c->ancestors[0].comm, SW_COMM_LEN);
		if (s->anc_exe[0])
			cstr("executable", s->anc_exe[0], 4096);
		sw_entity_id(c->ppid, c->ancestors[0].start_ns, id, sizeof(id));
		jw_str(&w, "entity_id", id);
	}
	jw_end(&w);
	jw_arr(&w, "ancestors");
	for (uint32_t i = 0; i < c->n_ancestors && i < SW_MAX_ANCESTORS; i++) {
		jw_obj(&w, NULL);
		jw_u64(&w, "pid", c->ancestors[i].pid);
		cstr("name", c->ancestors[i].comm, SW_COMM_LEN);
		if (s->anc_exe[i])
			cstr("executable", s->anc_exe[i], 4096);
		jw_end(&w);
	}
	jw_end(&w);
}

/* The process object: the same for every event of the session, written once. */
static void write_process(const struct sw_session *s)
{
	const struct sw_connect *c = &s->conn;

	jw_obj(&w, NULL);
	jw_u64(&w, "pid", c->tgid);
	jw_obj(&w, "thread");
	jw_u64(&w, "id", c->tid);
	jw_end(&w);
	cstr("name", c->comm, sizeof(c->comm));
	if (s->exe)
		cstr("executable", s->exe, 4096);
	else
		cstr("executable", c->exe_name, sizeof(c->exe_name));
	jw_arr(&w, "args");
	for (size_t off = 0; s->args && off < s->args_len;) {
		size_t n = strnlen(s->args + off, s->args_len - off);

		jw_bytes(&w, NULL, s->args + off, n);
		off += n + 1;
	}
	jw_end(&w);
	if (s->args_truncated)
		jw_bool(&w, "args_truncated", true);
	jw_str(&w, "entity_id", s->entity_id);
	write_parents(s);
	jw_end(&w);
}

/* process, user, group, container, systemd. */
static void add_process(cJSON *ev, const struct sw_session *s)
{
	const struct sw_connect *c = &s->conn;

	if (s->proc_json) {
		cJSON_AddRawToObject(ev, "process", s->proc_json);
	} else {
		write_process(s);
		take(ev, "process");
	}

	{
		char num[16]; /* ids are strings in ECS */

		jw_obj(&w, NULL);
		snprintf(num, sizeof(num), "%u", c->uid);
		jw_str(&w, "id", num);
		jw_str(&w, "name", sw_user_name(c->uid));
		jw_end(&w);
		take(ev, "user");
		jw_obj(&w, NULL);
		snprintf(num, sizeof(num), "%u", c->gid);
		jw_str(&w, "id", num);
		jw_end(&w);
		take(ev, "group");
	}
	if (s->container_id[0]) {
		jw_obj(&w, NULL);
		jw_str(&w, "id", s->container_id);
		jw_end(&w);
		take(ev, "container");
	}
	if (s->unit[0]) {
		jw_obj(&w, NULL);
		cstr("unit", s->unit, sizeof(s->unit));
		jw_end(&w);
		take(ev, "systemd");
	}
}

/* Where the image and argv came from: the exec hook survives the process. */
static const char *exec_source(const struct sw_session *s)
{
	const struct sw_connect *c = &s->conn;

	return c->flags & SW_CONN_EXEC_CACHED ? "exec"
	       : c->flags & SW_CONN_EXEC_PARENT ? "parent_exec"
	       : s->exe ? "proc"
	       : "none";
}

static const char *policy_matched(uint32_t m)
{
	static const char *const names[] = {
		[SW_POLICY_NONE] = "none",	       [SW_POLICY_DESTINATION] = "destination",
		[SW_POLICY_UID] = "uid",	       [SW_POLICY_EXECUTABLE] = "executable",
		[SW_POLICY_SCRIPT] = "script",	       [SW_POLICY_CGROUP] = "cgroup",
		[SW_POLICY_DENY] = "none",
	};

	return m < sizeof(names) / sizeof(names[0]) ? names[m] : "none";
}

/*
 * The smtpwatch object: what is ours and not ECS. Opened by the caller, which
 * adds its own members; this writes the process part and the policy.
 */
static void write_ours_process(const struct sw_session *s)
{
	jw_str(&w, "exec_source", exec_source(s));
	if (s->cgroup[0])
		cstr("cgroup", s->cgroup, sizeof(s->cgroup));
	jw_u64(&w, "cgroup_id", s->conn.cgroup_id);
}

/* smtpwatch.policy: what the policy said about this connect(). */
static void write_policy(const struct sw_connect *c)
{
	if (c->policy == SW_POLICY_NONE)
		return;
	jw_obj(&w, "policy");
	jw_str(&w, "decision", c->flags & SW_CONN_DENIED	  ? "deny"
			       : c->flags & SW_CONN_WOULD_DENY ? "would_deny"
								: "allow");
	jw_str(&w, "matched", policy_matched(c->policy));
	jw_end(&w);
	if (c->flags & SW_CONN_WOULD_DENY)
		jw_bool(&w, "would_deny", true);
}

/* inet_ntop() formats IPv4 through sprintf: this is the same text for less. */
static void format_ip(const struct sw_addr *a, char *ip, size_t len)
{
	char *o = ip;

	if (a->family != AF_INET) {
		sw_format_addr(AF_INET6, a->addr, ip, len);
		return;
	}
	for (int i = 0; i < 4; i++) {
		unsigned b = a->addr[i];

		if (b >= 100)
			*o++ = '0' + b / 100;
		if (b >= 10)
			*o++ = '0' + b / 10 % 10;
		*o++ = '0' + b % 10;
		*o++ = i < 3 ? '.' : 0;
	}
}

static void write_endpoint(const struct sw_addr *a, bool bytes, uint32_t captured)
{
	char ip[64];

	format_ip(a, ip, sizeof(ip));
	jw_obj(&w, NULL);
	jw_str(&w, "ip", ip);
	jw_u64(&w, "port", a->port);
	if (bytes)
		jw_u64(&w, "bytes_captured", captured);
	jw_end(&w);
}

static void add_network(cJSON *ev, const struct sw_session *s, bool full)
{
	char cid[COMMUNITY_ID_LEN];

	jw_obj(&w, NULL);
	jw_str(&w, "type", s->dst.family == AF_INET ? "ipv4" : "ipv6");
	jw_str(&w, "transport", "tcp");
	if (full) {
		jw_str(&w, "protocol", "smtp");
		if (s->have_src &&
		    !community_id_v1(0, s->dst.family == AF_INET ? AF_INET : AF_INET6, s->src.addr,
				     s->dst.addr, s->src.port, s->dst.port, IPPROTO_TCP_NUM, cid,
				     sizeof(cid)))
			jw_str(&w, "community_id", cid);
	}
	jw_end(&w);
	take(ev, "network");
}

/* The event object's own members, after the action the head has. */
static void event_fields(cJSON *ev, const char *kind, const char *type, const char *outcome)
{
	cJSON *evt = sw_obj(ev, "event");

	RAW(evt, "kind", jw_str(&w, NULL, kind));
	if (type)
		RAW(evt, "type", jw_str(&w, NULL, type));
	if (outcome)
		RAW(evt, "outcome", jw_str(&w, NULL, outcome));
}

int sw_report_denied(struct sw_output *o, const struct sw_session *s, int64_t mono_to_real)
{
	cJSON *ev = sw_event_new(o, "connection_denied", s->conn.hdr.ts_ns + mono_to_real);
	char msg[512], ip[64];

	if (!ev)
		return -ENOMEM;
	event_fields(ev, "event", "denied", "failure");
	add_process(ev, s);
	jw_obj(&w, NULL);
	write_ours_process(s);
	write_policy(&s->conn);
	jw_end(&w);
	take(ev, "smtpwatch");
	write_endpoint(&s->dst, false, 0);
	take(ev, "destination");
	add_network(ev, s, false);
	jw_obj(&w, NULL);
	jw_arr(&w, "name");
	jw_str(&w, NULL, "POLICY_DEFAULT_DENY");
	jw_end(&w);
	jw_end(&w);
	take(ev, "rule");
	sw_format_addr(s->dst.family == AF_INET ? AF_INET : AF_INET6, s->dst.addr, ip, sizeof(ip));
	snprintf(msg, sizeof(msg), "connect() to %s port %u refused with EPERM: pid %u is not an allowed mailer",
		 ip, s->dst.port, s->conn.tgid);
	cJSON_AddStringToObject(ev, "message", msg);
	return sw_output_write(o, ev);
}

int sw_report_connect(struct sw_output *o, const struct sw_session *s, int64_t mono_to_real)
{
	cJSON *ev = sw_event_new(o, "connection_attempted", s->conn.hdr.ts_ns + mono_to_real);

	if (!ev)
		return -ENOMEM;
	event_fields(ev, "event", "start", NULL);
	add_process(ev, s);
	jw_obj(&w, NULL);
	write_ours_process(s);
	if (s->conn.flags & SW_CONN_MAPPED_V4)
		jw_bool(&w, "v4_mapped", true);
	write_policy(&s->conn);
	jw_end(&w);
	take(ev, "smtpwatch");
	write_endpoint(&s->dst, false, 0);
	take(ev, "destination");
	add_network(ev, s, false);
	return sw_output_write(o, ev);
}

static void write_rule(const char *name, void *ctx)
{
	(void)ctx;
	jw_str(&w, NULL, name);
}

static void add_smtp(cJSON *ev, const struct sw_evidence *e)
{
	const struct smtp_dialogue *d = &e->d;

	jw_obj(&w, NULL);
	if (d->helo_verb[0]) {
		jw_str(&w, "helo_verb", d->helo_verb);
		jw_bytes(&w, "helo", d->helo.p, d->helo.len);
	}
	if (d->mail_from.p)
		jw_bytes(&w, "mail_from", d->mail_from.p, d->mail_from.len);
	jw_arr(&w, "rcpt_to");
	for (int i = 0; i < d->n_rcpt; i++)
		jw_bytes(&w, NULL, d->rcpt_to[i].p, d->rcpt_to[i].len);
	jw_end(&w);
	if (d->banner_code) {
		jw_bytes(&w, "banner", d->banner.p, d->banner.len);
		jw_u64(&w, "banner_code", d->banner_code);
	}
	jw_arr(&w, "replies");
	for (int i = 0; i < d->n_replies; i++) {
		jw_obj(&w, NULL);
		jw_u64(&w, "code", d->replies[i].code);
		jw_bytes(&w, "text", d->replies[i].text.p, d->replies[i].text.len);
		jw_end(&w);
	}
	jw_end(&w);
	jw_bool(&w, "starttls", d->starttls);
	if (d->tls)
		jw_bool(&w, "tls", true);
	if (e->pregreet)
		jw_bool(&w, "pregreet", true);
	if (d->not_smtp)
		jw_bool(&w, "not_smtp", true);
	jw_u64(&w, "commands", d->n_commands);
	if (e->n_listings) {
		jw_arr(&w, "listed_on");
		for (int i = 0; i < e->n_listings; i++)
			jw_str(&w, NULL, e->listings[i].list);
		jw_end(&w);
		for (int i = 0; i < e->n_listings; i++)
			if (e->listings[i].ip[0]) {
				jw_str(&w, "listed_ip", e->listings[i].ip);
				break;
			}
	}
	jw_end(&w);
	take(ev, "smtp");
	jw_obj(&w, NULL);
	jw_arr(&w, "name");
	sw_evidence_rules(e, write_rule, NULL);
	jw_end(&w);
	jw_end(&w);
	take(ev, "rule");
}

int sw_report_session(struct sw_output *o, const struct sw_session *s, int64_t mono_to_real,
		      const char *ifname, const struct sw_evidence *e)
{
	uint64_t start = s->start_ns + mono_to_real;
	uint64_t end = (s->close_ns ? s->close_ns : s->last_ns) + mono_to_real;
	uint32_t clen = sw_stream_contiguous(&s->st[SW_DIR_CLIENT]);
	uint32_t slen = sw_stream_contiguous(&s->st[SW_DIR_SERVER]);
	cJSON *ev = sw_event_new(o, s->wire ? "smtp_unattributed" : "smtp_session", start), *evt;
	bool proc = !s->wire && s->have_conn;

	if (!ev)
		return -ENOMEM;
	event_fields(ev, "event", "end", NULL);
	evt = sw_obj(ev, "event");
	RAW(evt, "start", jw_time(&w, NULL, start));
	RAW(evt, "end", jw_time(&w, NULL, end));
	RAW(evt, "duration", jw_u64(&w, NULL, end > start ? end - start : 0));
	RAW(evt, "risk_score", jw_int(&w, NULL, e->score));
	if (proc)
		add_process(ev, s);

	jw_obj(&w, NULL);
	if (proc)
		write_ours_process(s);
	if (clen < s->st[0].end || slen < s->st[1].end)
		jw_bool(&w, "capture_gap", true);
	jw_str(&w, "close", s->closed & SW_CLOSE_RST ? "rst"
			    : s->closed & (SW_CLOSE_FIN_CLIENT | SW_CLOSE_FIN_SERVER) ? "fin"
			    : s->closed & SW_CLOSE_RELEASE ? "release"
			    : "timeout");
	if (s->have_conn && (s->conn.flags & SW_CONN_MAPPED_V4))
		jw_bool(&w, "v4_mapped", true);
	if (s->have_conn)
		write_policy(&s->conn);
	jw_end(&w);
	take(ev, "smtpwatch");

	/* No SYN seen (the connect failed): no source at all. */
	if (s->have_src) {
		write_endpoint(&s->src, true, clen);
		take(ev, "source");
	}
	write_endpoint(&s->dst, true, slen);
	take(ev, "destination");
	add_network(ev, s, true);
	add_smtp(ev, e);
	if (s->wire && ifname) {
		jw_obj(&w, NULL);
		jw_obj(&w, "egress");
		jw_obj(&w, "interface");
		jw_str(&w, "name", ifname);
		jw_end(&w);
		jw_end(&w);
		jw_end(&w);
		take(ev, "observer");
	}
	return sw_output_write(o, ev);
}

static void add_time(cJSON *obj, const char *key, uint64_t epoch_ns)
{
	char ts[64];

	sw_format_time(epoch_ns, ts, sizeof(ts));
	cJSON_AddStringToObject(obj, key, ts);
}

/* Once per process and window: rare, so a plain cJSON tree. */
int sw_report_alert(struct sw_output *o, const struct sw_session *s, int64_t mono_to_real,
		    const struct sw_evidence *e, const struct bhv_table *bhv)
{
	const struct bhv_proc *p = e->proc;
	uint64_t now = (s->close_ns ? s->close_ns : s->last_ns) + mono_to_real;
	uint64_t window = (uint64_t)bhv->cfg.window_s * 1000000000ULL;
	cJSON *ev = sw_event_new(o, "smtp_alert", now), *a, *arr;
	char msg[512], ip[64];
	int ndest;

	if (!ev || !p)
		return -ENOMEM;
	cJSON_AddStringToObject(sw_obj(ev, "event"), "kind", "alert");
	cJSON_AddNumberToObject(sw_obj(ev, "event"), "risk_score", e->score);
	add_process(ev, s);
	a = sw_obj(ev, "smtpwatch"); /* a tree here: smtpwatch.alert goes in it too */
	cJSON_AddStringToObject(a, "exec_source", exec_source(s));
	if (s->cgroup[0])
		RAW(a, "cgroup", cstr(NULL, s->cgroup, sizeof(s->cgroup)));
	RAW(a, "cgroup_id", jw_u64(&w, NULL, s->conn.cgroup_id));
	ndest = bhv_dests_in_window(bhv, p, now);
	a = sw_obj(ev, "smtpwatch.alert");
	cJSON_AddNumberToObject(a, "window_s", bhv->cfg.window_s);
	cJSON_AddNumberToObject(a, "sessions", p->sessions_total);
	cJSON_AddNumberToObject(a, "sessions_in_window", bhv_sessions_in_window(bhv, p, now, window));
	cJSON_AddNumberToObject(a, "destinations_in_window", ndest);
	arr = cJSON_AddArrayToObject(a, "destinations");
	for (int i = 0; i < p->n_dests; i++) {
		cJSON *d = cJSON_CreateObject();

		sw_format_addr(p->dests[i].family, p->dests[i].addr, ip, sizeof(ip));
		cJSON_AddStringToObject(d, "ip", ip);
		cJSON_AddNumberToObject(d, "port", p->dests[i].port);
		cJSON_AddItemToArray(arr, d);
	}
	arr = cJSON_AddArrayToObject(a, "helos");
	for (int i = 0; i < p->n_helos; i++)
		cJSON_AddItemToArray(arr, cJSON_CreateString(p->helos[i].text));
	cJSON_AddNumberToObject(a, "replies_rejected", p->rejected_total);
	arr = cJSON_AddArrayToObject(a, "rejections");
	for (int i = 0; i < p->n_rejects; i++)
		cJSON_AddItemToArray(arr, cJSON_CreateString(p->rejects[i]));
	arr = cJSON_AddArrayToObject(a, "listed_on");
	for (int i = 0; i < p->n_lists; i++)
		cJSON_AddItemToArray(arr, cJSON_CreateString(p->lists[i]));
	arr = cJSON_AddArrayToObject(sw_obj(ev, "rule"), "name");
	for (int i = 0; i < HELO_RULE_MAX; i++)
		if (p->helo_rules_seen & (1u << i))
			cJSON_AddItemToArray(arr, cJSON_CreateString(helo_rule_name(i)));
	for (int i = 0; i < BHV_RULE_MAX; i++)
		if (p->rules_seen & (1u << i))
			cJSON_AddItemToArray(arr, cJSON_CreateString(bhv_rule_name(i)));
	add_time(a, "first_seen", p->first_ns);
	add_time(a, "last_seen", p->last_ns);
	snprintf(msg, sizeof(msg),
		 "pid %u (%s) opened %u SMTP sessions to %d destinations, %u replies refused, risk %d",
		 p->pid, p->name, p->sessions_total, ndest, p->rejected_total, e->score);
	cJSON_AddStringToObject(ev, "message", msg);
	return sw_output_write(o, ev);
}
