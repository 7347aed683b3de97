/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * From a finished session to evidence: the parsed dialogue, the HELO rules, the
 * replies that name a blocklist, the process's behaviour, a 0-100 score and
 * whether this is the moment to alert. See docs/rules.md.
 */
#ifndef SMTPWATCH_EVIDENCE_H
#define SMTPWATCH_EVIDENCE_H
#include <stdbool.h>
#include <stdint.h>
#include "behaviour.h"
#include "helo_rules.h"
#include "replies.h"
#include "session.h"
#include "smtp.h"

#define SW_MAX_LISTINGS 4
#define SW_MAX_HOST_NAMES 8
#define SW_MAX_HOST_ADDRS 32

struct sw_evidence_cfg {
	struct bhv_cfg bhv;
	int helo_weight[HELO_RULE_MAX];
};

struct sw_evidence_ctx {
	struct sw_evidence_cfg cfg;
	struct bhv_table bhv;
	char names[SW_MAX_HOST_NAMES][256];
	const char *name_ptrs[SW_MAX_HOST_NAMES];
	uint8_t addrs[SW_MAX_HOST_ADDRS][16];
	int families[SW_MAX_HOST_ADDRS];
	struct helo_host host;
	uint64_t alerts;
};

struct sw_evidence {
	struct smtp_dialogue d;
	uint32_t helo_rules; /* bits of enum helo_rule */
	uint32_t bhv_rules;  /* bits of enum bhv_rule */
	int score;
	struct reply_listing listings[SW_MAX_LISTINGS];
	int n_listings;
	int n_rejected;
	bool pregreet;
	struct bhv_proc *proc; /* NULL for unattributed sessions */
	bool alert;	       /* first session of this window over the threshold */
};

void sw_evidence_cfg_default(struct sw_evidence_cfg *c);
/* Set a rule's weight by name ("HELO_BARE_IP", "FANOUT"); -ENOENT if unknown. */
int sw_evidence_set_weight(struct sw_evidence_cfg *c, const char *rule, int weight);
int sw_evidence_init(struct sw_evidence_ctx *x, const struct sw_evidence_cfg *c);
void sw_evidence_free(struct sw_evidence_ctx *x);
void sw_evidence_assess(struct sw_evidence_ctx *x, const struct sw_session *s, uint64_t epoch_ns,
			struct sw_evidence *e);
/* Calls fn for each rule name set in e, HELO rules first. */
void sw_evidence_rules(const struct sw_evidence *e, void (*fn)(const char *name, void *ctx),
		       void *ctx);

#endif
