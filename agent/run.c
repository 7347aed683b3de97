// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * The agent: one epoll loop over the ring buffer, a signalfd, a timerfd, the
 * netlink socket and the control socket. No work happens in signal handlers.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/timerfd.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include "smtpwatch.skel.h"
#include "agent.h"
#include "control.h"
#include "evidence.h"
#include "ifaces.h"
#include "loader.h"
#include "log.h"
#include "output.h"
#include "persist.h"
#include "metrics.h"
#include "policy.h"
#include "sdnotify.h"
#include "syslog_out.h"
#include "report.h"
#include "session.h"
#include "util.h"

#define TICK_NS (200 * 1000000ULL)
/*
 * A closed session is reported once the ring has been read through, from a
 * point this long after its close was seen: records reserved on another CPU
 * just before the close (a reply in softirq) are committed by then, and any
 * pass that starts later reads them. After a FIN alone the peer may still send
 * (its reply to QUIT takes a round trip): the wait is longer. A released socket
 * or a reset flow captures nothing more.
 */
#define LINGER_NS (10 * 1000000ULL)
#define LINGER_FIN_NS (100 * 1000000ULL)
/* Under load the ring wakes us between ticks: report what is due then too,
 * at most this often, so that closed sessions do not pile up in memory. */
#define EXPIRE_MIN_NS (50 * 1000000ULL)

enum { EP_RING = 1, EP_SIGNAL, EP_TIMER, EP_NETLINK, EP_SYSLOG, EP_HOUSE };

struct agent {
	struct sw_run_opts *opts;
	struct sw_policy_state pst;
	uint64_t reloads;
	char reload_error[512];
	struct sw_loader ld;
	struct sw_ifaces ifs;
	struct sw_sessions tbl;
	struct sw_output out;
	struct sw_evidence_ctx evidence;
	struct ring_buffer *rb;
	int epfd, sigfd, timerfd, housefd;
	struct sw_syslog syslog;
	bool have_syslog;
	struct sw_control ctl;
	bool ticking, stop;
	uint64_t last_expire; /* CLOCK_MONOTONIC */
	uint64_t read_from;   /* when the last whole pass over the ring began */
	int64_t mono_to_real;
	uint64_t started_mono;
	uint64_t *forget;
	uint32_t nforget, forget_cap;
	struct sw_persist ps;
	char state_file[4096]; /* open sessions, for the next agent (--pin) */
	struct {
		uint64_t records, connects, sessions, unattributed, orphan_data, bad_records;
		uint64_t stream_errors, denied;
	} n;
};

static void clock_sync(struct agent *a)
{
	a->mono_to_real = (int64_t)(sw_now_ns(CLOCK_REALTIME) - sw_now_ns(CLOCK_MONOTONIC));
}

static void tick_arm(struct agent *a, bool on)
{
	struct itimerspec its = { 0 };

	/* While we tick, a record that starts a session need not wake us (see
	 * start_wakeup_flags() in the BPF side): a store to the mmapped .bss, only
	 * when it changes (the programs on other CPUs read that cache line). */
	if (a->ld.skel->bss->consumer_ticking != on)
		a->ld.skel->bss->consumer_ticking = on;
	if (on == a->ticking)
		return;
	if (on) {
		its.it_value.tv_nsec = TICK_NS;
		its.it_interval.tv_nsec = TICK_NS;
	}
	timerfd_settime(a->timerfd, 0, &its, NULL);
	a->ticking = on;
}

static const char *ifname_of(struct agent *a, uint32_t ifindex)
{
	for (int i = 0; i < a->ifs.n; i++)
		if ((uint32_t)a->ifs.ifs[i].ifindex == ifindex)
			return a->ifs.ifs[i].name;
	return NULL;
}

static void forget_wire(struct agent *a, const struct sw_session *s)
{
	struct sw_wire_key k = { 0 };

	memcpy(k.saddr, s->src.addr, 16);
	memcpy(k.daddr, s->dst.addr, 16);
	k.sport = htons(s->src.port);
	k.dport = htons(s->dst.port);
	k.family = s->src.family;
	bpf_map_delete_elem(bpf_map__fd(a->ld.skel->maps.wire_flows), &k);
}

static void session_finish(struct agent *a, struct sw_session *s, bool in_table)
{
	if (in_table)
		sw_session_remove(&a->tbl, s);
	if (s->wire || s->have_conn) {
		struct sw_evidence e;
		uint64_t end = (s->close_ns ? s->close_ns : s->last_ns) + a->mono_to_real;

		sw_evidence_assess(&a->evidence, s, end, &e);
		sw_report_session(&a->out, s, a->mono_to_real, ifname_of(a, s->ifindex), &e);
		if (e.alert)
			sw_report_alert(&a->out, s, a->mono_to_real, &e, &a->evidence.bhv);
		if (s->wire)
			a->n.unattributed++;
		else
			a->n.sessions++;
	}
	if (s->wire) {
		forget_wire(a, s);
	} else if (!(s->closed & SW_CLOSE_RELEASE)) { /* released: the kernel forgot it */
		if (a->nforget == a->forget_cap) {
			uint32_t cap = a->forget_cap ? a->forget_cap * 2 : 256;
			uint64_t *f = realloc(a->forget, cap * sizeof(*f));

			if (f) {
				a->forget = f;
				a->forget_cap = cap;
			}
		}
		if (a->nforget < a->forget_cap)
			a->forget[a->nforget++] = s->id;
	}
	sw_session_destroy(s);
}

static struct sw_session *session_new(struct agent *a, uint64_t id, uint64_t ts)
{
	struct sw_session *old = sw_session_find(&a->tbl, id), *ev, *s;

	/* The same socket connecting again: the earlier attempt is over. */
	if (old)
		session_finish(a, old, true);
	s = sw_session_add(&a->tbl, id, ts, &ev);
	if (ev)
		session_finish(a, ev, false);
	return s;
}

static int exec_lookup(void *ctx, uint32_t pid, uint64_t start_ns, char *buf, size_t len)
{
	struct agent *a = ctx;
	struct sw_exec x;

	if (bpf_map_lookup_elem(bpf_map__fd(a->ld.skel->maps.execs), &pid, &x) ||
	    x.start_ns != start_ns || !x.exe_len || x.exe_len >= SW_EXE_LEN || x.exe_len >= len)
		return -ENOENT;
	memcpy(buf, x.exe, x.exe_len);
	buf[x.exe_len] = 0;
	return 0;
}

static int on_record(void *ctx, void *data, size_t size)
{
	struct agent *a = ctx;
	const struct sw_hdr *h = data;
	struct sw_session *s;

	a->n.records++;
	if (size < sizeof(*h) || h->size > size) {
		a->n.bad_records++;
		return 0;
	}
	switch (h->type) {
	case SW_EV_CONNECT: {
		const struct sw_connect *c = data;

		if (size < sizeof(*c))
			break;
		a->n.connects++;
		if (c->flags & SW_CONN_DENIED) {
			/* connect() failed: no flow, just the refusal with its attribution. */
			struct sw_session tmp = { .id = h->id, .have_conn = true, .conn = *c, .dst = c->dst };

			sw_report_resolve(&tmp, exec_lookup, a);
			sw_report_denied(&a->out, &tmp, a->mono_to_real);
			a->n.denied++;
			session_release(&tmp);
			break;
		}
		s = session_new(a, h->id, h->ts_ns);
		if (!s)
			break;
		s->have_conn = true;
		s->conn = *c;
		s->dst = c->dst;
		sw_report_resolve(s, exec_lookup, a);
		sw_report_connect(&a->out, s, a->mono_to_real);
		break;
	}
	case SW_EV_WIRE: {
		const struct sw_flow *f = data;

		if (size < sizeof(*f))
			break;
		s = session_new(a, h->id, h->ts_ns);
		if (!s)
			break;
		s->wire = true;
		s->src = f->src;
		s->dst = f->dst;
		s->have_src = true;
		s->ifindex = f->ifindex;
		break;
	}
	case SW_EV_SYN: {
		const struct sw_flow *f = data;

		s = sw_session_find(&a->tbl, h->id);
		if (s && size >= sizeof(*f)) {
			s->src = f->src;
			s->have_src = true;
		}
		break;
	}
	case SW_EV_DATA: {
		const struct sw_data *d = data;

		s = sw_session_find(&a->tbl, h->id);
		if (!s) {
			a->n.orphan_data++;
			break;
		}
		/* A small record ends SW_DATA_SMALL bytes into data[] (events.h). */
		if (size < SW_DATA_HDR_LEN || size < SW_DATA_HDR_LEN + d->len ||
		    d->dir > SW_DIR_SERVER || d->len > SW_DATA_MAX ||
		    sw_stream_put(&s->st[d->dir], d->offset, d->data, d->len, h->ts_ns))
			a->n.stream_errors++;
		s->last_ns = h->ts_ns;
		break;
	}
	case SW_EV_CLOSE: {
		const struct sw_close *c = data;

		s = sw_session_find(&a->tbl, h->id);
		if (!s || size < sizeof(*c))
			break;
		s->closed |= c->reason;
		if (!s->close_ns)
			s->close_ns = h->ts_ns;
		s->last_ns = h->ts_ns;
		/* The first close sets the deadline (the event is out within 2 s of
		 * it); a release or reset brings it forward. */
		{
			uint64_t d = sw_now_ns(CLOCK_MONOTONIC) +
				     (c->reason & (SW_CLOSE_RELEASE | SW_CLOSE_RST) ? LINGER_NS
										   : LINGER_FIN_NS);

			if (!s->closing || d < s->deadline_ns)
				s->deadline_ns = d;
			s->closing = true;
		}
		break;
	}
	default:
		a->n.bad_records++;
	}
	if (a->tbl.count)
		tick_arm(a, true);
	return 0;
}

/* Reads what the ring holds, and notes when this pass began (see LINGER_NS). */
static void consume(struct agent *a)
{
	uint64_t t = sw_now_ns(CLOCK_MONOTONIC);

	if (ring_buffer__consume(a->rb) >= 0)
		a->read_from = t;
}

static void expire(struct agent *a, bool all)
{
	uint64_t now = sw_now_ns(CLOCK_MONOTONIC);
	uint64_t idle = (uint64_t)a->opts->idle_timeout_s * 1000000000ULL;
	struct sw_session *s = a->tbl.oldest, *next;

	a->last_expire = now;
	for (; s; s = next) {
		next = s->next;
		if (all || (s->closing && a->read_from >= s->deadline_ns) ||
		    now - s->last_ns >= idle)
			session_finish(a, s, true);
	}
	if (a->nforget) {
		sw_loader_forget_flows(&a->ld, a->forget, a->nforget);
		a->nforget = 0;
	}
	sw_output_flush(&a->out);
	sw_output_reap(&a->out, 0);
	if (a->ps.meta)
		a->ps.meta->open_sessions = a->tbl.count;
	if (!a->tbl.count && !sw_control_expire(&a->ctl, now) && !a->out.compressor) {
		/* Stop one tick after the kernel is told: a connect record whose
		 * program still saw the flag set (no wakeup) is read on that tick. */
		if (a->ld.skel->bss->consumer_ticking)
			a->ld.skel->bss->consumer_ticking = 0;
		else
			tick_arm(a, false);
	}
}

static cJSON *top_answer(struct agent *a);

static cJSON *status_answer(const char *cmd, const cJSON *req, void *ctx)
{
	struct agent *a = ctx;
	uint64_t k[SW_STAT_MAX] = { 0 };
	cJSON *r = cJSON_CreateObject(), *o, *arr;
	bool ok;

	(void)req;
	if (!strcmp(cmd, "top")) {
		cJSON_Delete(r);
		return top_answer(a);
	}
	if (strcmp(cmd, "status")) {
		cJSON_AddStringToObject(r, "error", "unknown command: the agent answers \"status\" and \"top\"");
		return r;
	}
	sw_loader_stats(&a->ld, k);
	ok = a->ld.nlinks == 7 && a->ifs.mode != SW_TC_NONE && !sw_ifaces_failed(&a->ifs);
	cJSON_AddBoolToObject(r, "ok", ok);
	o = cJSON_AddObjectToObject(r, "agent");
	cJSON_AddStringToObject(o, "version", SW_VERSION);
	cJSON_AddNumberToObject(o, "pid", getpid());
	cJSON_AddNumberToObject(o, "uptime_s",
				(double)(sw_now_ns(CLOCK_MONOTONIC) - a->started_mono) / 1e9);
	cJSON_AddStringToObject(o, "mode",
				a->opts->policy.mode == SW_MODE_ENFORCE ? "enforce" : "monitor");
	cJSON_AddStringToObject(o, "config", a->opts->config ? a->opts->config : "(built-in defaults)");
	{
		cJSON *pol = cJSON_AddObjectToObject(r, "policy"), *ports;
		const struct sw_policy *p = &a->opts->policy;

		ports = cJSON_AddArrayToObject(pol, "enforced_ports");
		for (int i = 0; i < p->nports; i++)
			cJSON_AddItemToArray(ports, cJSON_CreateNumber(p->ports[i]));
		cJSON_AddNumberToObject(pol, "executables", p->n_executables);
		cJSON_AddNumberToObject(pol, "units", p->n_units);
		cJSON_AddNumberToObject(pol, "cgroups", p->n_cgroups);
		cJSON_AddNumberToObject(pol, "uids", p->n_uids);
		cJSON_AddNumberToObject(pol, "destinations", p->n_dests);
		cJSON_AddNumberToObject(pol, "unresolved", a->pst.unresolved);
		if (a->pst.warning[0])
			cJSON_AddStringToObject(pol, "warning", a->pst.warning);
		cJSON_AddNumberToObject(pol, "reloads", (double)a->reloads);
		if (a->reload_error[0])
			cJSON_AddStringToObject(pol, "reload_error", a->reload_error);
		cJSON_AddNumberToObject(pol, "denied", (double)k[SW_STAT_DENIED]);
	}
	{
		cJSON *ps = cJSON_AddObjectToObject(r, "persist");

		cJSON_AddBoolToObject(ps, "pinned", a->ps.active);
		cJSON_AddBoolToObject(ps, "keep", a->ps.active && a->ps.keep);
		if (a->ps.active)
			cJSON_AddStringToObject(ps, "dir", a->ps.dir);
		if (a->ps.error[0])
			cJSON_AddStringToObject(ps, "error", a->ps.error);
		cJSON_AddBoolToObject(ps, "resumed", a->ps.resumed);
		if (a->ps.resumed) {
			cJSON_AddBoolToObject(ps, "previous_clean", a->ps.was_clean);
			cJSON_AddNumberToObject(ps, "sessions_restored", (double)a->ps.restored);
			cJSON_AddNumberToObject(ps, "processes_restored",
						(double)a->ps.procs_restored);
			cJSON_AddNumberToObject(ps, "sessions_lost", (double)a->ps.lost_sessions);
			cJSON_AddNumberToObject(ps, "lines_lost", (double)a->ps.lost_lines);
			cJSON_AddNumberToObject(ps, "restarts", (double)a->ps.meta->restarts);
		}
	}
	cJSON_AddStringToObject(o, "output", a->out.path ? a->out.path : "-");
	if (a->out.error[0])
		cJSON_AddStringToObject(o, "output_error", a->out.error);
	o = cJSON_AddObjectToObject(r, "attach");
	cJSON_AddStringToObject(o, "cgroup", a->ld.cgroup_path);
	arr = cJSON_AddArrayToObject(o, "programs");
	for (int i = 0; i < a->ld.nlinks; i++)
		cJSON_AddItemToArray(arr, cJSON_CreateString(a->ld.link_names[i]));
	cJSON_AddStringToObject(o, "tc_mode", sw_tc_mode_name(a->ifs.mode));
	arr = cJSON_AddArrayToObject(o, "interfaces");
	for (int i = 0; i < a->ifs.n; i++) {
		cJSON *f = cJSON_CreateObject();

		cJSON_AddStringToObject(f, "name", a->ifs.ifs[i].name);
		cJSON_AddNumberToObject(f, "ifindex", a->ifs.ifs[i].ifindex);
		cJSON_AddBoolToObject(f, "attached", a->ifs.ifs[i].attached);
		if (a->ifs.ifs[i].error[0])
			cJSON_AddStringToObject(f, "error", a->ifs.ifs[i].error);
		cJSON_AddItemToArray(arr, f);
	}
	o = cJSON_AddObjectToObject(r, "counters");
	cJSON_AddNumberToObject(o, "records", (double)a->n.records);
	cJSON_AddNumberToObject(o, "connects_kernel", (double)k[SW_STAT_CONNECTS]);
	cJSON_AddNumberToObject(o, "connects", (double)a->n.connects);
	cJSON_AddNumberToObject(o, "sessions", (double)a->n.sessions);
	cJSON_AddNumberToObject(o, "unattributed", (double)a->n.unattributed);
	cJSON_AddNumberToObject(o, "alerts", (double)a->evidence.alerts);
	cJSON_AddNumberToObject(o, "processes_tracked", a->evidence.bhv.count);
	cJSON_AddNumberToObject(o, "sessions_open", a->tbl.count);
	cJSON_AddNumberToObject(o, "data_records", (double)k[SW_STAT_DATA]);
	cJSON_AddNumberToObject(o, "events_written", (double)a->out.written);
	cJSON_AddNumberToObject(o, "output_rotations", (double)a->out.rotations);
	cJSON_AddNumberToObject(o, "output_reopens", (double)a->out.reopens);
	cJSON_AddNumberToObject(o, "payload_beyond_capture", (double)k[SW_STAT_TRUNCATED]);
	{
		uint64_t used, size;

		if (!sw_loader_ring_fill(&a->ld, &used, &size)) {
			cJSON_AddNumberToObject(o, "ring_size_bytes", (double)size);
			cJSON_AddNumberToObject(o, "ring_used_bytes", (double)used);
			cJSON_AddNumberToObject(o, "ring_fill", size ? (double)used / size : 0);
		}
	}
	o = cJSON_AddObjectToObject(r, "losses");
	cJSON_AddNumberToObject(o, "ring_full", (double)k[SW_STAT_RING_FULL]);
	cJSON_AddNumberToObject(o, "flow_map_full", (double)k[SW_STAT_FLOW_FULL]);
	cJSON_AddNumberToObject(o, "wire_map_full", (double)k[SW_STAT_WIRE_FULL]);
	cJSON_AddNumberToObject(o, "exec_map_full", (double)k[SW_STAT_EXEC_FULL]);
	cJSON_AddNumberToObject(o, "sessions_evicted", (double)a->tbl.evicted);
	cJSON_AddNumberToObject(o, "processes_evicted", (double)a->evidence.bhv.evicted);
	cJSON_AddNumberToObject(o, "orphan_data", (double)a->n.orphan_data);
	cJSON_AddNumberToObject(o, "bad_records", (double)a->n.bad_records);
	cJSON_AddNumberToObject(o, "stream_errors", (double)a->n.stream_errors);
	cJSON_AddNumberToObject(o, "write_errors", (double)a->out.write_errors);
	cJSON_AddNumberToObject(o, "interface_attach_failures", (double)a->ifs.attach_failures);
	cJSON_AddNumberToObject(o, "syslog_dropped", a->have_syslog ? (double)a->syslog.dropped : 0);
	cJSON_AddNumberToObject(o, "control_clients_refused", (double)a->ctl.refused);
	if (a->have_syslog) {
		o = cJSON_AddObjectToObject(r, "syslog");
		cJSON_AddStringToObject(o, "target", a->opts->syslog_target);
		cJSON_AddBoolToObject(o, "connected", sw_syslog_connected(&a->syslog));
		cJSON_AddNumberToObject(o, "sent", (double)a->syslog.sent);
		cJSON_AddNumberToObject(o, "reconnects", (double)a->syslog.reconnects);
		cJSON_AddNumberToObject(o, "buffered", (double)a->syslog.buffered);
		cJSON_AddNumberToObject(o, "buffered_bytes", (double)a->syslog.buffered_bytes);
	}
	return r;
}

static int worst_first(const void *x, const void *y)
{
	const struct bhv_proc *p = *(const struct bhv_proc *const *)x;
	const struct bhv_proc *q = *(const struct bhv_proc *const *)y;

	if (p->max_score != q->max_score)
		return q->max_score - p->max_score;
	if (p->sessions_total != q->sessions_total)
		return q->sessions_total > p->sessions_total ? 1 : -1;
	return q->last_ns > p->last_ns ? 1 : q->last_ns < p->last_ns ? -1 : 0;
}

static void add_strings(cJSON *obj, const char *key, const char *const *v, int n, size_t stride)
{
	cJSON *arr = cJSON_AddArrayToObject(obj, key);

	for (int i = 0; i < n; i++)
		cJSON_AddItemToArray(arr, cJSON_CreateString((const char *)v + i * stride));
}

/*
 * The processes that spoke SMTP in the window, worst first: the contract's
 * fields for `top -o json`, and what the live view shows besides.
 */
static cJSON *top_answer(struct agent *a)
{
	struct bhv_table *t = &a->evidence.bhv;
	uint64_t now = sw_now_ns(CLOCK_REALTIME);
	uint64_t window = (uint64_t)t->cfg.window_s * 1000000000ULL;
	uint64_t k[SW_STAT_MAX] = { 0 };
	struct bhv_proc **v = calloc(t->count + 1, sizeof(*v));
	cJSON *r = cJSON_CreateObject(), *arr, *h;
	int n = 0;

	for (struct bhv_proc *p = t->lru_head; p && v; p = p->lru_next)
		if (p->last_ns + window > now)
			v[n++] = p;
	if (v)
		qsort(v, n, sizeof(*v), worst_first);
	arr = cJSON_AddArrayToObject(r, "processes");
	for (int i = 0; i < n; i++) {
		const struct bhv_proc *p = v[i];
		cJSON *o = cJSON_CreateObject(), *rules;
		char ts[64];

		cJSON_AddNumberToObject(o, "pid", p->pid);
		cJSON_AddStringToObject(o, "name", p->name);
		cJSON_AddStringToObject(o, "executable", p->exe);
		cJSON_AddStringToObject(o, "user", p->user);
		cJSON_AddStringToObject(o, "container_id", p->container_id);
		cJSON_AddStringToObject(o, "entity_id", p->entity_id);
		cJSON_AddNumberToObject(o, "sessions", p->sessions_total);
		cJSON_AddNumberToObject(o, "sessions_per_min",
					bhv_sessions_in_window(t, p, now, 60000000000ULL));
		cJSON_AddNumberToObject(o, "destinations", bhv_dests_in_window(t, p, now));
		add_strings(o, "helos", (const char *const *)p->helos[0].text, p->n_helos,
			    sizeof(p->helos[0]));
		cJSON_AddStringToObject(o, "last_helo", p->last_helo);
		cJSON_AddNumberToObject(o, "replies_rejected", p->rejected_total);
		add_strings(o, "lists", (const char *const *)p->lists, p->n_lists, sizeof(p->lists[0]));
		cJSON_AddNumberToObject(o, "risk_score", p->max_score);
		rules = cJSON_AddArrayToObject(o, "rules");
		for (int j = 0; j < HELO_RULE_MAX; j++)
			if (p->helo_rules_seen & (1u << j))
				cJSON_AddItemToArray(rules, cJSON_CreateString(helo_rule_name(j)));
		for (int j = 0; j < BHV_RULE_MAX; j++)
			if (p->rules_seen & (1u << j))
				cJSON_AddItemToArray(rules, cJSON_CreateString(bhv_rule_name(j)));
		sw_format_time(p->first_ns, ts, sizeof(ts));
		cJSON_AddStringToObject(o, "first_seen", ts);
		sw_format_time(p->last_ns, ts, sizeof(ts));
		cJSON_AddStringToObject(o, "last_seen", ts);
		cJSON_AddItemToArray(arr, o);
	}
	free(v);
	sw_loader_stats(&a->ld, k);
	h = cJSON_AddObjectToObject(r, "agent");
	cJSON_AddStringToObject(h, "host", a->out.host);
	cJSON_AddStringToObject(h, "mode", a->opts->policy.mode == SW_MODE_ENFORCE ? "enforce" : "monitor");
	cJSON_AddStringToObject(h, "tc_mode", sw_tc_mode_name(a->ifs.mode));
	cJSON_AddNumberToObject(h, "window_s", t->cfg.window_s);
	cJSON_AddNumberToObject(h, "events", (double)a->out.written);
	cJSON_AddNumberToObject(h, "sessions", (double)(a->n.sessions + a->n.unattributed));
	cJSON_AddNumberToObject(h, "alerts", (double)a->evidence.alerts);
	cJSON_AddNumberToObject(h, "losses",
				(double)(k[SW_STAT_RING_FULL] + k[SW_STAT_FLOW_FULL] + k[SW_STAT_WIRE_FULL] +
					 a->tbl.evicted + a->out.write_errors));
	cJSON_AddNumberToObject(h, "uptime_s", (double)(sw_now_ns(CLOCK_MONOTONIC) - a->started_mono) / 1e9);
	return r;
}

static int ep_add(int epfd, int fd, uint32_t tag)
{
	struct epoll_event ev = { .events = EPOLLIN, .data.u32 = tag };

	return epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev) ? -errno : 0;
}

/*
 * Housekeeping every 15 s (or half the systemd watchdog interval), only when there
 * is something to keep: the metrics file, the watchdog. An idle agent stays asleep.
 */
static int house_start(struct agent *a)
{
	uint64_t wd = sw_sd_watchdog_interval_ns(), ns = 15000000000ULL;
	struct itimerspec its = { 0 };

	if (!a->opts->metrics_file && !wd)
		return 0;
	if (wd && wd / 2 < ns)
		ns = wd / 2;
	its.it_value.tv_sec = its.it_interval.tv_sec = ns / 1000000000ULL;
	its.it_value.tv_nsec = its.it_interval.tv_nsec = ns % 1000000000ULL;
	a->housefd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
	if (a->housefd < 0 || timerfd_settime(a->housefd, 0, &its, NULL))
		return -1;
	return ep_add(a->epfd, a->housefd, EP_HOUSE);
}

static void housekeeping(struct agent *a)
{
	uint64_t ticks;

	if (read(a->housefd, &ticks, sizeof(ticks)) < 0)
		return;
	/* From the loop itself: a stuck loop stops the pings and systemd restarts us. */
	if (sw_sd_watchdog_interval_ns())
		sw_sd_notify("WATCHDOG=1");
	if (a->opts->metrics_file) {
		cJSON *st = status_answer("status", NULL, a);
		char *m = sw_metrics_render(st);

		if (!m || sw_metrics_write_file(a->opts->metrics_file, m))
			pr_debug("cannot write %s\n", a->opts->metrics_file);
		free(m);
		cJSON_Delete(st);
	}
}

static int persist_before_load(void *ctx, struct smtpwatch_bpf *skel)
{
	struct agent *a = ctx;
	struct sw_run_opts *o = a->opts;

	return sw_persist_open(&a->ps, o->pin_dir ? o->pin_dir : SW_DEFAULT_PIN_DIR, o->pin, skel) ?
		       -EBUSY :
		       0;
}

/* The sessions file lives beside the control socket. */
static void state_path(struct agent *a)
{
	const char *sock = a->opts->socket_path, *slash = strrchr(sock, '/');
	int dl = slash ? (int)(slash - sock) : 1;

	snprintf(a->state_file, sizeof(a->state_file), "%.*s/sessions.state", dl,
		 slash ? sock : ".");
}

/* After a restart: say what was taken back and what was lost, in the stream itself. */
static void report_resume(struct agent *a, uint64_t queued)
{
	struct sw_persist *p = &a->ps;
	cJSON *ev = sw_event_new(&a->out, "agent_resumed", sw_now_ns(CLOCK_REALTIME)), *r;

	if (!ev)
		return;
	cJSON_AddStringToObject(sw_obj(ev, "event"), "kind", "event");
	r = sw_obj(ev, "smtpwatch.resume");
	cJSON_AddBoolToObject(r, "clean", p->was_clean);
	cJSON_AddNumberToObject(r, "sessions_restored", (double)p->restored);
	cJSON_AddNumberToObject(r, "processes_restored", (double)p->procs_restored);
	cJSON_AddNumberToObject(r, "sessions_lost", (double)p->lost_sessions);
	cJSON_AddNumberToObject(r, "lines_lost", (double)p->lost_lines);
	cJSON_AddNumberToObject(r, "queued_bytes", (double)queued);
	cJSON_AddNumberToObject(r, "restarts", (double)p->meta->restarts);
	cJSON_AddStringToObject(ev, "message",
				p->was_clean ? "smtpwatch restarted: nothing was lost" :
				p->lost_sessions || p->lost_lines ?
					       "smtpwatch restarted after a crash: sessions open at the crash are lost" :
					       "smtpwatch restarted after a crash: nothing was open");
	sw_output_write(&a->out, ev);
}

static int setup(struct agent *a)
{
	struct sw_run_opts *o = a->opts;
	struct sw_loader_opts lo = { .nports = o->nports, .ring_bytes = o->ring_bytes,
				     .before_load = persist_before_load, .ctx = a };
	sigset_t mask;
	int err;

	memcpy(lo.ports, o->ports, sizeof(lo.ports));
	err = sw_check_environment(a->ld.cgroup_path, sizeof(a->ld.cgroup_path));
	if (err)
		return err;
	err = sw_output_open(&a->out, o->output);
	if (err) {
		if (a->out.error[0])
			pr_warn("%s\n", a->out.error);
		else
			pr_warn("cannot open the output %s: %s\n", o->output, strerror(-err));
		return EX_SW_CONFIG;
	}
	sw_report_init(&a->out, a->ld.cgroup_path);
	if (sw_output_set_rotation(&a->out, o->rotate_size, o->rotate_keep)) {
		pr_warn("%s\n", a->out.error);
		return EX_SW_CONFIG;
	}
	if (o->syslog_target) {
		char why[256];

		if (sw_syslog_open(&a->syslog, o->syslog_target, "smtpwatch", a->out.host, why,
				   sizeof(why))) {
			pr_warn("%s\n", why);
			return EX_SW_CONFIG;
		}
		a->have_syslog = true;
		a->out.syslog = &a->syslog;
	}
	a->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (a->epfd < 0)
		return EX_SW_UNAVAILABLE;
	/* The socket first: a second agent must stop before it attaches anything. */
	err = sw_control_open(&a->ctl, o->socket_path, o->socket_group, a->epfd, status_answer, a);
	if (err == -EADDRINUSE) {
		pr_warn("another agent answers on %s: stop it first, or give this one --socket\n",
			o->socket_path);
		return EX_SW_UNAVAILABLE;
	}
	if (err) {
		pr_warn("cannot create the control socket %s: %s\n", o->socket_path, strerror(-err));
		return EX_SW_CONFIG;
	}
	{
		char cg[sizeof(a->ld.cgroup_path)];

		memcpy(cg, a->ld.cgroup_path, sizeof(cg));
		err = sw_loader_open(&a->ld, &lo);
		memcpy(a->ld.cgroup_path, cg, sizeof(cg));
	}
	if (err)
		return err == -EPERM ? EX_SW_NOPERM : EX_SW_UNAVAILABLE;
	/* The policy is in the maps before the connect hooks can consult it. */
	err = sw_policy_apply(&a->ld, &o->policy, a->ld.cgroup_path, &a->pst);
	if (err) {
		pr_warn("cannot load the policy into the kernel: %s\n", strerror(-err));
		return EX_SW_UNAVAILABLE;
	}
	err = sw_loader_attach(&a->ld, a->ps.active ? a->ps.dir : NULL);
	if (err)
		return EX_SW_UNAVAILABLE;
	err = sw_sessions_init(&a->tbl, o->max_sessions);
	if (!err)
		err = sw_evidence_init(&a->evidence, &o->evidence);
	if (err)
		return EX_SW_UNAVAILABLE;
	state_path(a);
	if (a->ps.resumed) {
		long procs, n = sw_persist_load_sessions(&a->ps, &a->tbl, &a->evidence.bhv,
							  a->state_file, &procs);
		uint64_t used = 0, size = 0;

		if (n < 0)
			pr_warn("cannot take back the sessions in %s: %s\n", a->state_file, strerror((int)-n));
		else if (procs < 0)
			pr_warn("cannot take back the evidence per process in %s (%s): the windows start afresh\n",
				a->state_file, procs == -EPROTO ? "another build's records" : strerror((int)-procs));
		a->ps.restored = n > 0 ? (uint64_t)n : 0;
		a->ps.procs_restored = procs > 0 ? (uint64_t)procs : 0;
		/* The sequence goes on from the last line the previous agent wrote. */
		a->out.sequence = a->ps.meta->seq_flushed;
		sw_loader_ring_fill(&a->ld, &used, &size);
		report_resume(a, used);
		pr_info("resumed from %s: %lu sessions and %lu processes' evidence taken back, %lu lost, %lu bytes queued\n",
			a->ps.dir, (unsigned long)a->ps.restored, (unsigned long)a->ps.procs_restored,
			(unsigned long)a->ps.lost_sessions,
			(unsigned long)used);
	} else {
		unlink(a->state_file); /* for other maps: its flows are gone */
	}
	if (a->ps.meta) {
		a->out.seq_assigned = &a->ps.meta->seq_assigned;
		a->out.seq_flushed = &a->ps.meta->seq_flushed;
		sw_output_flush(&a->out);
	}
	a->rb = ring_buffer__new(bpf_map__fd(a->ld.skel->maps.events), on_record, a, NULL);
	if (!a->rb) {
		pr_warn("cannot map the ring buffer: %s\n", strerror(errno));
		return EX_SW_UNAVAILABLE;
	}
	err = sw_ifaces_init(&a->ifs, &a->ld, o->tc_mode, a->ps.active ? a->ps.dir : NULL,
			     a->ps.active && a->ps.keep);
	if (err == -EOPNOTSUPP) {
		pr_warn("this kernel has no tcx (it came in 6.6): use --tc-mode auto or clsact\n");
		return EX_SW_UNAVAILABLE;
	}
	if (err) {
		pr_warn("cannot watch network interfaces (rtnetlink): %s\n", strerror(-err));
		return EX_SW_UNAVAILABLE;
	}
	sigemptyset(&mask);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGHUP);
	sigprocmask(SIG_BLOCK, &mask, NULL);
	signal(SIGPIPE, SIG_IGN);
	a->sigfd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
	a->timerfd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
	if (a->sigfd < 0 || a->timerfd < 0 ||
	    ep_add(a->epfd, ring_buffer__epoll_fd(a->rb), EP_RING) ||
	    ep_add(a->epfd, a->sigfd, EP_SIGNAL) || ep_add(a->epfd, a->timerfd, EP_TIMER) ||
	    ep_add(a->epfd, a->ifs.nl_fd, EP_NETLINK) ||
	    (a->have_syslog && ep_add(a->epfd, sw_syslog_fd(&a->syslog), EP_SYSLOG)) ||
	    house_start(a)) {
		pr_warn("cannot set up the event loop: %s\n", strerror(errno));
		return EX_SW_UNAVAILABLE;
	}
	pr_info("watching: %d BPF links on %s, tc %s on %d interfaces, control socket %s\n",
		a->ld.nlinks, a->ld.cgroup_path, sw_tc_mode_name(a->ifs.mode), a->ifs.n,
		o->socket_path);
	return 0;
}

static void teardown(struct agent *a)
{
	bool clean = false;

	if (a->ld.skel) {
		/* Programs that outlive us (--pin) must wake the next agent. */
		a->ld.skel->bss->consumer_ticking = 0;
		if (a->rb)
			consume(a);
		if (a->ps.active && a->ps.keep && a->rb) {
			/* Pinned: the next agent takes the open sessions back, and what
			 * comes after this point waits for it in the ring. */
			int err;

			expire(a, false); /* what is due now is reported now */
			err = sw_persist_save_sessions(&a->ps, &a->tbl, &a->evidence.bhv,
						       a->state_file);
			if (err) {
				pr_warn("cannot save the open sessions in %s (%s): reporting them now\n",
					a->state_file, strerror(-err));
				expire(a, true);
			}
			a->ps.meta->open_sessions = 0;
			clean = true;
		} else {
			/* Whatever is in flight still gets reported. */
			expire(a, true);
			clean = true;
		}
	}
	sw_ifaces_detach_all(&a->ifs);
	ring_buffer__free(a->rb);
	sw_loader_destroy(&a->ld);
	sw_persist_close(&a->ps, clean);
	sw_sessions_free(&a->tbl);
	sw_evidence_free(&a->evidence);
	sw_control_close(&a->ctl);
	if (a->have_syslog)
		sw_syslog_close(&a->syslog, 1000); /* a second for the last events */
	sw_output_close(&a->out);
	sw_report_fini();
	if (a->housefd >= 0)
		close(a->housefd);
	free(a->forget);
	if (a->epfd >= 0)
		close(a->epfd);
	if (a->sigfd >= 0)
		close(a->sigfd);
	if (a->timerfd >= 0)
		close(a->timerfd);
}

/* SIGHUP: the file again; a bad file keeps the running policy and says why. */
static void reload(struct agent *a)
{
	struct sw_run_opts *o = a->opts;
	uint16_t ports[SW_MAX_PORTS];
	int nports = o->nports, err;

	/* logrotate-compatible: it moved the file, we write to a new one. */
	if (sw_output_reopen(&a->out))
		pr_warn("%s\n", a->out.error);
	memcpy(ports, o->ports, sizeof(ports));
	a->reloads++;
	sw_sd_notify("RELOADING=1");
	err = o->reload(o, a->reload_error, sizeof(a->reload_error));
	sw_sd_notify("READY=1");
	if (err) {
		pr_warn("reload refused, the running policy stays: %s\n", a->reload_error);
		return;
	}
	a->reload_error[0] = 0;
	if (nports != o->nports || memcmp(ports, o->ports, sizeof(ports)))
		pr_warn("reload: watched ports change only with a restart\n");
	a->evidence.cfg = o->evidence;
	o->evidence.bhv.max_procs = a->evidence.bhv.cfg.max_procs;
	a->evidence.bhv.cfg = o->evidence.bhv;
	err = sw_policy_apply(&a->ld, &o->policy, a->ld.cgroup_path, &a->pst);
	if (err) {
		snprintf(a->reload_error, sizeof(a->reload_error), "the kernel refused the policy: %s",
			 strerror(-err));
		pr_warn("reload: %s\n", a->reload_error);
		return;
	}
	pr_info("reloaded %s: mode %s\n", o->config ? o->config : "(built-in defaults)",
		o->policy.mode == SW_MODE_ENFORCE ? "enforce" : "monitor");
}

static void on_signal(struct agent *a)
{
	struct signalfd_siginfo si;

	while (read(a->sigfd, &si, sizeof(si)) == sizeof(si)) {
		if (si.ssi_signo == SIGINT || si.ssi_signo == SIGTERM) {
			a->stop = true;
			sw_sd_notify("STOPPING=1");
		}
		else if (si.ssi_signo == SIGHUP)
			reload(a);
	}
}

int sw_run(struct sw_run_opts *o)
{
	struct agent a = { .opts = o, .epfd = -1, .sigfd = -1, .timerfd = -1, .housefd = -1 };
	int ret;

	a.ifs.nl_fd = -1;
	a.ctl.lfd = -1;
	a.ld.cgroup_fd = -1;
	clock_sync(&a);
	a.started_mono = sw_now_ns(CLOCK_MONOTONIC);
	ret = setup(&a);
	if (!ret)
		sw_sd_notify("READY=1");
	/* What queued while no agent ran woke nobody: read it now. */
	if (!ret && a.ps.resumed)
		consume(&a);
	while (!ret && !a.stop) {
		struct epoll_event evs[8];
		int n = epoll_wait(a.epfd, evs, 8, -1);

		if (n < 0 && errno != EINTR) {
			pr_warn("event loop failed: %s\n", strerror(errno));
			ret = EX_SW_UNAVAILABLE;
			break;
		}
		for (int i = 0; i < n; i++) {
			switch (evs[i].data.u32) {
			case EP_RING:
				consume(&a);
				if (sw_now_ns(CLOCK_MONOTONIC) - a.last_expire >= EXPIRE_MIN_NS)
					expire(&a, false);
				break;
			case EP_SIGNAL:
				on_signal(&a);
				break;
			case EP_TIMER: {
				uint64_t ticks;

				if (read(a.timerfd, &ticks, sizeof(ticks)) < 0)
					break;
				/* Data records do not wake us: collect them now. */
				consume(&a);
				clock_sync(&a);
				expire(&a, false);
				break;
			}
			case EP_NETLINK:
				sw_ifaces_netlink(&a.ifs);
				break;
			case EP_SYSLOG:
				sw_syslog_poll(&a.syslog, sw_now_ns(CLOCK_MONOTONIC));
				break;
			case EP_HOUSE:
				housekeeping(&a);
				break;
			default:
				sw_control_event(&a.ctl, evs[i].data.u32, evs[i].events);
				/* Clients have deadlines: the tick enforces them. */
				tick_arm(&a, true);
				break;
			}
		}
		/* One write per loop turn, of whole lines. */
		sw_output_flush(&a.out);
	}
	teardown(&a);
	return ret;
}
