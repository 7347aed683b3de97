/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * HELO/EHLO argument classification: the checks receivers and blocklists
 * (Spamhaus CBL, Postfix, SpamAssassin, Haraka) apply to a client's HELO,
 * so the agent can say why a process would get its office listed.
 * Pure C: no I/O, no allocation. docs/rules.md describes every rule.
 */
#ifndef SMTPWATCH_HELO_RULES_H
#define SMTPWATCH_HELO_RULES_H
#include <stddef.h>
#include <stdint.h>

enum helo_rule {
	HELO_MISSING,
	HELO_BARE_IP,
	HELO_LITERAL_BAD,
	HELO_LITERAL_MISMATCH,
	HELO_NO_DOT,
	HELO_LOCALHOST,
	HELO_BAD_CHARS,
	HELO_LAN_TLD,
	HELO_GENERIC_WORD,
	HELO_DYNAMIC,
	HELO_IS_PEER,
	HELO_FORGED_BIGCO,
	HELO_NOT_SELF,
	HELO_RANDOM,
	HELO_RULE_MAX
};
/* HELO_VARIES is per process and lives elsewhere; do not implement it here. */

/* What the sending host is. */
struct helo_host {
	const char *const *names; /* its host names (FQDN and short), may be 0 */
	int n_names;
	/* its addresses: AF_INET in the first 4 bytes, or AF_INET6 */
	const uint8_t (*addrs)[16];
	const int *addr_families;
	int n_addrs;
};

/* The destination. */
struct helo_peer {
	int family; /* AF_INET (first 4 bytes of addr) or AF_INET6; 0: unknown */
	uint8_t addr[16];
	const char *name; /* may be NULL */
};

/*
 * Classify one HELO/EHLO argument: raw bytes exactly as sent, len may be 0;
 * helo == NULL means no HELO was sent at all but mail commands were.
 * Overwrites *rules with bit (1u << rule) for every rule tripped.
 * host may be NULL (nothing known about the sender), peer may be NULL.
 * Returns 0, or -EINVAL on a NULL rules, a NULL helo with a non-zero len,
 * or a host whose counts are negative or whose arrays are missing.
 */
int helo_classify(const uint8_t *helo, size_t len, const struct helo_host *host,
		  const struct helo_peer *peer, uint32_t *rules);

/* "HELO_BARE_IP", ... exactly the enum names; NULL when out of range. */
const char *helo_rule_name(enum helo_rule r);
/* Default weight 0..100 of each rule; -EINVAL when out of range. */
int helo_rule_weight(enum helo_rule r);
/* Sum of the weights of the bits set, capped at 100; bits >= HELO_RULE_MAX are ignored. */
int helo_score(uint32_t rules);

#endif
