// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#include <errno.h>
#include <ifaddrs.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>
#include <sys/socket.h>
#include "evidence.h"
#include "procinfo.h"
#include "textsafe.h"

void sw_evidence_cfg_default(struct sw_evidence_cfg *c)
{
	bhv_cfg_default(&c->bhv);
	for (int i = 0; i < HELO_RULE_MAX; i++)
		c->helo_weight[i] = helo_rule_weight(i);
}

int sw_evidence_set_weight(struct sw_evidence_cfg *c, const char *rule, int weight)
{
	for (int i = 0; i < HELO_RULE_MAX; i++)
		if (!strcmp(rule, helo_rule_name(i))) {
			c->helo_weight[i] = weight;
			return 0;
		}
	for (int i = 0; i < BHV_RULE_MAX; i++)
		if (!strcmp(rule, bhv_rule_name(i))) {
			c->bhv.weight[i] = weight;
			return 0;
		}
	return -ENOENT;
}

static void add_name(struct sw_evidence_ctx *x, const char *name)
{
	int n = x->host.n_names;

	if (!name[0] || n >= SW_MAX_HOST_NAMES)
		return;
	for (int i = 0; i < n; i++)
		if (!strcasecmp(x->names[i], name))
			return;
	snprintf(x->names[n], sizeof(x->names[n]), "%s", name);
	x->name_ptrs[n] = x->names[n];
	x->host.n_names = n + 1;
}

/* The names a correctly set up mailer here would say: hostname, mailname. */
static void host_names(struct sw_evidence_ctx *x)
{
	char buf[256] = "";
	FILE *f;

	if (!gethostname(buf, sizeof(buf) - 1)) {
		add_name(x, buf);
		buf[strcspn(buf, ".")] = 0;
		add_name(x, buf);
	}
	f = fopen("/etc/mailname", "re");
	if (f) {
		if (fgets(buf, sizeof(buf), f)) {
			buf[strcspn(buf, "\n")] = 0;
			add_name(x, buf);
		}
		fclose(f);
	}
	x->host.names = x->name_ptrs;
}

static void host_addrs(struct sw_evidence_ctx *x)
{
	struct ifaddrs *ifa, *i;
	int n = 0;

	if (getifaddrs(&ifa))
		return;
	for (i = ifa; i && n < SW_MAX_HOST_ADDRS; i = i->ifa_next) {
		if (!i->ifa_addr)
			continue;
		memset(x->addrs[n], 0, 16);
		if (i->ifa_addr->sa_family == AF_INET) {
			memcpy(x->addrs[n], &((struct sockaddr_in *)i->ifa_addr)->sin_addr, 4);
		} else if (i->ifa_addr->sa_family == AF_INET6) {
			memcpy(x->addrs[n], &((struct sockaddr_in6 *)i->ifa_addr)->sin6_addr, 16);
		} else {
			continue;
		}
		x->families[n++] = i->ifa_addr->sa_family;
	}
	freeifaddrs(ifa);
	x->host.addrs = (const uint8_t(*)[16])x->addrs;
	x->host.addr_families = x->families;
	x->host.n_addrs = n;
}

int sw_evidence_init(struct sw_evidence_ctx *x, const struct sw_evidence_cfg *c)
{
	memset(x, 0, sizeof(*x));
	x->cfg = *c;
	host_names(x);
	host_addrs(x);
	return bhv_init(&x->bhv, &c->bhv);
}

void sw_evidence_free(struct sw_evidence_ctx *x)
{
	bhv_free(&x->bhv);
}

static int score(const struct sw_evidence_ctx *x, const struct sw_evidence *e, uint16_t dport)
{
	/* Mail user agents on the submission ports say their machine name: the HELO
	 * matters to blocklists on port 25, much less there. */
	int helo_div = dport == 587 || dport == 465 ? 2 : 1;
	int sum = 0;

	for (int i = 0; i < HELO_RULE_MAX; i++)
		if (e->helo_rules & (1u << i))
			sum += x->cfg.helo_weight[i] / helo_div;
	for (int i = 0; i < BHV_RULE_MAX; i++)
		if (e->bhv_rules & (1u << i))
			sum += x->cfg.bhv.weight[i];
	return sum > 100 ? 100 : sum < 0 ? 0 : sum;
}

void sw_evidence_assess(struct sw_evidence_ctx *x, const struct sw_session *s, uint64_t epoch_ns,
			struct sw_evidence *e)
{
	uint32_t clen = sw_stream_contiguous(&s->st[SW_DIR_CLIENT]);
	uint32_t slen = sw_stream_contiguous(&s->st[SW_DIR_SERVER]);
	const char *lists[SW_MAX_LISTINGS], *rejects[SMTP_MAX_REPLIES];
	char *helo_text = NULL, *reject_text[SMTP_MAX_REPLIES] = { 0 };
	struct helo_peer peer = { .family = s->dst.family };
	struct bhv_session b = { 0 };
	char tmp[BHV_TEXT];

	memset(e, 0, sizeof(*e));
	smtp_parse(s->st[0].buf, clen, s->st[1].buf, slen, &e->d);
	memcpy(peer.addr, s->dst.addr, 16);
	if (e->d.helo_verb[0])
		helo_classify(e->d.helo.p, e->d.helo.len, &x->host, &peer, &e->helo_rules);
	else if (e->d.mail_before_helo)
		helo_classify(NULL, 0, &x->host, &peer, &e->helo_rules);
	for (int i = 0; i < e->d.n_replies; i++) {
		const struct smtp_reply *r = &e->d.replies[i];
		struct reply_listing l;

		if (r->code < 400)
			continue;
		snprintf(tmp, sizeof(tmp), "%d ", r->code);
		{
			char *t = sw_text_json(r->text.p, r->text.len > 100 ? 100 : r->text.len);
			char *line = NULL;

			if (t && asprintf(&line, "%s%s", tmp, t) < 0)
				line = NULL;
			free(t);
			reject_text[e->n_rejected] = line;
			rejects[e->n_rejected] = line ? line : "";
		}
		e->n_rejected++;
		if (e->n_listings < SW_MAX_LISTINGS &&
		    reply_listing(r->code, r->full.p, r->full.len, &l)) {
			int dup = 0;

			for (int j = 0; j < e->n_listings; j++)
				dup |= !strcmp(e->listings[j].list, l.list);
			if (!dup) {
				e->listings[e->n_listings] = l;
				lists[e->n_listings] = e->listings[e->n_listings].list;
				e->n_listings++;
			}
		}
	}
	/* The client spoke before the server's banner: bots do, MTAs wait. */
	e->pregreet = s->st[0].first_ns && s->st[1].first_ns && s->st[0].first_ns < s->st[1].first_ns;

	if (e->d.helo_verb[0])
		helo_text = sw_text_json(e->d.helo.p, e->d.helo.len);
	b.pid = s->conn.tgid;
	b.ppid = s->conn.ppid;
	b.start_ns = s->conn.start_ns;
	b.now_ns = epoch_ns;
	b.entity_id = s->entity_id;
	b.name = s->conn.comm;
	b.exe = s->exe ? s->exe : s->conn.exe_name;
	b.user = s->wire ? NULL : sw_user_name(s->conn.uid);
	b.container_id = s->container_id;
	b.wire = s->wire;
	b.family = s->dst.family;
	b.daddr = s->dst.addr;
	b.dport = s->dst.port;
	b.helo = helo_text;
	b.pregreet = e->pregreet;
	b.n_rejected = e->n_rejected;
	b.rejects = rejects;
	b.lists = lists;
	b.n_lists = e->n_listings;
	e->bhv_rules = bhv_observe(&x->bhv, &b, &e->proc);
	e->score = score(x, e, s->dst.port);
	if (e->proc && bhv_should_alert(&x->bhv, e->proc, e->score, epoch_ns)) {
		e->alert = true;
		x->alerts++;
	}
	if (e->proc)
		e->proc->helo_rules_seen |= e->helo_rules;
	free(helo_text);
	for (int i = 0; i < e->n_rejected; i++)
		free(reject_text[i]);
}

void sw_evidence_rules(const struct sw_evidence *e, void (*fn)(const char *name, void *ctx),
		       void *ctx)
{
	for (int i = 0; i < HELO_RULE_MAX; i++)
		if (e->helo_rules & (1u << i))
			fn(helo_rule_name(i), ctx);
	for (int i = 0; i < BHV_RULE_MAX; i++)
		if (e->bhv_rules & (1u << i))
			fn(bhv_rule_name(i), ctx);
}
