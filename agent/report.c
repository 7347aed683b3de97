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
static void write_process(const struct sw_session *s, const char *key);

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
	write_process(s, NULL);
	if (jw_text(&w))
		s->proc_json = strdup(jw_text(&w));
	jw_reset(&w);
}

/*
 * Each event line is written as text by one reusable writer (jsonw.h), head to
 * end, and handed to the output whole: a cJSON tree per event cost two
 * allocations per field, printf/strtod per number, a print and a copy. The
 * members come in the order the trees had, so the lines are the same bytes;
 * the output numbers them (event.sequence, last in the event object).
 */
static size_t seq_at;	  /* where event.sequence goes: the event object's closing brace */
static struct jw host_w;  /* the host object, the same in every event */
static const struct sw_output *host_of;

void sw_report_fini(void)
{
	jw_free(&w);
	jw_free(&host_w);
	host_of = NULL;
}

/* {"@timestamp":...,"event":{"action":...,"kind":...: the event object stays open. */
static void head(const char *action, uint64_t epoch_ns, const char *kind, const char *type,
		 const char *outcome)
{
	jw_reset(&w);
	jw_obj(&w, NULL);
	jw_time(&w, "@timestamp", epoch_ns);
	jw_obj(&w, "event");
	jw_str(&w, "action", action);
	jw_str(&w, "kind", kind);
	if (type)
		jw_str(&w, "type", type);
	if (outcome)
		jw_str(&w, "outcome", outcome);
}

/* Closes the event object and writes host: name, id, boot.id. */
static void head_end(const struct sw_output *o)
{
	seq_at = w.len;
	jw_end(&w);
	if (host_of != o || !jw_text(&host_w)) {
		jw_reset(&host_w);
		jw_obj(&host_w, NULL);
		jw_str(&host_w, "name", o->host);
		if (o->host_id[0])
			jw_str(&host_w, "id", o->host_id);
		if (o->boot_id[0]) {
			jw_obj(&host_w, "boot");
			jw_str(&host_w, "id", o->boot_id);
			jw_end(&host_w);
		}
		jw_end(&host_w);
		host_of = jw_text(&host_w) ? o : NULL;
	}
	if (host_of)
		jw_raw(&w, "host", host_w.buf, host_w.len);
	else
		w.oom = true; /* no host object: the line would not be the contract's */
}

/* Closes the line and hands it to the output, which numbers and writes it. */
static int finish(struct sw_output *o, const char *action)
{
	int ret;

	jw_end(&w);
	ret = sw_output_line(o, jw_text(&w), w.len, seq_at, action);
	jw_reset(&w);
	return ret;
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
static void write_process(const struct sw_session *s, const char *key)
{
	const struct sw_connect *c = &s->conn;

	jw_obj(&w, key);
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

/* A uid or gid: a string in ECS, "1000" (without snprintf, twice an event). */
static void id_str(uint32_t v)
{
	char num[16], tmp[10];
	size_t n = 0, d = 0;

	do {
		tmp[d++] = '0' + v % 10;
		v /= 10;
	} while (v);
	num[n++] = '"';
	while (d)
		num[n++] = tmp[--d];
	num[n++] = '"';
	jw_raw(&w, "id", num, n);
}

/* process, user, group, container, systemd. */
static void write_owner(const struct sw_session *s)
{
	const struct sw_connect *c = &s->conn;

	if (s->proc_json)
		jw_raw(&w, "process", s->proc_json, strlen(s->proc_json));
	else
		write_process(s, "process");
	jw_obj(&w, "user");
	id_str(c->uid);
	jw_str(&w, "name", sw_user_name(c->uid));
	jw_end(&w);
	jw_obj(&w, "group");
	id_str(c->gid);
	jw_end(&w);
	if (s->container_id[0]) {
		jw_obj(&w, "container");
		jw_str(&w, "id", s->container_id);
		jw_end(&w);
	}
	if (s->unit[0]) {
		jw_obj(&w, "systemd");
		cstr("unit", s->unit, sizeof(s->unit));
		jw_end(&w);
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

static void write_endpoint(const char *key, const struct sw_addr *a, bool bytes,
			   uint32_t captured)
{
	char ip[64];

	format_ip(a, ip, sizeof(ip));
	jw_obj(&w, key);
	jw_str(&w, "ip", ip);
	jw_u64(&w, "port", a->port);
	if (bytes)
		jw_u64(&w, "bytes_captured", captured);
	jw_end(&w);
}

static void write_network(const struct sw_session *s, bool full)
{
	char cid[COMMUNITY_ID_LEN];

	jw_obj(&w, "network");
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
}

int sw_report_denied(struct sw_output *o, const struct sw_session *s, int64_t mono_to_real)
{
	char msg[512], ip[64];

	head("connection_denied", s->conn.hdr.ts_ns + mono_to_real, "event", "denied", "failure");
	head_end(o);
	write_owner(s);
	jw_obj(&w, "smtpwatch");
	write_ours_process(s);
	write_policy(&s->conn);
	jw_end(&w);
	write_endpoint("destination", &s->dst, false, 0);
	write_network(s, false);
	jw_obj(&w, "rule");
	jw_arr(&w, "name");
	jw_str(&w, NULL, "POLICY_DEFAULT_DENY");
	jw_end(&w);
	jw_end(&w);
	sw_format_addr(s->dst.family == AF_INET ? AF_INET : AF_INET6, s->dst.addr, ip, sizeof(ip));
	snprintf(msg, sizeof(msg), "connect() to %s port %u refused with EPERM: pid %u is not an allowed mailer",
		 ip, s->dst.port, s->conn.tgid);
	jw_str(&w, "message", msg);
	return finish(o, "connection_denied");
}

int sw_report_connect(struct sw_output *o, const struct sw_session *s, int64_t mono_to_real)
{
	head("connection_attempted", s->conn.hdr.ts_ns + mono_to_real, "event", "start", NULL);
	head_end(o);
	write_owner(s);
	jw_obj(&w, "smtpwatch");
	write_ours_process(s);
	if (s->conn.flags & SW_CONN_MAPPED_V4)
		jw_bool(&w, "v4_mapped", true);
	write_policy(&s->conn);
	jw_end(&w);
	write_endpoint("destination", &s->dst, false, 0);
	write_network(s, false);
	return finish(o, "connection_attempted");
}

static void write_rule(const char *name, void *ctx)
{
	(void)ctx;
	jw_str(&w, NULL, name);
}

static void write_smtp(const struct sw_evidence *e)
{
	const struct smtp_dialogue *d = &e->d;

	jw_obj(&w, "smtp");
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
	jw_obj(&w, "rule");
	jw_arr(&w, "name");
	sw_evidence_rules(e, write_rule, NULL);
	jw_end(&w);
	jw_end(&w);
}

int sw_report_session(struct sw_output *o, const struct sw_session *s, int64_t mono_to_real,
		      const char *ifname, const struct sw_evidence *e)
{
	uint64_t start = s->start_ns + mono_to_real;
	uint64_t end = (s->close_ns ? s->close_ns : s->last_ns) + mono_to_real;
	uint32_t clen = sw_stream_contiguous(&s->st[SW_DIR_CLIENT]);
	uint32_t slen = sw_stream_contiguous(&s->st[SW_DIR_SERVER]);
	const char *action = s->wire ? "smtp_unattributed" : "smtp_session";
	bool proc = !s->wire && s->have_conn;

	head(action, start, "event", "end", NULL);
	jw_time(&w, "start", start);
	jw_time(&w, "end", end);
	jw_u64(&w, "duration", end > start ? end - start : 0);
	jw_int(&w, "risk_score", e->score);
	head_end(o);
	if (proc)
		write_owner(s);

	jw_obj(&w, "smtpwatch");
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

	/* No SYN seen (the connect failed): no source at all. */
	if (s->have_src)
		write_endpoint("source", &s->src, true, clen);
	write_endpoint("destination", &s->dst, true, slen);
	write_network(s, true);
	write_smtp(e);
	if (s->wire && ifname) {
		jw_obj(&w, "observer");
		jw_obj(&w, "egress");
		jw_obj(&w, "interface");
		jw_str(&w, "name", ifname);
		jw_end(&w);
		jw_end(&w);
		jw_end(&w);
	}
	return finish(o, action);
}

/* Once per process and window. */
int sw_report_alert(struct sw_output *o, const struct sw_session *s, int64_t mono_to_real,
		    const struct sw_evidence *e, const struct bhv_table *bhv)
{
	const struct bhv_proc *p = e->proc;
	uint64_t now = (s->close_ns ? s->close_ns : s->last_ns) + mono_to_real;
	uint64_t window = (uint64_t)bhv->cfg.window_s * 1000000000ULL;
	char msg[512], ip[64];
	int ndest;

	if (!p)
		return -ENOMEM;
	head("smtp_alert", now, "alert", NULL, NULL);
	jw_int(&w, "risk_score", e->score);
	head_end(o);
	write_owner(s);
	jw_obj(&w, "smtpwatch");
	write_ours_process(s);
	ndest = bhv_dests_in_window(bhv, p, now);
	jw_obj(&w, "alert");
	jw_u64(&w, "window_s", bhv->cfg.window_s);
	jw_u64(&w, "sessions", p->sessions_total);
	jw_u64(&w, "sessions_in_window", bhv_sessions_in_window(bhv, p, now, window));
	jw_int(&w, "destinations_in_window", ndest);
	jw_arr(&w, "destinations");
	for (int i = 0; i < p->n_dests; i++) {
		sw_format_addr(p->dests[i].family, p->dests[i].addr, ip, sizeof(ip));
		jw_obj(&w, NULL);
		jw_str(&w, "ip", ip);
		jw_u64(&w, "port", p->dests[i].port);
		jw_end(&w);
	}
	jw_end(&w);
	jw_arr(&w, "helos");
	for (int i = 0; i < p->n_helos; i++)
		jw_str(&w, NULL, p->helos[i].text);
	jw_end(&w);
	jw_u64(&w, "replies_rejected", p->rejected_total);
	jw_arr(&w, "rejections");
	for (int i = 0; i < p->n_rejects; i++)
		jw_str(&w, NULL, p->rejects[i]);
	jw_end(&w);
	jw_arr(&w, "listed_on");
	for (int i = 0; i < p->n_lists; i++)
		jw_str(&w, NULL, p->lists[i]);
	jw_end(&w);
	jw_time(&w, "first_seen", p->first_ns);
	jw_time(&w, "last_seen", p->last_ns);
	jw_end(&w);
	jw_end(&w);
	jw_obj(&w, "rule");
	jw_arr(&w, "name");
	for (int i = 0; i < HELO_RULE_MAX; i++)
		if (p->helo_rules_seen & (1u << i))
			jw_str(&w, NULL, helo_rule_name(i));
	for (int i = 0; i < BHV_RULE_MAX; i++)
		if (p->rules_seen & (1u << i))
			jw_str(&w, NULL, bhv_rule_name(i));
	jw_end(&w);
	jw_end(&w);
	snprintf(msg, sizeof(msg),
		 "pid %u (%s) opened %u SMTP sessions to %d destinations, %u replies refused, risk %d",
		 p->pid, p->name, p->sessions_total, ndest, p->rejected_total, e->score);
	jw_str(&w, "message", msg);
	return finish(o, "smtp_alert");
}
