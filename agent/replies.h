/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Blocklist and reputation refusals in SMTP server replies. A rejected
 * session is far more useful to the reader as "listed on spamhaus-zen as
 * 203.0.113.7" than as 300 bytes of reply text in a dozen vendor dialects.
 */
#ifndef SMTPWATCH_REPLIES_H
#define SMTPWATCH_REPLIES_H
#include <stddef.h>
#include <stdint.h>

#define REPLY_LIST_LEN 48

struct reply_listing {
	/*
	 * Short stable name: "spamhaus", "spamhaus-zen", "spamhaus-sbl",
	 * "spamhaus-xbl", "spamhaus-pbl", "spamhaus-sbl-xbl", "cbl",
	 * "barracuda", "spamcop", "trendmicro-ers", "microsoft", "gmail",
	 * "proofpoint", "cisco", "sorbs", "uceprotect"; for Postfix's
	 * "blocked using LIST" with any other LIST, that LIST lowercased
	 * (cut to fit). Only [a-z0-9 ._+-] in the last case.
	 */
	char list[REPLY_LIST_LEN];
	char ip[64]; /* listed address named in the text, IPv4 or IPv6, "" if none */
};

/*
 * code: the reply's 3-digit code; text: raw bytes of the reply text (lines of
 * a multi-line reply may be joined by '\n'), not NUL-terminated, len may be 0.
 * Returns 1 and fills *out when the reply names a blocklist or a reputation
 * refusal, else 0 with *out emptied. Only 4xx and 5xx replies qualify.
 * Never reads outside text[0..len).
 */
int reply_listing(int code, const uint8_t *text, size_t len, struct reply_listing *out);

#endif
