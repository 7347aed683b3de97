// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include "behaviour.h"

#define NS 1000000000ULL

static const char *const rule_names[BHV_RULE_MAX] = {
	[BHV_HELO_VARIES] = "HELO_VARIES",   [BHV_NON_MTA_DIRECT] = "NON_MTA_DIRECT",
	[BHV_FANOUT] = "FANOUT",	     [BHV_RATE] = "RATE",
	[BHV_PREGREET] = "PREGREET",	     [BHV_REJECTED] = "REJECTED",
	[BHV_LISTED] = "LISTED",	     [BHV_UNATTRIBUTED] = "UNATTRIBUTED",
};

/* Defaults, documented in docs/rules.md. */
static const int default_weight[BHV_RULE_MAX] = {
	[BHV_HELO_VARIES] = 25, [BHV_NON_MTA_DIRECT] = 30, [BHV_FANOUT] = 25, [BHV_RATE] = 20,
	[BHV_PREGREET] = 30,	[BHV_REJECTED] = 10,	   [BHV_LISTED] = 40, [BHV_UNATTRIBUTED] = 30,
};

/* Mail servers whose job is to talk to remote port 25. */
static const char *const builtin_mtas[] = {
	"/usr/lib/postfix/sbin/smtp", "/usr/libexec/postfix/smtp", "/usr/sbin/exim4",
	"/usr/sbin/exim", "/usr/sbin/sendmail", "/usr/lib/sm.bin/sendmail", "/usr/sbin/smtpd",
	"/usr/sbin/opensmtpd", "/usr/lib/x86_64-linux-gnu/opensmtpd/smtpd",
};

void bhv_cfg_default(struct bhv_cfg *c)
{
	memset(c, 0, sizeof(*c));
	c->window_s = 600;
	c->fanout = 5;
	c->rate_per_min = 30;
	c->alert_threshold = 70;
	c->max_procs = 1024;
	memcpy(c->weight, default_weight, sizeof(c->weight));
}

const char *bhv_rule_name(enum bhv_rule r)
{
	return r < BHV_RULE_MAX ? rule_names[r] : "?";
}

int bhv_rule_weight(const struct bhv_cfg *c, enum bhv_rule r)
{
	return r < BHV_RULE_MAX ? c->weight[r] : 0;
}

bool bhv_is_mta(const struct bhv_cfg *c, const char *exe)
{
	if (!exe)
		return false;
	for (size_t i = 0; i < sizeof(builtin_mtas) / sizeof(builtin_mtas[0]); i++)
		if (!strcmp(exe, builtin_mtas[i]))
			return true;
	for (int i = 0; i < c->n_mtas; i++)
		if (c->mtas[i] && !strcmp(exe, c->mtas[i]))
			return true;
	return false;
}

bool bhv_is_loopback(int family, const uint8_t *a)
{
	static const uint8_t v6_lo[16] = { [15] = 1 };

	if (family == AF_INET)
		return a[0] == 127;
	return !memcmp(a, v6_lo, 16);
}

int bhv_init(struct bhv_table *t, const struct bhv_cfg *c)
{
	memset(t, 0, sizeof(*t));
	t->cfg = *c;
	if (!t->cfg.max_procs)
		t->cfg.max_procs = 1024;
	t->nbuckets = 1;
	while (t->nbuckets < t->cfg.max_procs)
		t->nbuckets <<= 1;
	t->buckets = calloc(t->nbuckets, sizeof(*t->buckets));
	return t->buckets ? 0 : -ENOMEM;
}

static uint32_t bucket(const struct bhv_table *t, uint32_t pid, uint64_t start)
{
	uint64_t h = (pid * 0x9e3779b97f4a7c15ULL) ^ (start * 0xff51afd7ed558ccdULL);

	return (h >> 17) & (t->nbuckets - 1);
}

static void lru_unlink(struct bhv_table *t, struct bhv_proc *p)
{
	if (p->lru_prev)
		p->lru_prev->lru_next = p->lru_next;
	else
		t->lru_head = p->lru_next;
	if (p->lru_next)
		p->lru_next->lru_prev = p->lru_prev;
	else
		t->lru_tail = p->lru_prev;
	p->lru_prev = p->lru_next = NULL;
}

static void lru_push(struct bhv_table *t, struct bhv_proc *p)
{
	p->lru_next = t->lru_head;
	if (t->lru_head)
		t->lru_head->lru_prev = p;
	t->lru_head = p;
	if (!t->lru_tail)
		t->lru_tail = p;
}

static void proc_remove(struct bhv_table *t, struct bhv_proc *p)
{
	struct bhv_proc **pp = &t->buckets[bucket(t, p->pid, p->start_ns)];

	while (*pp && *pp != p)
		pp = &(*pp)->next;
	if (*pp)
		*pp = p->next;
	lru_unlink(t, p);
	t->count--;
	free(p);
}

void bhv_free(struct bhv_table *t)
{
	while (t->lru_head)
		proc_remove(t, t->lru_head);
	free(t->buckets);
	t->buckets = NULL;
}

/* A new record becomes the most recently seen; the least recently seen makes room. */
static void proc_insert(struct bhv_table *t, struct bhv_proc *p)
{
	uint32_t b;

	if (t->count >= t->cfg.max_procs && t->lru_tail) {
		proc_remove(t, t->lru_tail);
		t->evicted++;
	}
	b = bucket(t, p->pid, p->start_ns);
	p->next = t->buckets[b];
	t->buckets[b] = p;
	lru_push(t, p);
	t->count++;
}

static struct bhv_proc *proc_find(const struct bhv_table *t, uint32_t pid, uint64_t start)
{
	struct bhv_proc *p = t->buckets[bucket(t, pid, start)];

	while (p && (p->pid != pid || p->start_ns != start))
		p = p->next;
	return p;
}

static struct bhv_proc *proc_get(struct bhv_table *t, const struct bhv_session *s)
{
	struct bhv_proc *p = proc_find(t, s->pid, s->start_ns);

	if (p) {
		lru_unlink(t, p);
		lru_push(t, p);
		return p;
	}
	p = calloc(1, sizeof(*p));
	if (!p)
		return NULL;
	p->pid = s->pid;
	p->start_ns = s->start_ns;
	p->first_ns = s->now_ns;
	proc_insert(t, p);
	return p;
}

#define BHV_STATE_MAGIC 0x31534842u /* "BHS1" */

struct bhv_state_hdr {
	uint32_t magic;
	uint32_t rec_size; /* sizeof(struct bhv_proc) */
	uint32_t count;
	uint32_t pad;
};

int bhv_save(const struct bhv_table *t, FILE *f)
{
	struct bhv_state_hdr h = { BHV_STATE_MAGIC, sizeof(struct bhv_proc), t->count, 0 };

	if (fwrite(&h, sizeof(h), 1, f) != 1)
		return -EIO;
	for (const struct bhv_proc *p = t->lru_tail; p; p = p->lru_prev) {
		struct bhv_proc rec = *p;

		rec.next = rec.lru_prev = rec.lru_next = NULL;
		if (fwrite(&rec, sizeof(rec), 1, f) != 1)
			return -EIO;
	}
	return 0;
}

#define TERMINATE(a) ((a)[sizeof(a) - 1] = 0)
#define CLAMP(v, max) ((v) = (v) < 0 ? 0 : (v) > (max) ? (max) : (v))

/* A record from a file: counts within their arrays, every string terminated. */
static void proc_sanitize(struct bhv_proc *p)
{
	p->next = p->lru_prev = p->lru_next = NULL;
	TERMINATE(p->entity_id);
	TERMINATE(p->name);
	TERMINATE(p->exe);
	TERMINATE(p->user);
	TERMINATE(p->container_id);
	TERMINATE(p->last_helo);
	p->sess_head %= BHV_MAX_SESS;
	CLAMP(p->n_dests, BHV_MAX_DESTS);
	CLAMP(p->n_helos, BHV_MAX_HELOS);
	for (int i = 0; i < BHV_MAX_HELOS; i++)
		TERMINATE(p->helos[i].text);
	CLAMP(p->n_rejects, 4);
	CLAMP(p->rejects_head, 3);
	for (int i = 0; i < 4; i++)
		TERMINATE(p->rejects[i]);
	CLAMP(p->n_lists, BHV_MAX_LISTS);
	for (int i = 0; i < BHV_MAX_LISTS; i++)
		TERMINATE(p->lists[i]);
}

long bhv_load(struct bhv_table *t, FILE *f)
{
	struct bhv_proc *head = NULL, **tail = &head, *p;
	struct bhv_state_hdr h;
	size_t got = fread(&h, 1, sizeof(h), f);
	long n = 0, err = 0;

	if (!got && feof(f))
		return 0; /* a file from before the evidence was kept */
	if (got != sizeof(h) || h.magic != BHV_STATE_MAGIC)
		return -EINVAL;
	if (h.rec_size != sizeof(struct bhv_proc))
		return -EPROTO;
	/* All or nothing: a cut file takes back no record. */
	for (uint32_t i = 0; i < h.count && !err; i++) {
		p = malloc(sizeof(*p));
		if (!p) {
			err = -ENOMEM;
		} else if (fread(p, sizeof(*p), 1, f) != 1) {
			free(p);
			err = -EINVAL;
		} else {
			proc_sanitize(p);
			*tail = p;
			tail = &p->next;
		}
	}
	/* In file order, oldest first: each becomes the most recently seen. A record
	 * twice in the file counts once. */
	while ((p = head)) {
		head = p->next;
		p->next = NULL;
		if (err || proc_find(t, p->pid, p->start_ns)) {
			free(p);
			continue;
		}
		proc_insert(t, p);
		n++;
	}
	return err ? err : n;
}

static void copy_text(char *dst, size_t len, const char *src)
{
	snprintf(dst, len, "%s", src ? src : "");
}

uint32_t bhv_sessions_in_window(const struct bhv_table *t, const struct bhv_proc *p,
				uint64_t now_ns, uint64_t span_ns)
{
	uint32_t n = 0, have = p->sessions_total < BHV_MAX_SESS ? p->sessions_total : BHV_MAX_SESS;

	(void)t;
	for (uint32_t i = 0; i < have; i++)
		if (p->sess_ts[i] + span_ns > now_ns)
			n++;
	return n;
}

int bhv_dests_in_window(const struct bhv_table *t, const struct bhv_proc *p, uint64_t now_ns)
{
	uint64_t span = (uint64_t)t->cfg.window_s * NS;
	int n = 0;

	for (int i = 0; i < p->n_dests; i++)
		n += p->dests[i].ts + span > now_ns;
	return n;
}

static void note_dest(struct bhv_proc *p, const struct bhv_session *s)
{
	int oldest = 0;

	for (int i = 0; i < p->n_dests; i++) {
		struct bhv_dest *d = &p->dests[i];

		if (d->family == s->family && d->port == s->dport &&
		    !memcmp(d->addr, s->daddr, s->family == AF_INET ? 4 : 16)) {
			d->ts = s->now_ns;
			return;
		}
		if (d->ts < p->dests[oldest].ts)
			oldest = i;
	}
	/* Full: the least recently used destination makes room. */
	if (p->n_dests < BHV_MAX_DESTS)
		oldest = p->n_dests++;
	p->dests[oldest].family = s->family;
	p->dests[oldest].port = s->dport;
	memset(p->dests[oldest].addr, 0, 16);
	memcpy(p->dests[oldest].addr, s->daddr, s->family == AF_INET ? 4 : 16);
	p->dests[oldest].ts = s->now_ns;
}

/* Returns the number of distinct HELOs in the window, this one included. */
static int note_helo(struct bhv_table *t, struct bhv_proc *p, const char *helo, uint64_t now)
{
	uint64_t span = (uint64_t)t->cfg.window_s * NS;
	int oldest = 0, n = 0, found = -1;

	for (int i = 0; i < p->n_helos; i++) {
		if (!strcmp(p->helos[i].text, helo))
			found = i;
		if (p->helos[i].ts < p->helos[oldest].ts)
			oldest = i;
	}
	if (found < 0) {
		found = p->n_helos < BHV_MAX_HELOS ? p->n_helos++ : oldest;
		copy_text(p->helos[found].text, BHV_TEXT, helo);
	}
	p->helos[found].ts = now;
	for (int i = 0; i < p->n_helos; i++)
		n += p->helos[i].ts + span > now;
	return n;
}

static void note_lists(struct bhv_proc *p, const struct bhv_session *s)
{
	for (int i = 0; i < s->n_lists; i++) {
		int j;

		for (j = 0; j < p->n_lists; j++)
			if (!strcmp(p->lists[j], s->lists[i]))
				break;
		if (j == p->n_lists && p->n_lists < BHV_MAX_LISTS)
			copy_text(p->lists[p->n_lists++], sizeof(p->lists[0]), s->lists[i]);
	}
}

uint32_t bhv_observe(struct bhv_table *t, const struct bhv_session *s, struct bhv_proc **out)
{
	const struct bhv_cfg *c = &t->cfg;
	struct bhv_proc *p;
	uint32_t r = 0;

	*out = NULL;
	if (s->pregreet)
		r |= 1u << BHV_PREGREET;
	if (s->n_rejected > 0)
		r |= 1u << BHV_REJECTED;
	if (s->n_lists > 0)
		r |= 1u << BHV_LISTED;
	if (s->wire)
		return r | 1u << BHV_UNATTRIBUTED;
	if (s->dport == 25 && !bhv_is_loopback(s->family, s->daddr) && !bhv_is_mta(c, s->exe))
		r |= 1u << BHV_NON_MTA_DIRECT;

	p = proc_get(t, s);
	if (!p)
		return r;
	p->last_ns = s->now_ns;
	p->ppid = s->ppid;
	copy_text(p->entity_id, sizeof(p->entity_id), s->entity_id);
	copy_text(p->name, sizeof(p->name), s->name);
	copy_text(p->exe, sizeof(p->exe), s->exe);
	copy_text(p->user, sizeof(p->user), s->user);
	copy_text(p->container_id, sizeof(p->container_id), s->container_id);
	p->sess_ts[p->sess_head] = s->now_ns;
	p->sess_head = (p->sess_head + 1) % BHV_MAX_SESS;
	p->sessions_total++;
	p->rejected_total += s->n_rejected;
	for (int i = 0; s->rejects && i < s->n_rejected; i++) {
		copy_text(p->rejects[p->rejects_head], BHV_TEXT, s->rejects[i]);
		p->rejects_head = (p->rejects_head + 1) % 4;
		if (p->n_rejects < 4)
			p->n_rejects++;
	}
	note_dest(p, s);
	note_lists(p, s);
	if (s->helo) {
		if (note_helo(t, p, s->helo, s->now_ns) > 1)
			r |= 1u << BHV_HELO_VARIES;
		copy_text(p->last_helo, sizeof(p->last_helo), s->helo);
	}
	if ((uint32_t)bhv_dests_in_window(t, p, s->now_ns) >= c->fanout)
		r |= 1u << BHV_FANOUT;
	if (bhv_sessions_in_window(t, p, s->now_ns, 60 * NS) >= c->rate_per_min)
		r |= 1u << BHV_RATE;
	p->rules_seen |= r;
	*out = p;
	return r;
}

bool bhv_should_alert(struct bhv_table *t, struct bhv_proc *p, int score, uint64_t now_ns)
{
	if (score > p->max_score)
		p->max_score = score;
	if (score < t->cfg.alert_threshold)
		return false;
	if (p->alerted_ns && p->alerted_ns + (uint64_t)t->cfg.window_s * NS > now_ns)
		return false;
	p->alerted_ns = now_ns;
	return true;
}
