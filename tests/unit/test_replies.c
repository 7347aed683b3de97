// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#include <stdint.h>
#include <stdlib.h>

#include "check.h"
#include "replies.h"

/*
 * Every call gets a heap copy of exactly len bytes, no NUL after it, so
 * ASan catches any read past the end.
 */
static int listing(int code, const void *text, size_t len, struct reply_listing *out)
{
	uint8_t *buf = malloc(len ? len : 1);
	int r;

	if (!buf)
		abort();
	memcpy(buf, text, len);
	r = reply_listing(code, len ? buf : NULL, len, out);
	free(buf);
	return r;
}

struct rcase {
	const char *name;
	int code;
	const char *text;
	int want;
	const char *list;
	const char *ip;
};

/* The four replies from the product story's incident, word for word. */
static const struct rcase incident[] = {
	{ "postfix sbl-xbl", 554,
	  "554 5.7.1 Service unavailable; Client host [203.0.113.7] blocked using "
	  "sbl-xbl.spamhaus.org; https://www.spamhaus.org/query/ip/203.0.113.7",
	  1, "spamhaus-sbl-xbl", "203.0.113.7" },
	{ "trend micro ers", 450,
	  "450 4.7.1 Client host rejected: blocked using Trend Micro Email Reputation Service. "
	  "Please see http://www.mail-abuse.com/cgi-bin/lookup?ip_address=203.0.113.7",
	  1, "trendmicro-ers", "203.0.113.7" },
	{ "gmail unsolicited", 550,
	  "550-5.7.1 [203.0.113.7] Our system has detected that this message is likely "
	  "unsolicited mail. To reduce the amount of spam sent to Gmail, this message has been "
	  "blocked.",
	  1, "gmail", "203.0.113.7" },
	{ "cisco poor reputation", 554, "554 5.7.1 Message rejected due to sending MTA's poor reputation",
	  1, "cisco", "" },
};

static const struct rcase positive[] = {
	{ "zen", 554,
	  "5.7.1 Service unavailable; Client host [192.0.2.1] blocked using zen.spamhaus.org; "
	  "https://www.spamhaus.org/query/ip/192.0.2.1",
	  1, "spamhaus-zen", "192.0.2.1" },
	{ "zen uppercase", 554,
	  "5.7.1 SERVICE UNAVAILABLE; CLIENT HOST [192.0.2.2] BLOCKED USING ZEN.SPAMHAUS.ORG", 1,
	  "spamhaus-zen", "192.0.2.2" },
	{ "sbl zone", 550, "Rejected: 192.0.2.3 listed at sbl.spamhaus.org", 1, "spamhaus-sbl",
	  "192.0.2.3" },
	{ "xbl zone", 550, "5.7.1 [192.0.2.4] is listed in xbl.spamhaus.org", 1, "spamhaus-xbl",
	  "192.0.2.4" },
	{ "pbl zone", 554,
	  "5.7.1 Service unavailable; Client host [198.51.100.20] blocked using pbl.spamhaus.org; "
	  "https://www.spamhaus.org/query/ip/198.51.100.20",
	  1, "spamhaus-pbl", "198.51.100.20" },
	{ "spamhaus dqs zone", 554,
	  "5.7.1 Service unavailable; Client host [192.0.2.5] blocked using "
	  "abcdefghijklmnopqrstuvwxyz.zen.dq.spamhaus.net",
	  1, "spamhaus-zen", "192.0.2.5" },
	{ "spamhaus query url", 550,
	  "5.7.1 Rejected: see https://www.spamhaus.org/query/ip/192.0.2.6", 1, "spamhaus",
	  "192.0.2.6" },
	{ "spamhaus sbl url", 550,
	  "5.7.1 Message rejected because of https://www.spamhaus.org/sbl/query/SBL123456", 1,
	  "spamhaus", "" },
	{ "spamhaus lookup url", 554,
	  "Your IP 192.0.2.7 is listed, see https://check.spamhaus.org/lookup", 1, "spamhaus",
	  "192.0.2.7" },
	{ "outlook relays spamhaus", 550,
	  "5.7.1 Service unavailable, Client host [192.0.2.8] blocked using Spamhaus. To request "
	  "removal from this list see https://www.spamhaus.org/query/ip/192.0.2.8 (AS3130)",
	  1, "spamhaus", "192.0.2.8" },
	{ "cbl zone", 554,
	  "5.7.1 Service unavailable; Client host [192.0.2.9] blocked using cbl.abuseat.org; "
	  "Blocked - see http://cbl.abuseat.org/lookup.cgi?ip=192.0.2.9",
	  1, "cbl", "192.0.2.9" },
	{ "cbl url only", 550, "Mail from (192.0.2.10) refused, see https://www.abuseat.org/", 1,
	  "cbl", "192.0.2.10" },
	{ "barracuda zone", 554,
	  "5.7.1 Service unavailable; Client host [192.0.2.11] blocked using "
	  "b.barracudacentral.org; http://www.barracudanetworks.com/reputation/?pr=1&ip=192.0.2.11",
	  1, "barracuda", "192.0.2.11" },
	{ "barracuda hostname in brackets", 554,
	  "Service unavailable; Client host [server1.example.com] blocked using Barracuda "
	  "Reputation; http://bbl.barracudacentral.com/q.cgi?ip=192.0.2.12",
	  1, "barracuda", "192.0.2.12" },
	{ "spamcop", 554,
	  "5.7.1 Service unavailable; Client host [192.0.2.13] blocked using bl.spamcop.net; "
	  "Blocked - see https://www.spamcop.net/bl.shtml?192.0.2.13",
	  1, "spamcop", "192.0.2.13" },
	{ "trend micro rbl+", 550,
	  "Service unavailable; Client host [192.0.2.14] blocked using Trend Micro RBL+. Please "
	  "see http://www.mail-abuse.com/cgi-bin/lookup?ip_address=192.0.2.14",
	  1, "trendmicro-ers", "192.0.2.14" },
	{ "trend maps rbl-plus", 550,
	  "Mail from 192.0.2.15 refused by rbl-plus.mail-abuse.org. Please refer to "
	  "http://mail-abuse.org/rbl+ for an explanation",
	  1, "trendmicro-ers", "192.0.2.15" },
	{ "trend ers zone", 450,
	  "4.7.1 Service unavailable; Client host [192.0.2.16] blocked using ers.trendmicro.com", 1,
	  "trendmicro-ers", "192.0.2.16" },
	{ "microsoft s3140", 550,
	  "5.7.1 Unfortunately, messages from [192.0.2.17] weren't sent. Please contact your "
	  "Internet service provider since part of their network is on our block list (S3140). "
	  "You can also refer your provider to http://mail.live.com/mail/troubleshooting.aspx#errors.",
	  1, "microsoft", "192.0.2.17" },
	{ "microsoft s3150", 550,
	  "5.7.1 Unfortunately, messages from [192.0.2.18] weren't sent. Our systems have detected "
	  "unusual traffic (S3150).",
	  1, "microsoft", "192.0.2.18" },
	{ "microsoft 5.7.606", 550,
	  "5.7.606 Access denied, banned sending IP [192.0.2.19]. To request removal from this "
	  "list please visit https://sender.office.com/ and follow the directions.",
	  1, "microsoft", "192.0.2.19" },
	{ "microsoft banned phrase", 550, "Access denied, banned sending IP [192.0.2.20]", 1,
	  "microsoft", "192.0.2.20" },
	{ "microsoft 5.7.511", 550,
	  "5.7.511 Access denied, banned sender[192.0.2.21]. To request removal from this list, "
	  "forward this message to delist@microsoft.com.",
	  1, "microsoft", "192.0.2.21" },
	{ "gmail 4.7.28 multi-line", 421,
	  "4.7.28 [192.0.2.22] Our system has detected an unusual rate of\n"
	  "421-4.7.28 unsolicited mail originating from your IP address. To protect our\n"
	  "421-4.7.28 users from spam, mail sent from your IP address has been temporarily\n"
	  "421 4.7.28 rate limited. https://support.google.com/mail/?p=UnsolicitedRateLimitError "
	  "- gsmtp",
	  1, "gmail", "192.0.2.22" },
	{ "gmail 4.7.28 terse", 421, "421 4.7.28 Try again later", 1, "gmail", "" },
	{ "gmail low ip reputation", 550,
	  "5.7.1 Our system has detected that this message is likely suspicious due to the very "
	  "low reputation of the sending IP address. https://support.google.com/mail/answer/188131",
	  1, "gmail", "" },
	{ "gmail 4.7.0 low reputation", 421,
	  "4.7.0 [IPv6:2001:db8::25] Our system has detected that this message is suspicious due "
	  "to the very low reputation of the sending domain. - gsmtp",
	  1, "gmail", "2001:db8::25" },
	{ "gmail 5.7.26 unauthenticated", 550,
	  "550-5.7.26 This mail is unauthenticated, which poses a security risk to the sender "
	  "and Gmail users, and has been blocked. The sender must authenticate with at least one "
	  "of SPF or DKIM.",
	  1, "gmail", "" },
	{ "gmail 5.7.26 dmarc", 550,
	  "5.7.26 Unauthenticated email from example.com is not accepted due to domain's DMARC "
	  "policy. - gsmtp",
	  1, "gmail", "" },
	{ "proofpoint", 554,
	  "5.7.0 Blocked - see https://ipcheck.proofpoint.com/?ip=192.0.2.23", 1, "proofpoint",
	  "192.0.2.23" },
	{ "proofpoint name", 550, "Message rejected by Proofpoint Dynamic Reputation", 1,
	  "proofpoint", "" },
	{ "cisco full", 554,
	  "Your access to this mail system has been rejected due to the sending MTA's poor "
	  "reputation. If you believe that this failure is in error, please contact the intended "
	  "recipient via alternate means.",
	  1, "cisco", "" },
	{ "cisco curly apostrophe", 554, "rejected due to the sending MTA\xe2\x80\x99s poor reputation",
	  1, "cisco", "" },
	{ "cisco senderbase", 554, "5.7.1 IP 192.0.2.24 has poor reputation, see senderbase.org", 1,
	  "cisco", "192.0.2.24" },
	{ "cisco talos", 550, "Rejected: check talosintelligence.com/reputation_center for 192.0.2.25",
	  1, "cisco", "192.0.2.25" },
	{ "sorbs", 554,
	  "5.7.1 Service unavailable; Client host [192.0.2.26] blocked using dnsbl.sorbs.net; "
	  "Currently Sending Spam See: http://www.sorbs.net/lookup.shtml?192.0.2.26",
	  1, "sorbs", "192.0.2.26" },
	{ "uceprotect zone", 550,
	  "5.7.1 Service unavailable; Client host [192.0.2.27] blocked using "
	  "dnsbl-1.uceprotect.net; IP 192.0.2.27 is UCEPROTECT-Level 1 listed.",
	  1, "uceprotect", "192.0.2.27" },
	{ "uceprotect name", 550, "Your address 192.0.2.28 is UCEPROTECT-Level 2 listed", 1,
	  "uceprotect", "192.0.2.28" },
	{ "unknown zone as spelled", 554,
	  "5.7.1 Service unavailable; Client host [192.0.2.29] blocked using BL.Example.NET; see "
	  "https://www.spamhaus.org/",
	  1, "bl.example.net", "192.0.2.29" },
	{ "unknown zone then words", 554,
	  "Client host [192.0.2.30] blocked using psbl.surriel.com see http://psbl.org", 1,
	  "psbl.surriel.com", "192.0.2.30" },
	{ "unknown zone trailing dot", 554, "Client host [192.0.2.31] blocked using ix.dnsbl.manitu.net.",
	  1, "ix.dnsbl.manitu.net", "192.0.2.31" },
	{ "unknown service name", 554, "Client host [192.0.2.32] blocked using Foo RBL; go away", 1,
	  "foo rbl", "192.0.2.32" },
	{ "ipv6 bracket", 554,
	  "5.7.1 Service unavailable; Client host [IPv6:2001:db8::1] blocked using zen.spamhaus.org",
	  1, "spamhaus-zen", "2001:db8::1" },
	{ "ipv6 after from", 550, "5.7.1 Mail from 2001:DB8::aB:1 refused, see spamcop.net.", 1,
	  "spamcop", "2001:DB8::aB:1" },
	{ "address keyword", 550, "Your address 198.51.100.1, listed at dnsbl.sorbs.net", 1, "sorbs",
	  "198.51.100.1" },
	{ "bracket beats keyword", 554,
	  "from 192.0.2.40 via [198.51.100.41] blocked using zen.spamhaus.org", 1, "spamhaus-zen",
	  "198.51.100.41" },
	{ "keyword beats bare quad", 550,
	  "see http://x.example/q/192.0.2.42 - mail from 192.0.2.43 denied by spamcop.net", 1,
	  "spamcop", "192.0.2.43" },
	{ "non-ip brackets skipped", 554,
	  "[TSS04] [999.1.1.1] [192.0.2.44] listed by b.barracudacentral.org", 1, "barracuda",
	  "192.0.2.44" },
	{ "trend ers name only", 450, "4.7.1 Blocked by Trend Micro Email Reputation Service", 1,
	  "trendmicro-ers", "" },
	{ "trend rbl+ name only", 550, "Service unavailable; blocked using Trend Micro RBL+", 1,
	  "trendmicro-ers", "" },
	{ "microsoft 5.7.606 code only", 550, "5.7.606 Access denied [192.0.2.34]", 1, "microsoft",
	  "192.0.2.34" },
	{ "gmail by 5.7.1 alone", 550, "550-5.7.1 [192.0.2.35] This message is likely unsolicited mail.",
	  1, "gmail", "192.0.2.35" },
	{ "second blocked using", 554,
	  "Client host [192.0.2.36] blocked using ; and blocked using rbl.example.org", 1,
	  "rbl.example.org", "192.0.2.36" },
	{ "unknown name with blanks", 554, "Client host [192.0.2.37] blocked using Foo  RBL  ; x", 1,
	  "foo  rbl", "192.0.2.37" },
	{ "numeric list is no zone", 554, "Client host [192.0.2.38] blocked using 127.0.0.2; spamcop.net",
	  1, "spamcop", "192.0.2.38" },
	{ "first dnsbl in table order", 554, "listed: abuseat.org, zen.spamhaus.org, sorbs.net", 1,
	  "spamhaus-zen", "" },
};

static const struct rcase negative[] = {
	{ "250 ok", 250, "250 2.0.0 Ok", 0, "", "" },
	{ "user unknown", 550,
	  "550 5.1.1 <x@example.com>: Recipient address rejected: User unknown", 0, "", "" },
	{ "mailbox full", 452, "452 4.2.2 Mailbox full", 0, "", "" },
	{ "generic 421", 421, "421 4.3.2 Service not available, closing transmission channel", 0,
	  "", "" },
	{ "relay denied", 554, "554 5.7.1 Relay access denied", 0, "", "" },
	{ "2xx naming spamhaus", 250,
	  "250 2.0.0 Ok, checked against zen.spamhaus.org: not listed [192.0.2.1]", 0, "", "" },
	{ "354 naming spamcop", 354, "354 End data with <CR><LF>.<CR><LF> spamcop.net", 0, "", "" },
	{ "code 600", 600, "blocked using zen.spamhaus.org", 0, "", "" },
	{ "code 399", 399, "blocked using zen.spamhaus.org", 0, "", "" },
	{ "code negative", -554, "blocked using zen.spamhaus.org", 0, "", "" },
	{ "empty text", 554, "", 0, "", "" },
	{ "spf fail", 550, "550 5.7.1 SPF: 192.0.2.1 is not allowed to send mail from example.com",
	  0, "", "" },
	{ "greylisted", 450, "450 4.2.0 <x@example.com>: Recipient address rejected: Greylisted", 0,
	  "", "" },
	{ "content unsolicited, no gmail mark", 550,
	  "550 5.7.0 Message looks like unsolicited mail", 0, "", "" },
	{ "status code inside a longer one", 550,
	  "550 15.7.606 14.7.28 4.7.28.1 5.7.2611 S31400 XS3140 5.7.5110", 0, "", "" },
	{ "blocked using nothing", 554, "554 Client host [192.0.2.1] blocked using ;", 0, "", "" },
	{ "blocked usingfoo", 554, "554 Client host blocked usingfoo", 0, "", "" },
};

static void run_table(const struct rcase *c, size_t n)
{
	int failed_before = check_case_failed;
	struct reply_listing o;
	size_t i;

	for (i = 0; i < n; i++, c++) {
		check_case_failed = 0;
		memset(&o, 0x5a, sizeof(o)); /* stale bytes must not survive */
		CHECK(listing(c->code, c->text, strlen(c->text), &o) == c->want);
		CHECK(memchr(o.list, 0, sizeof(o.list)) && memchr(o.ip, 0, sizeof(o.ip)));
		if (!check_case_failed) {
			CHECK_STR(o.list, c->list);
			CHECK_STR(o.ip, c->ip);
		}
		if (check_case_failed)
			printf("  in case \"%s\"\n", c->name);
		failed_before |= check_case_failed;
	}
	check_case_failed = failed_before;
}

#define TABLE(t) run_table(t, sizeof(t) / sizeof(t[0]))

static void test_incident(void)
{
	TABLE(incident);
}

static void test_positive(void)
{
	TABLE(positive);
}

static void test_negative(void)
{
	TABLE(negative);
}

/* The raw bytes count, not a C string: matching goes on past a NUL. */
static void test_nul_bytes(void)
{
	static const char t1[] = "5.7.1 Service unavailable\0; Client host [192.0.2.50] blocked "
				 "using\0zen.spamhaus.org; blocked using bl.spamcop.net";
	static const char t2[] = "5.7.1 [192.0.2.51\0] listed by uceprotect.net, mail from 192.0.2.52";
	static const char t3[] = "5.7.1 [::1\0:2] blocked using dnsbl.sorbs.net";
	static const char t4[] = "spamcop.net\0";
	struct reply_listing o;

	/* The first "blocked using" is followed by NUL, not a blank: the second one counts. */
	CHECK(listing(554, t1, sizeof(t1) - 1, &o) == 1);
	CHECK_STR(o.list, "spamcop");
	CHECK_STR(o.ip, "192.0.2.50");
	CHECK(listing(554, t2, sizeof(t2) - 1, &o) == 1);
	CHECK_STR(o.list, "uceprotect");
	CHECK_STR(o.ip, "192.0.2.52");
	/* inet_pton() would stop at the NUL and accept "::1". */
	CHECK(listing(554, t3, sizeof(t3) - 1, &o) == 1);
	CHECK_STR(o.list, "sorbs");
	CHECK_STR(o.ip, "");
	/* len cuts the text: what lies beyond must not be seen. */
	CHECK(listing(554, t4, 7, &o) == 0);
	CHECK(listing(554, t4, 11, &o) == 1);
	CHECK_STR(o.list, "spamcop");
}

static void test_high_bytes(void)
{
	static const char t1[] = "\xff\xfe 5.7.1 \xff[\xff" "192.0.2.60] \xc0\xaf blocked using "
				 "\xff" "zen.spamhaus.org\xff\xff [192.0.2.61]\xff";
	static const char t2[] = "\xff\xff\xff\xff\xff\xff\xff\xff";
	static const char t3[] = "5.7.1 SPAMHAUS\xd0\xb0 \xc3\x89 192.0.2.62\xff";
	struct reply_listing o;

	/* 0xff right after "using " ends the name before it starts: fall back to the table. */
	CHECK(listing(554, t1, sizeof(t1) - 1, &o) == 1);
	CHECK_STR(o.list, "spamhaus-zen");
	CHECK_STR(o.ip, "192.0.2.61");
	CHECK(listing(554, t2, sizeof(t2) - 1, &o) == 0);
	CHECK_STR(o.list, "");
	CHECK(listing(554, t3, sizeof(t3) - 1, &o) == 1);
	CHECK_STR(o.list, "spamhaus");
	CHECK_STR(o.ip, "192.0.2.62");
}

/* 64 kB: the match at the very end is found, floods of near-misses stay linear and empty. */
static void test_64k(void)
{
	static const char tail[] = "blocked using bl.spamcop.net [192.0.2.70]";
	const size_t n = 65536;
	struct reply_listing o;
	char *t = malloc(n);
	size_t i;

	if (!t)
		abort();
	memset(t, 'a', n);
	memcpy(t + n - strlen(tail), tail, strlen(tail));
	CHECK(listing(554, t, n, &o) == 1);
	CHECK_STR(o.list, "spamcop");
	CHECK_STR(o.ip, "192.0.2.70");

	memset(t, '[', n);
	memcpy(t, "spamcop.net", 11);
	CHECK(listing(554, t, n, &o) == 1);
	CHECK_STR(o.ip, "");

	for (i = 0; i < n; i++)
		t[i] = "1.2:"[i % 4];
	memcpy(t, "proofpoint (", 12);
	CHECK(listing(554, t, n, &o) == 1);
	CHECK_STR(o.list, "proofpoint");
	CHECK_STR(o.ip, "");

	/* One long "blocked using" name: cut to fit, lowercased, NUL-terminated. */
	memset(t, 'A', n);
	memcpy(t, "blocked using ", 14);
	t[200] = '.';
	CHECK(listing(554, t, n, &o) == 1);
	CHECK(strlen(o.list) == REPLY_LIST_LEN - 1);
	CHECK(strspn(o.list, "a") == REPLY_LIST_LEN - 1);
	free(t);
}

static void test_bad_addresses(void)
{
	static const struct {
		const char *text;
		const char *ip;
	} c[] = {
		{ "spamhaus [999.1.1.1]", "" },
		{ "spamhaus [256.0.0.1] from 1.2.3.256 (300.1.1.1) 1.2.3", "" },
		{ "spamhaus [192.0.2.1", "192.0.2.1" }, /* unterminated: still a bare quad */
		{ "spamhaus [192.0.2.", "" },
		{ "spamhaus [", "" },
		{ "spamhaus [IPv6:", "" },
		{ "spamhaus [IPv6:2001:db8::1", "" },
		{ "spamhaus [IPv6:2001:db8::1::2]", "" },
		{ "spamhaus [IPv6:]", "" },
		{ "spamhaus []", "" },
		{ "spamhaus 1.2.3.4.5 v1.2.3.4 1.2.3.4x 01234.1.1.1", "" },
		{ "spamhaus [1111:2222:3333:4444:5555:6666:7777:8888:9999]", "" },
		{ "spamhaus from 0:0:0:0:0:0:0:0:0:0:0:0:0:0:0:0:0:0:0:0:0:0:0:0:0:1", "" },
		{ "spamhaus [0:0:0:0:0:ffff:255.255.255.255]", "0:0:0:0:0:ffff:255.255.255.255" },
		{ "spamhaus fromage 192.0.2.1x ip192.0.2.2", "" },
		{ "spamhaus ip=192.0.2.3.", "192.0.2.3" },
		{ "spamhaus 0.0.0.0", "0.0.0.0" },
		{ "spamhaus 010.0.0.1 [192.0.2.01]", "" },
		{ "spamhaus http://x/198.51.100.1 (192.0.2.1)", "192.0.2.1" },
		{ "spamhaus 198.51.100.2 ship 192.0.2.2", "198.51.100.2" },
		{ "spamhaus 198.51.100.3 from 192.0.2.3.", "192.0.2.3" },
		{ "spamhaus 198.51.100.4 ip=192.0.2.4", "192.0.2.4" },
		{ "spamhaus from 192.0.2.5x", "" },
		{ "spamhaus see 192.0.2.6.", "192.0.2.6" },
	};
	struct reply_listing o;
	size_t i;

	for (i = 0; i < sizeof(c) / sizeof(c[0]); i++) {
		CHECK(listing(550, c[i].text, strlen(c[i].text), &o) == 1);
		CHECK_STR(o.ip, c[i].ip);
		if (strcmp(o.ip, c[i].ip))
			printf("  in \"%s\"\n", c[i].text);
	}
}

/* Bare "[" and "[IPv6:" alone, and NULL: no listing, no crash, no stale output. */
static void test_degenerate(void)
{
	struct reply_listing o;

	CHECK(listing(554, "[", 1, &o) == 0);
	CHECK(listing(554, "[IPv6:", 6, &o) == 0);
	CHECK(listing(554, "(", 1, &o) == 0);
	CHECK(listing(554, "blocked using", 13, &o) == 0);
	CHECK(listing(554, "blocked using ", 14, &o) == 0);
	memset(&o, 0x5a, sizeof(o));
	CHECK(reply_listing(554, NULL, 0, &o) == 0);
	CHECK_STR(o.list, "");
	CHECK_STR(o.ip, "");
	CHECK(reply_listing(554, NULL, 100, &o) == 0);
	CHECK(reply_listing(554, (const uint8_t *)"spamcop.net", 11, NULL) == 0);
}

int main(void)
{
	RUN(test_incident);
	RUN(test_positive);
	RUN(test_negative);
	RUN(test_nul_bytes);
	RUN(test_high_bytes);
	RUN(test_64k);
	RUN(test_bad_addresses);
	RUN(test_degenerate);
	CHECK_EXIT();
}
