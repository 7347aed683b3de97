// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include "community_id.h"
#include "procinfo.h"
#include "report.h"
#include "smtp.h"
#include "textsafe.h"
#include "util.h"

#define IPPROTO_TCP_NUM 6

static const struct sw_output *ident; /* host id and boot id for entity ids */

void sw_report_init(const struct sw_output *o)
{
	ident = o;
}

void sw_entity_id(uint32_t pid, uint64_t start_ns, char *out, size_t len)
{
	char key[256];
	int n = snprintf(key, sizeof(key), "%s:%s:%u:%llu", ident ? ident->host_id : "", ident ? ident->boot_id : "", pid,
			 (unsigned long long)start_ns);

	sw_digest_id(key, n, out, len);
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
	if (sw_proc_cgroup(pid, out, len)) {
		out[0] = 0;
		return; /* the process is gone: try again next time */
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
}

/* Add raw network or process bytes as a JSON string, made safe first. */
static void add_bytes(cJSON *obj, const char *key, const void *p, size_t len)
{
	char *t = sw_text_json(p, len);

	if (t) {
		cJSON_AddStringToObject(obj, key, t);
		free(t);
	}
}

static void add_cstr(cJSON *obj, const char *key, const char *s, size_t max)
{
	add_bytes(obj, key, s, strnlen(s, max));
}

/* process.parent (ECS) and the whole chain up to init in process.ancestors. */
static void add_parents(cJSON *p, const struct sw_session *s)
{
	const struct sw_connect *c = &s->conn;
	cJSON *parent = sw_obj(p, "parent"), *chain;
	char id[32];

	cJSON_AddNumberToObject(parent, "pid", c->ppid);
	if (c->n_ancestors > 0 && c->ancestors[0].pid == c->ppid) {
		add_cstr(parent, "name", c->ancestors[0].comm, SW_COMM_LEN);
		if (s->anc_exe[0])
			add_cstr(parent, "executable", s->anc_exe[0], 4096);
		sw_entity_id(c->ppid, c->ancestors[0].start_ns, id, sizeof(id));
		cJSON_AddStringToObject(parent, "entity_id", id);
	}
	chain = cJSON_AddArrayToObject(p, "ancestors");
	for (uint32_t i = 0; i < c->n_ancestors && i < SW_MAX_ANCESTORS; i++) {
		cJSON *a = cJSON_CreateObject();

		cJSON_AddNumberToObject(a, "pid", c->ancestors[i].pid);
		add_cstr(a, "name", c->ancestors[i].comm, SW_COMM_LEN);
		if (s->anc_exe[i])
			add_cstr(a, "executable", s->anc_exe[i], 4096);
		cJSON_AddItemToArray(chain, a);
	}
}

static void add_process(cJSON *ev, const struct sw_session *s)
{
	const struct sw_connect *c = &s->conn;
	cJSON *p = sw_obj(ev, "process"), *args;
	char num[32];

	cJSON_AddNumberToObject(p, "pid", c->tgid);
	cJSON_AddNumberToObject(sw_obj(p, "thread"), "id", c->tid);
	add_cstr(p, "name", c->comm, sizeof(c->comm));
	if (s->exe)
		add_cstr(p, "executable", s->exe, 4096);
	else
		add_cstr(p, "executable", c->exe_name, sizeof(c->exe_name));
	args = cJSON_AddArrayToObject(p, "args");
	for (size_t off = 0; s->args && off < s->args_len;) {
		size_t n = strnlen(s->args + off, s->args_len - off);
		char *t = sw_text_json((const uint8_t *)s->args + off, n);

		if (t) {
			cJSON_AddItemToArray(args, cJSON_CreateString(t));
			free(t);
		}
		off += n + 1;
	}
	/* Where the image and argv came from: the exec hook survives the process. */
	cJSON_AddStringToObject(sw_obj(ev, "smtpwatch"), "exec_source",
				c->flags & SW_CONN_EXEC_CACHED	 ? "exec"
				: c->flags & SW_CONN_EXEC_PARENT ? "parent_exec"
				: s->exe			 ? "proc"
								 : "none");
	if (s->args_truncated)
		cJSON_AddBoolToObject(p, "args_truncated", 1);
	cJSON_AddStringToObject(p, "entity_id", s->entity_id);
	add_parents(p, s);
	snprintf(num, sizeof(num), "%u", c->uid);
	cJSON_AddStringToObject(sw_obj(ev, "user"), "id", num);
	cJSON_AddStringToObject(sw_obj(ev, "user"), "name", sw_user_name(c->uid));
	snprintf(num, sizeof(num), "%u", c->gid);
	cJSON_AddStringToObject(sw_obj(ev, "group"), "id", num);
	if (s->container_id[0])
		cJSON_AddStringToObject(sw_obj(ev, "container"), "id", s->container_id);
	if (s->cgroup[0])
		add_cstr(sw_obj(ev, "smtpwatch"), "cgroup", s->cgroup, sizeof(s->cgroup));
	if (s->unit[0])
		add_cstr(sw_obj(ev, "systemd"), "unit", s->unit, sizeof(s->unit));
	cJSON_AddNumberToObject(sw_obj(ev, "smtpwatch"), "cgroup_id", (double)c->cgroup_id);
}

static void add_endpoint(cJSON *ev, const char *name, const struct sw_addr *a)
{
	cJSON *o = sw_obj(ev, name);
	char ip[64];

	sw_format_addr(a->family == AF_INET ? AF_INET : AF_INET6, a->addr, ip, sizeof(ip));
	cJSON_AddStringToObject(o, "ip", ip);
	cJSON_AddNumberToObject(o, "port", a->port);
}

static void add_network(cJSON *ev, const struct sw_session *s)
{
	cJSON *n = sw_obj(ev, "network");
	char cid[COMMUNITY_ID_LEN];

	cJSON_AddStringToObject(n, "type", s->dst.family == AF_INET ? "ipv4" : "ipv6");
	cJSON_AddStringToObject(n, "transport", "tcp");
	cJSON_AddStringToObject(n, "protocol", "smtp");
	if (s->have_src &&
	    !community_id_v1(0, s->dst.family == AF_INET ? AF_INET : AF_INET6, s->src.addr,
			     s->dst.addr, s->src.port, s->dst.port, IPPROTO_TCP_NUM, cid, sizeof(cid)))
		cJSON_AddStringToObject(n, "community_id", cid);
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

/* smtpwatch.policy: what the policy said about this connect(). */
static void add_policy(cJSON *ev, const struct sw_connect *c)
{
	cJSON *p;

	if (c->policy == SW_POLICY_NONE)
		return;
	p = sw_obj(ev, "smtpwatch.policy");
	cJSON_AddStringToObject(p, "decision", c->flags & SW_CONN_DENIED	  ? "deny"
					       : c->flags & SW_CONN_WOULD_DENY ? "would_deny"
									: "allow");
	cJSON_AddStringToObject(p, "matched", policy_matched(c->policy));
	if (c->flags & SW_CONN_WOULD_DENY)
		cJSON_AddBoolToObject(sw_obj(ev, "smtpwatch"), "would_deny", 1);
}

int sw_report_denied(struct sw_output *o, const struct sw_session *s, int64_t mono_to_real)
{
	cJSON *ev = sw_event_new(o, "connection_denied", s->conn.hdr.ts_ns + mono_to_real);
	char msg[512], ip[64];

	if (!ev)
		return -ENOMEM;
	cJSON_AddStringToObject(sw_obj(ev, "event"), "kind", "event");
	cJSON_AddStringToObject(sw_obj(ev, "event"), "type", "denied");
	cJSON_AddStringToObject(sw_obj(ev, "event"), "outcome", "failure");
	add_process(ev, s);
	add_endpoint(ev, "destination", &s->dst);
	cJSON_AddStringToObject(sw_obj(ev, "network"), "type",
				s->dst.family == AF_INET ? "ipv4" : "ipv6");
	cJSON_AddStringToObject(sw_obj(ev, "network"), "transport", "tcp");
	add_policy(ev, &s->conn);
	cJSON_AddItemToArray(cJSON_AddArrayToObject(sw_obj(ev, "rule"), "name"),
			     cJSON_CreateString("POLICY_DEFAULT_DENY"));
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
	cJSON_AddStringToObject(sw_obj(ev, "event"), "kind", "event");
	cJSON_AddStringToObject(sw_obj(ev, "event"), "type", "start");
	add_process(ev, s);
	add_endpoint(ev, "destination", &s->dst);
	cJSON_AddStringToObject(sw_obj(ev, "network"), "type",
				s->dst.family == AF_INET ? "ipv4" : "ipv6");
	cJSON_AddStringToObject(sw_obj(ev, "network"), "transport", "tcp");
	if (s->conn.flags & SW_CONN_MAPPED_V4)
		cJSON_AddBoolToObject(sw_obj(ev, "smtpwatch"), "v4_mapped", 1);
	add_policy(ev, &s->conn);
	return sw_output_write(o, ev);
}

static void add_rule_name(const char *name, void *arr)
{
	cJSON_AddItemToArray(arr, cJSON_CreateString(name));
}

static void add_smtp(cJSON *ev, const struct sw_session *s, const struct sw_evidence *e)
{
	const struct smtp_dialogue *d = &e->d;
	uint32_t clen = sw_stream_contiguous(&s->st[SW_DIR_CLIENT]);
	uint32_t slen = sw_stream_contiguous(&s->st[SW_DIR_SERVER]);
	cJSON *m = sw_obj(ev, "smtp"), *arr;

	if (d->helo_verb[0]) {
		cJSON_AddStringToObject(m, "helo_verb", d->helo_verb);
		add_bytes(m, "helo", d->helo.p, d->helo.len);
	}
	if (d->mail_from.p)
		add_bytes(m, "mail_from", d->mail_from.p, d->mail_from.len);
	arr = cJSON_AddArrayToObject(m, "rcpt_to");
	for (int i = 0; i < d->n_rcpt; i++) {
		char *t = sw_text_json(d->rcpt_to[i].p, d->rcpt_to[i].len);

		if (t) {
			cJSON_AddItemToArray(arr, cJSON_CreateString(t));
			free(t);
		}
	}
	if (d->banner_code) {
		add_bytes(m, "banner", d->banner.p, d->banner.len);
		cJSON_AddNumberToObject(m, "banner_code", d->banner_code);
	}
	arr = cJSON_AddArrayToObject(m, "replies");
	for (int i = 0; i < d->n_replies; i++) {
		cJSON *r = cJSON_CreateObject();

		cJSON_AddNumberToObject(r, "code", d->replies[i].code);
		add_bytes(r, "text", d->replies[i].text.p, d->replies[i].text.len);
		cJSON_AddItemToArray(arr, r);
	}
	cJSON_AddBoolToObject(m, "starttls", d->starttls);
	if (d->tls)
		cJSON_AddBoolToObject(m, "tls", 1);
	if (e->pregreet)
		cJSON_AddBoolToObject(m, "pregreet", 1);
	if (d->not_smtp)
		cJSON_AddBoolToObject(m, "not_smtp", 1);
	cJSON_AddNumberToObject(m, "commands", d->n_commands);
	if (e->n_listings) {
		arr = cJSON_AddArrayToObject(m, "listed_on");
		for (int i = 0; i < e->n_listings; i++)
			cJSON_AddItemToArray(arr, cJSON_CreateString(e->listings[i].list));
		for (int i = 0; i < e->n_listings; i++)
			if (e->listings[i].ip[0]) {
				cJSON_AddStringToObject(m, "listed_ip", e->listings[i].ip);
				break;
			}
	}
	if (s->have_src) /* no SYN seen (the connect failed): no source at all */
		cJSON_AddNumberToObject(sw_obj(ev, "source"), "bytes_captured", clen);
	cJSON_AddNumberToObject(sw_obj(ev, "destination"), "bytes_captured", slen);
	if (clen < s->st[0].end || slen < s->st[1].end)
		cJSON_AddBoolToObject(sw_obj(ev, "smtpwatch"), "capture_gap", 1);
	sw_evidence_rules(e, add_rule_name, cJSON_AddArrayToObject(sw_obj(ev, "rule"), "name"));
	cJSON_AddNumberToObject(sw_obj(ev, "event"), "risk_score", e->score);
}

int sw_report_session(struct sw_output *o, const struct sw_session *s, int64_t mono_to_real,
		      const char *ifname, const struct sw_evidence *e)
{
	uint64_t start = s->start_ns + mono_to_real;
	uint64_t end = (s->close_ns ? s->close_ns : s->last_ns) + mono_to_real;
	cJSON *ev = sw_event_new(o, s->wire ? "smtp_unattributed" : "smtp_session", start);
	cJSON *evt;
	char ts[64];

	if (!ev)
		return -ENOMEM;
	evt = sw_obj(ev, "event");
	cJSON_AddStringToObject(evt, "kind", "event");
	cJSON_AddStringToObject(evt, "type", "end");
	sw_format_time(start, ts, sizeof(ts));
	cJSON_AddStringToObject(evt, "start", ts);
	sw_format_time(end, ts, sizeof(ts));
	cJSON_AddStringToObject(evt, "end", ts);
	cJSON_AddNumberToObject(evt, "duration", (double)(end > start ? end - start : 0));
	if (!s->wire && s->have_conn)
		add_process(ev, s);
	if (s->have_src)
		add_endpoint(ev, "source", &s->src);
	add_endpoint(ev, "destination", &s->dst);
	add_network(ev, s);
	add_smtp(ev, s, e);
	if (s->wire && ifname)
		cJSON_AddStringToObject(sw_obj(ev, "observer.egress.interface"), "name", ifname);
	cJSON_AddStringToObject(sw_obj(ev, "smtpwatch"), "close",
				s->closed & SW_CLOSE_RST ? "rst"
				: s->closed & (SW_CLOSE_FIN_CLIENT | SW_CLOSE_FIN_SERVER) ? "fin"
				: s->closed & SW_CLOSE_RELEASE ? "release"
				: "timeout");
	if (s->have_conn && (s->conn.flags & SW_CONN_MAPPED_V4))
		cJSON_AddBoolToObject(sw_obj(ev, "smtpwatch"), "v4_mapped", 1);
	if (s->have_conn)
		add_policy(ev, &s->conn);
	return sw_output_write(o, ev);
}

static void add_time(cJSON *obj, const char *key, uint64_t epoch_ns)
{
	char ts[64];

	sw_format_time(epoch_ns, ts, sizeof(ts));
	cJSON_AddStringToObject(obj, key, ts);
}

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
