// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/socket.h>

#include "check.h"
#include "helo_rules.h"

#define R(x) (1u << HELO_##x)
#define ALL_RULES ((1u << HELO_RULE_MAX) - 1)

/* The sending host: mail.example.com, 192.0.2.10 and 2001:db8::10. */
static const char *const names[] = { "mail.example.com", "mail" };
static const uint8_t addrs[][16] = {
	{ 192, 0, 2, 10 },
	{ 0x20, 0x01, 0x0d, 0xb8, [15] = 0x10 },
};
static const int fams[] = { AF_INET, AF_INET6 };
static const struct helo_host host = {
	.names = names,
	.n_names = 2,
	.addrs = addrs,
	.addr_families = fams,
	.n_addrs = 2,
};
/* The destination: mx.example.net at 198.51.100.7. */
static const struct helo_peer peer = {
	.family = AF_INET,
	.addr = { 198, 51, 100, 7 },
	.name = "mx.example.net",
};

enum ctx {
	FULL, /* host and peer above */
	NONE, /* nothing known about either: NOT_SELF, MISMATCH, IS_PEER cannot trip */
};

static int classify(const char *helo, size_t len, enum ctx ctx, uint32_t *rules)
{
	return helo_classify((const uint8_t *)helo, len, ctx == FULL ? &host : NULL,
			     ctx == FULL ? &peer : NULL, rules);
}

/* Rule names of a bitmask, for readable failures. */
static const char *rule_list(uint32_t rules)
{
	static char buf[512];
	size_t off = 0;
	int r;

	buf[0] = '\0';
	for (r = 0; r < HELO_RULE_MAX; r++)
		if (rules & (1u << r))
			off += snprintf(buf + off, sizeof(buf) - off, "%s%s", off ? "," : "",
					helo_rule_name(r));
	return buf;
}

static const struct helo_case {
	const char *helo;
	enum ctx ctx;
	uint32_t want;
} cases[] = {
	/* What well-behaved mailers say trips nothing. */
	{ "mail.example.com", FULL, 0 },
	{ "MAIL.Example.COM.", FULL, 0 },
	{ "[192.0.2.10]", FULL, 0 },
	{ "[IPv6:2001:db8::10]", FULL, 0 },
	{ "[ipv6:2001:DB8:0:0:0:0:0:10]", FULL, 0 },
	{ "[IPv6:::ffff:192.0.2.10]", FULL, 0 },
	{ "smtp-out-01.example.net", NONE, 0 },
	{ "mx1.mailhost.co.uk", NONE, 0 },
	{ "mail.deutschland.de", NONE, 0 },
	{ "smtp.example.com", NONE, 0 },
	/* HELO_BARE_IP */
	{ "192.0.2.1", FULL, R(BARE_IP) },
	{ "2001:db8::1", FULL, R(BARE_IP) },
	{ "192.0.2.256", FULL, R(LAN_TLD) },
	/* HELO_LITERAL_BAD */
	{ "[192.0.2.1", FULL, R(LITERAL_BAD) },
	{ "[1.2.3]", FULL, R(LITERAL_BAD) },
	{ "[300.1.1.1]", FULL, R(LITERAL_BAD) },
	{ "[IPv6:2001:db8::1::2]", FULL, R(LITERAL_BAD) },
	{ "[IPv6:1:2:3:4:5:6:7:8:9]", FULL, R(LITERAL_BAD) },
	{ "[IPv6:fe80::1%eth0]", FULL, R(LITERAL_BAD) },
	{ "[2001:db8::10]", FULL, R(LITERAL_BAD) },
	{ "[mail.example.com]", FULL, R(LITERAL_BAD) },
	{ "[192.0.2.10]x", FULL, R(LITERAL_BAD) },
	/* HELO_LITERAL_MISMATCH */
	{ "[192.0.2.11]", FULL, R(LITERAL_MISMATCH) },
	{ "[IPv6:1:2:3:4:5:6:7:8]", FULL, R(LITERAL_MISMATCH) },
	{ "[192.0.2.11]", NONE, 0 },
	/* HELO_NO_DOT */
	{ "fileserver7", FULL, R(NO_DOT) },
	{ "mail", FULL, R(NO_DOT) | R(GENERIC_WORD) },
	/* HELO_LOCALHOST */
	{ "localhost", FULL, R(NO_DOT) | R(LOCALHOST) },
	{ "LOCALHOST.localdomain", FULL, R(LOCALHOST) | R(LAN_TLD) },
	{ "[127.0.0.1]", FULL, R(LOCALHOST) | R(LITERAL_MISMATCH) },
	{ "[127.1.2.3]", NONE, R(LOCALHOST) },
	{ "[IPv6:::1]", NONE, R(LOCALHOST) },
	{ "127.0.0.1", FULL, R(BARE_IP) | R(LOCALHOST) },
	{ "::1", NONE, R(BARE_IP) | R(LOCALHOST) },
	{ "localhost.example.com", NONE, 0 },
	/* HELO_BAD_CHARS */
	{ "my_host.example.com", FULL, R(BAD_CHARS) },
	{ "mail..example.com", FULL, R(BAD_CHARS) },
	{ ".example.com", FULL, R(BAD_CHARS) },
	{ "mail.example.com..", FULL, R(BAD_CHARS) },
	{ "-mail.example.com", FULL, R(BAD_CHARS) },
	{ "mail-.example.com", FULL, R(BAD_CHARS) },
	{ "mail.example.com ", FULL, R(BAD_CHARS) },
	{ "mail.example.com\r", FULL, R(BAD_CHARS) },
	{ "m\xc3\xa9l.example.com", FULL, R(BAD_CHARS) },
	{ "\"mail\".example.com", FULL, R(BAD_CHARS) },
	{ "mail.example.com:25", FULL, R(BAD_CHARS) },
	/* HELO_LAN_TLD */
	{ "printer.lan", FULL, R(LAN_TLD) },
	{ "files.home.arpa", FULL, R(LAN_TLD) },
	{ "box.zz", NONE, R(LAN_TLD) },
	{ "a.b.123", NONE, R(LAN_TLD) },
	{ "srv1.corp", NONE, R(LAN_TLD) },
	{ "box.de", NONE, 0 },
	{ "host.example.test", NONE, 0 },
	{ "mail.test.example", NONE, 0 },
	{ "foo.invalid", NONE, 0 },
	{ "host.xn--p1ai", NONE, 0 },
	/* HELO_GENERIC_WORD */
	{ "DESKTOP-AB12CD3", FULL, R(NO_DOT) | R(GENERIC_WORD) },
	{ "WIN-3VJ8N4K2H1L", FULL, R(NO_DOT) | R(GENERIC_WORD) | R(RANDOM) },
	{ "USER-PC", FULL, R(NO_DOT) | R(GENERIC_WORD) },
	{ "ylmf-pc", FULL, R(NO_DOT) | R(GENERIC_WORD) },
	{ "pc.local", FULL, R(LAN_TLD) | R(GENERIC_WORD) },
	{ "Johns-MacBook-Pro.local", FULL, R(LAN_TLD) | R(GENERIC_WORD) },
	{ "desktop-ab12cd3.example.com", NONE, R(GENERIC_WORD) },
	{ "windows.example.com", NONE, 0 },
	/* HELO_DYNAMIC */
	{ "host-192-0-2-1.isp.example.net", NONE, R(DYNAMIC) },
	{ "c-98-207-1-2.hsd1.ca.comcast.net", NONE, R(DYNAMIC) },
	{ "1.2.0.192.in-addr.arpa", NONE, R(DYNAMIC) },
	{ "adsl-pool.isp.example.net", NONE, R(DYNAMIC) },
	{ "dhcp17.example.net", NONE, R(DYNAMIC) },
	{ "host098207001002.isp.example.net", NONE, R(DYNAMIC) },
	{ "dynamics.example.com", NONE, 0 },
	{ "mx-1-2-3.example.net", NONE, 0 },
	/* HELO_IS_PEER */
	{ "198.51.100.7", FULL, R(BARE_IP) | R(IS_PEER) },
	{ "[198.51.100.7]", FULL, R(IS_PEER) | R(LITERAL_MISMATCH) },
	{ "MX.example.net.", FULL, R(IS_PEER) | R(NOT_SELF) },
	{ "mx.example.net", NONE, 0 },
	/* HELO_FORGED_BIGCO */
	{ "gmail.com", FULL, R(FORGED_BIGCO) | R(NOT_SELF) },
	{ "Yahoo.CO.UK", NONE, R(FORGED_BIGCO) },
	{ "mail.gmail.com", NONE, 0 },
	/* HELO_NOT_SELF */
	{ "other.example.org", FULL, R(NOT_SELF) },
	{ "mail.example.org", FULL, R(NOT_SELF) },
	/* HELO_RANDOM */
	{ "xkqzvbnmpl.com", NONE, R(RANDOM) },
	{ "XKQZVBNMPL.example.com", NONE, R(RANDOM) },
	{ "a8f3k2j9.example.com", NONE, R(RANDOM) },
	{ "qwrtpsdfgh", NONE, R(NO_DOT) | R(RANDOM) },
	{ "mxbackup.example.com", NONE, 0 },
	{ "mailserver.example.com", NONE, 0 },
	{ "xn--bcher-kva.example", NONE, 0 },
};

static void test_table(void)
{
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const struct helo_case *c = &cases[i];
		uint32_t got = ~0u;
		char want[512];

		CHECK(classify(c->helo, strlen(c->helo), c->ctx, &got) == 0);
		if (got != c->want) {
			snprintf(want, sizeof(want), "%s", rule_list(c->want));
			printf("  \"%s\" (%s): got [%s], want [%s]\n", c->helo,
			       c->ctx == FULL ? "full" : "none", rule_list(got), want);
			check_case_failed = 1;
		}
	}
}

static void test_missing(void)
{
	uint32_t got = ~0u;

	CHECK(helo_classify(NULL, 0, &host, &peer, &got) == 0);
	CHECK(got == R(MISSING));
	CHECK(helo_classify(NULL, 0, NULL, NULL, &got) == 0);
	CHECK(got == R(MISSING));
	/* An empty argument is a HELO that was sent: not MISSING. */
	CHECK(helo_classify((const uint8_t *)"", 0, &host, &peer, &got) == 0);
	CHECK(got == R(BAD_CHARS));
}

static void test_einval(void)
{
	struct helo_host bad = host;
	uint32_t got = 0x1234;

	CHECK(helo_classify((const uint8_t *)"x", 1, &host, &peer, NULL) == -EINVAL);
	CHECK(helo_classify(NULL, 3, &host, &peer, &got) == -EINVAL);
	bad.n_names = -1;
	CHECK(helo_classify((const uint8_t *)"x", 1, &bad, &peer, &got) == -EINVAL);
	bad = host;
	bad.names = NULL;
	CHECK(helo_classify((const uint8_t *)"x", 1, &bad, &peer, &got) == -EINVAL);
	bad = host;
	bad.addr_families = NULL;
	CHECK(helo_classify((const uint8_t *)"x", 1, &bad, &peer, &got) == -EINVAL);
	CHECK(got == 0x1234); /* untouched on error */
}

/* Label and name length limits: 63 and 255 (the trailing dot not counted). */
static void test_lengths(void)
{
	char buf[400];
	uint32_t got;

	memset(buf, 'a', 63);
	strcpy(buf + 63, ".com");
	CHECK(classify(buf, strlen(buf), NONE, &got) == 0 && got == 0);
	memset(buf, 'a', 64);
	strcpy(buf + 64, ".com");
	CHECK(classify(buf, strlen(buf), NONE, &got) == 0 && got == R(BAD_CHARS));

	/* 4 x 63 + 3 dots = 255, then one more label of one letter: 257 */
	memset(buf, 'a', sizeof(buf));
	buf[63] = buf[127] = buf[191] = '.';
	strcpy(buf + 255, ".");
	CHECK(classify(buf, 256, NONE, &got) == 0);
	CHECK(got == R(LAN_TLD)); /* "aaa...a" is no TLD, but the length is fine */
	strcpy(buf + 255, ".de");
	CHECK(classify(buf, 258, NONE, &got) == 0 && got == R(BAD_CHARS));
}

/* The host's names: short name, trailing dots, case; no names at all. */
static void test_self(void)
{
	static const char *const short_only[] = { "MAIL" };
	static const char *const dotted[] = { NULL, "", "Mail.Example.Com." };
	static const char *const google[] = { "gmail.com" };
	struct helo_host h = { .names = short_only, .n_names = 1 };
	uint32_t got;

	CHECK(helo_classify((const uint8_t *)"mail.example.com", 16, &h, NULL, &got) == 0);
	CHECK(got == 0);
	CHECK(helo_classify((const uint8_t *)"smtp.example.com", 16, &h, NULL, &got) == 0);
	CHECK(got == R(NOT_SELF));
	h.names = dotted;
	h.n_names = 3;
	CHECK(helo_classify((const uint8_t *)"mail.example.com", 16, &h, NULL, &got) == 0);
	CHECK(got == 0);
	/* Google's own hosts may say gmail.com. */
	h.names = google;
	h.n_names = 1;
	CHECK(helo_classify((const uint8_t *)"GMAIL.com", 9, &h, NULL, &got) == 0);
	CHECK(got == 0);
}

static void test_peer_v6(void)
{
	struct helo_peer p6 = {
		.family = AF_INET6,
		.addr = { 0x20, 0x01, 0x0d, 0xb8, [15] = 0x25 },
	};
	struct helo_peer mapped = {
		.family = AF_INET6,
		.addr = { [10] = 0xff, [11] = 0xff, 198, 51, 100, 7 },
	};
	uint32_t got;

	CHECK(helo_classify((const uint8_t *)"2001:DB8:0::25", 14, NULL, &p6, &got) == 0);
	CHECK(got == (R(BARE_IP) | R(IS_PEER)));
	CHECK(helo_classify((const uint8_t *)"[IPv6:2001:db8::25]", 19, NULL, &p6, &got) == 0);
	CHECK(got == R(IS_PEER));
	/* An IPv4-mapped destination is the IPv4 address it maps. */
	CHECK(helo_classify((const uint8_t *)"[198.51.100.7]", 14, NULL, &mapped, &got) == 0);
	CHECK(got == R(IS_PEER));
	CHECK(helo_classify((const uint8_t *)"198.51.100.8", 12, NULL, &mapped, &got) == 0);
	CHECK(got == R(BARE_IP));
}

/* Raw network bytes: never trusted, never a crash, and only known rules. */
static void test_hostile(void)
{
	static const char nul[] = "mail\0.example.com";
	static const char esc[] = "\x1b[31mred\x1b[0m.example.com";
	static const uint8_t ff[] = { 0xff, 0xfe, '.', 'c', 'o', 'm' };
	static uint8_t junk[10240];
	uint32_t got, seed = 12345;
	size_t i;
	int k;

	CHECK(classify(nul, sizeof(nul) - 1, FULL, &got) == 0 && got == R(BAD_CHARS));
	CHECK(classify(esc, strlen(esc), FULL, &got) == 0 && (got & R(BAD_CHARS)));
	CHECK(helo_classify(ff, sizeof(ff), &host, &peer, &got) == 0 && (got & R(BAD_CHARS)));
	CHECK(helo_classify((const uint8_t *)"\0", 1, &host, &peer, &got) == 0);
	CHECK(got == (R(BAD_CHARS) | R(NO_DOT)));

	for (k = 0; k < 6; k++) {
		for (i = 0; i < sizeof(junk); i++) {
			seed = seed * 1103515245 + 12345;
			switch (k) {
			case 0: /* any byte */
				junk[i] = seed >> 16;
				break;
			case 1: /* a long dotted name */
				junk[i] = i % 2 ? '.' : 'a';
				break;
			case 2: /* digits and separators: embedded-IP scan */
				junk[i] = "0123456789.-"[(seed >> 16) % 12];
				break;
			case 3: /* an endless literal */
				junk[i] = i ? "0123456789abcdef:."[(seed >> 16) % 18] : '[';
				break;
			case 4: /* consonants without end */
				junk[i] = "bcdfghjklmnpqrstvwxz"[(seed >> 16) % 20];
				break;
			default: /* an endless IPv6 text */
				junk[i] = "0123456789abcdef:"[(seed >> 16) % 17];
				break;
			}
		}
		got = ~0u;
		CHECK(helo_classify(junk, sizeof(junk), &host, &peer, &got) == 0);
		CHECK((got & ~ALL_RULES) == 0);
		CHECK(helo_classify(junk, sizeof(junk), NULL, NULL, &got) == 0);
		CHECK((got & ~ALL_RULES) == 0);
		/* every prefix too, so every length path is walked */
		for (i = 0; i < 300; i++)
			CHECK(helo_classify(junk, i, &host, &peer, &got) == 0);
	}
}

static void test_names_weights(void)
{
	static const char *const want[HELO_RULE_MAX] = {
		"HELO_MISSING",	      "HELO_BARE_IP",	 "HELO_LITERAL_BAD", "HELO_LITERAL_MISMATCH",
		"HELO_NO_DOT",	      "HELO_LOCALHOST",	 "HELO_BAD_CHARS",   "HELO_LAN_TLD",
		"HELO_GENERIC_WORD", "HELO_DYNAMIC",	 "HELO_IS_PEER",     "HELO_FORGED_BIGCO",
		"HELO_NOT_SELF",      "HELO_RANDOM",
	};
	int r;

	for (r = 0; r < HELO_RULE_MAX; r++) {
		CHECK_STR(helo_rule_name(r), want[r]);
		CHECK(helo_rule_weight(r) > 0 && helo_rule_weight(r) <= 100);
		CHECK(helo_score(1u << r) == helo_rule_weight(r));
	}
	CHECK(helo_rule_name(HELO_RULE_MAX) == NULL);
	CHECK(helo_rule_name((enum helo_rule)-1) == NULL);
	CHECK(helo_rule_weight(HELO_RULE_MAX) == -EINVAL);
	CHECK(helo_rule_weight(HELO_FORGED_BIGCO) == 70);
	CHECK(helo_rule_weight(HELO_NOT_SELF) == 10);
}

static void test_score(void)
{
	CHECK(helo_score(0) == 0);
	CHECK(helo_score(R(DYNAMIC) | R(NOT_SELF)) == 35);
	CHECK(helo_score(R(NO_DOT) | R(LOCALHOST)) == 80);
	CHECK(helo_score(R(BARE_IP) | R(IS_PEER)) == 100);
	CHECK(helo_score(R(FORGED_BIGCO) | R(IS_PEER)) == 100); /* 130, capped */
	CHECK(helo_score(ALL_RULES) == 100);
	CHECK(helo_score(~0u) == 100);
	/* bits past HELO_RULE_MAX (HELO_VARIES lives elsewhere) weigh nothing */
	CHECK(helo_score(1u << HELO_RULE_MAX) == 0);
	CHECK(helo_score(1u << 31 | R(NOT_SELF)) == 10);
}

int main(void)
{
	RUN(test_table);
	RUN(test_missing);
	RUN(test_einval);
	RUN(test_lengths);
	RUN(test_self);
	RUN(test_peer_v6);
	RUN(test_hostile);
	RUN(test_names_weights);
	RUN(test_score);
	CHECK_EXIT();
}
