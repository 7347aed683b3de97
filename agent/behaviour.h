/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Per-process evidence over a sliding window: how many sessions, to how many
 * destinations, with which HELOs, refused how often and by which lists. Pure C,
 * fed one finished session at a time; the table is bounded (least recently seen
 * process goes first).
 */
#ifndef SMTPWATCH_BEHAVIOUR_H
#define SMTPWATCH_BEHAVIOUR_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

enum bhv_rule {
	BHV_HELO_VARIES,   /* one process, several HELOs */
	BHV_NON_MTA_DIRECT, /* not a mail server, yet straight to a remote port 25 */
	BHV_FANOUT,	   /* many distinct destinations */
	BHV_RATE,	   /* many sessions per minute */
	BHV_PREGREET,	   /* talks before the banner */
	BHV_REJECTED,	   /* 4xx/5xx replies */
	BHV_LISTED,	   /* a reply names a blocklist */
	BHV_UNATTRIBUTED,  /* no process: raw socket or forwarded */
	BHV_RULE_MAX,
};

#define BHV_MAX_DESTS 64
#define BHV_MAX_HELOS 8
#define BHV_MAX_LISTS 8
#define BHV_MAX_SESS 256
#define BHV_TEXT 128

struct bhv_cfg {
	uint32_t window_s;	/* sliding window for FANOUT, HELO_VARIES, alerts */
	uint32_t fanout;	/* distinct destinations in the window */
	uint32_t rate_per_min;	/* sessions in the last 60 s */
	int alert_threshold;	/* a session score at or above alerts (once per window) */
	int weight[BHV_RULE_MAX];
	const char *const *mtas; /* executables that are mail servers, besides the built-in ones */
	int n_mtas;
	uint32_t max_procs;
};

struct bhv_dest {
	uint8_t family, pad;
	uint16_t port;
	uint8_t addr[16];
	uint64_t ts;
};

struct bhv_proc {
	uint32_t pid;
	uint64_t start_ns; /* with pid, the identity of the process */
	struct bhv_proc *next, *lru_prev, *lru_next;
	char entity_id[48];
	char name[32];
	char exe[256];
	char user[64];
	char container_id[65];
	uint32_t ppid;
	uint64_t first_ns, last_ns; /* epoch ns */
	uint64_t sess_ts[BHV_MAX_SESS];
	uint32_t sess_head, sessions_total;
	struct bhv_dest dests[BHV_MAX_DESTS];
	int n_dests;
	struct {
		char text[BHV_TEXT]; /* already JSON-safe */
		uint64_t ts;
	} helos[BHV_MAX_HELOS];
	int n_helos;
	char last_helo[BHV_TEXT];
	uint32_t rejected_total;
	char rejects[4][BHV_TEXT]; /* the latest refusals, "550 text", JSON-safe */
	int n_rejects, rejects_head;
	char lists[BHV_MAX_LISTS][48];
	int n_lists;
	uint32_t rules_seen;  /* bhv rules ever tripped */
	uint32_t helo_rules_seen;
	int max_score;
	uint64_t alerted_ns;  /* last alert, for once per window */
};

struct bhv_table {
	struct bhv_cfg cfg;
	struct bhv_proc **buckets;
	uint32_t nbuckets, count;
	struct bhv_proc *lru_head, *lru_tail; /* head: most recently seen */
	uint64_t evicted;
};

/* One finished session, as the agent saw it. Strings are JSON-safe text. */
struct bhv_session {
	uint32_t pid, ppid;
	uint64_t start_ns;
	uint64_t now_ns; /* epoch ns of the session */
	const char *entity_id, *name, *exe, *user, *container_id;
	bool wire;
	int family;
	const uint8_t *daddr;
	uint16_t dport;
	const char *helo; /* NULL: no HELO/EHLO */
	bool pregreet;
	int n_rejected;
	const char *const *rejects; /* refusal texts of this session, JSON-safe */
	const char *const *lists; /* blocklists named in replies */
	int n_lists;
};

void bhv_cfg_default(struct bhv_cfg *c);
int bhv_init(struct bhv_table *t, const struct bhv_cfg *c);
void bhv_free(struct bhv_table *t);
/*
 * Account the session to its process; returns the bhv rules it trips (bits of
 * enum bhv_rule) and the process record (NULL for wire sessions).
 */
uint32_t bhv_observe(struct bhv_table *t, const struct bhv_session *s, struct bhv_proc **out);
/* Sessions and distinct destinations of p inside the window ending at now. */
uint32_t bhv_sessions_in_window(const struct bhv_table *t, const struct bhv_proc *p, uint64_t now_ns,
				uint64_t span_ns);
int bhv_dests_in_window(const struct bhv_table *t, const struct bhv_proc *p, uint64_t now_ns);
/* True once per window per process when score reaches the threshold. */
bool bhv_should_alert(struct bhv_table *t, struct bhv_proc *p, int score, uint64_t now_ns);
/*
 * The table for the next agent (a restart with --pin): every process record,
 * least recently seen first, behind a header naming the record's size. bhv_load
 * takes back what bhv_save wrote (a record of another size is not read: -EPROTO)
 * and returns how many processes it took, or -errno.
 */
int bhv_save(const struct bhv_table *t, FILE *f);
long bhv_load(struct bhv_table *t, FILE *f);
const char *bhv_rule_name(enum bhv_rule r);
int bhv_rule_weight(const struct bhv_cfg *c, enum bhv_rule r);
/* Known MTA executables: postfix's smtp, exim, sendmail, OpenSMTPD, plus cfg->mtas. */
bool bhv_is_mta(const struct bhv_cfg *c, const char *exe);
bool bhv_is_loopback(int family, const uint8_t *addr);

#endif
