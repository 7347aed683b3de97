/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>

#include "check.h"
#include "smtp.h"

static char sbuf[16384];

/* smtp_str as a C string for CHECK_STR; NULL when unset. */
static const char *S(struct smtp_str s)
{
	if (!s.p || s.len >= sizeof(sbuf))
		return s.p ? "(too long)" : NULL;
	memcpy(sbuf, s.p, s.len);
	sbuf[s.len] = '\0';
	return sbuf;
}

static int parse(const char *c, const char *s, struct smtp_dialogue *d)
{
	return smtp_parse((const uint8_t *)c, strlen(c), (const uint8_t *)s, strlen(s), d);
}

static void test_ehlo_dialogue(void)
{
	struct smtp_dialogue d;
	const char *c = "EHLO mail.example.org\r\n"
			"MAIL FROM:<a@example.org> SIZE=100\r\n"
			"RCPT TO:<b@example.net>\r\n"
			"DATA\r\n"
			"Subject: hi\r\n\r\nRCPT TO:<in@body>\r\n..stuffed\r\n"
			".\r\n"
			"QUIT\r\n";
	const char *s = "220 mx.example.net ESMTP\r\n"
			"250-mx.example.net Hello\r\n250-PIPELINING\r\n250-SIZE 1000\r\n250 8BITMIME\r\n"
			"250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n354 End data\r\n250 2.0.0 queued\r\n221 Bye\r\n";
	static const int codes[] = { 250, 250, 250, 354, 250, 221 };
	int i;

	CHECK(parse(c, s, &d) == 0);
	CHECK_STR(d.helo_verb, "EHLO");
	CHECK_STR(S(d.helo), "mail.example.org");
	CHECK(d.helo_count == 1);
	CHECK_STR(S(d.mail_from), "<a@example.org> SIZE=100");
	CHECK(d.n_rcpt == 1);
	CHECK_STR(S(d.rcpt_to[0]), "<b@example.net>");
	CHECK(d.banner_code == 220);
	CHECK_STR(S(d.banner), "mx.example.net ESMTP");
	CHECK(d.n_replies == 6);
	for (i = 0; i < 6 && i < d.n_replies; i++)
		CHECK(d.replies[i].code == codes[i]);
	CHECK_STR(S(d.replies[0].text), "mx.example.net Hello");
	CHECK_STR(S(d.replies[5].text), "Bye");
	CHECK(d.n_commands == 5);
	CHECK(!d.starttls && !d.tls && !d.mail_before_helo && !d.not_smtp);
	CHECK(!d.client_partial && !d.server_partial);
}

static void test_helo(void)
{
	struct smtp_dialogue d;

	CHECK(parse("HELO client\r\nMAIL FROM: <x@y>\r\nRCPT TO:  <z@w> NOTIFY=NEVER\r\n",
		    "220 hi\r\n250 hello\r\n250 ok\r\n250 ok\r\n", &d) == 0);
	CHECK_STR(d.helo_verb, "HELO");
	CHECK_STR(S(d.helo), "client");
	CHECK_STR(S(d.mail_from), "<x@y>");
	CHECK(d.n_rcpt == 1);
	CHECK_STR(S(d.rcpt_to[0]), "<z@w> NOTIFY=NEVER");
	CHECK(d.n_commands == 3);
	CHECK(d.n_replies == 3);
	CHECK_STR(S(d.banner), "hi");
}

static void test_lowercase(void)
{
	struct smtp_dialogue d;

	CHECK(parse("ehlo Foo.Example\r\nmail from:<a@b>\r\nRcPt To:<c@d>\r\nHelo again\r\n", "",
		    &d) == 0);
	CHECK_STR(d.helo_verb, "EHLO");
	CHECK_STR(S(d.helo), "Foo.Example");
	CHECK(d.helo_count == 2);
	CHECK_STR(S(d.mail_from), "<a@b>");
	CHECK(d.n_rcpt == 1);
	CHECK_STR(S(d.rcpt_to[0]), "<c@d>");
	CHECK(d.banner_code == 0 && d.n_replies == 0);
}

static void test_pipelined(void)
{
	struct smtp_dialogue d;
	const char *c = "EHLO x\r\nMAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\nRCPT TO:<e@f>\r\nDATA\r\n"
			"QUIT\r\n";

	/* DATA refused: the next line is a command, not a body. */
	CHECK(parse(c, "220 mx\r\n250 mx\r\n250 ok\r\n550 no\r\n550 no\r\n554 no rcpt\r\n221 bye\r\n",
		    &d) == 0);
	CHECK(d.n_rcpt == 2);
	CHECK_STR(S(d.rcpt_to[1]), "<e@f>");
	CHECK(d.n_commands == 6);
	CHECK(d.n_replies == 6);
	CHECK(d.n_replies == 6 && d.replies[4].code == 554 && d.replies[5].code == 221);

	/* DATA accepted: what follows up to "." is the body. */
	CHECK(parse(c, "220 mx\r\n250 mx\r\n250 ok\r\n250 ok\r\n250 ok\r\n354 go\r\n", &d) == 0);
	CHECK(d.n_commands == 5);
	CHECK(d.n_replies == 5);

	/* No reply captured for DATA: assume the body follows. */
	CHECK(parse("EHLO x\r\nDATA\r\nRCPT TO:<in@body>\r\n.\r\nRCPT TO:<after>\r\n", "", &d) == 0);
	CHECK(d.n_rcpt == 1);
	CHECK_STR(S(d.rcpt_to[0]), "<after>");
	CHECK(d.n_commands == 3);
}

static void test_partial_line(void)
{
	struct smtp_dialogue d;

	CHECK(parse("EHLO whole.example\r\n", "", &d) == 0);
	CHECK(!d.client_partial);
	CHECK_STR(S(d.helo), "whole.example");

	CHECK(parse("EHLO partial.exa", "220 mx\r\n", &d) == 0);
	CHECK(d.client_partial);
	CHECK_STR(d.helo_verb, "EHLO");
	CHECK_STR(S(d.helo), "partial.exa");
	CHECK(d.helo_count == 1);
	CHECK(d.n_commands == 0);

	CHECK(parse("MAIL FROM:<a@b>\nhelo late\r", "", &d) == 0);
	CHECK(d.client_partial);
	CHECK_STR(d.helo_verb, "HELO");
	CHECK_STR(S(d.helo), "late");
	CHECK(d.mail_before_helo);
	CHECK(d.n_commands == 1);

	/* A cut MAIL line is not recorded: its argument would be truncated. */
	CHECK(parse("HELO bare\nMAIL FROM:<trunc", "", &d) == 0);
	CHECK_STR(S(d.helo), "bare");
	CHECK(d.mail_from.p == NULL);
	CHECK(d.client_partial);
}

static void test_long_helo(void)
{
	static char c[10100];
	struct smtp_dialogue d;
	size_t i;
	int ok;

	memcpy(c, "EHLO ", 5);
	memset(c + 5, 'a', 10000);
	memcpy(c + 10005, "\r\nMAIL FROM:<x@y>\r\n", 20);
	CHECK(parse(c, "220 mx\r\n", &d) == 0);
	CHECK(d.helo.len == 10000);
	for (ok = 1, i = 0; i < d.helo.len; i++)
		ok &= d.helo.p[i] == 'a';
	CHECK(ok);
	CHECK_STR(S(d.mail_from), "<x@y>");

	c[10005] = '\0'; /* same line, cut before its CRLF */
	CHECK(parse(c, "", &d) == 0);
	CHECK(d.client_partial);
	CHECK(d.helo.len == 10000);
}

static void test_helo_odd_args(void)
{
	struct smtp_dialogue d;

	CHECK(parse("HELO   \t\"evil host\" 'x' \r\n", "", &d) == 0);
	CHECK_STR(S(d.helo), "  \t\"evil host\" 'x' ");
	CHECK(parse("EHLO\tfoo\r\n", "", &d) == 0);
	CHECK_STR(d.helo_verb, "EHLO");
	CHECK_STR(S(d.helo), "foo");
	CHECK(parse("EHLO\r\n", "", &d) == 0);
	CHECK_STR(d.helo_verb, "EHLO");
	CHECK_STR(S(d.helo), "");
	CHECK(parse("HELOfoo\r\n", "", &d) == 0);
	CHECK(d.helo_count == 0);
	CHECK_STR(d.helo_verb, "");
	CHECK(d.helo.p == NULL);
	CHECK(d.n_commands == 1);
}

static void test_no_helo(void)
{
	struct smtp_dialogue d;

	CHECK(parse("MAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\n", "220 mx\r\n503 helo first\r\n", &d) == 0);
	CHECK(d.mail_before_helo);
	CHECK_STR(d.helo_verb, "");
	CHECK(d.helo_count == 0);
	CHECK_STR(S(d.mail_from), "<a@b>");
	CHECK(d.n_replies == 1 && d.replies[0].code == 503);

	CHECK(parse("NOOP\r\nEHLO x\r\nMAIL FROM:<a@b>\r\n", "", &d) == 0);
	CHECK(!d.mail_before_helo);
}

static void test_starttls_accepted(void)
{
	struct smtp_dialogue d;
	const char *c = "EHLO x\r\nSTARTTLS\r\nEHLO evil\r\nMAIL FROM:<evil>\r\n";

	CHECK(parse(c, "220 mx\r\n250-mx\r\n250 STARTTLS\r\n220 2.0.0 Ready\r\n250 evil-ok\r\n",
		    &d) == 0);
	CHECK(d.starttls && d.tls);
	CHECK_STR(S(d.helo), "x");
	CHECK(d.helo_count == 1);
	CHECK(d.mail_from.p == NULL);
	CHECK(d.n_commands == 2);
	CHECK(d.n_replies == 2);
	CHECK(d.n_replies == 2 && d.replies[1].code == 220);

	/* TLS records after the 220 are not read, so no partial line either. */
	CHECK(smtp_parse((const uint8_t *)c, strlen(c),
			 (const uint8_t *)"220 mx\r\n250 mx\r\n220 go\r\n\x16\x03\x03\x00", 28,
			 &d) == 0);
	CHECK(d.tls);
	CHECK(!d.server_partial && !d.not_smtp);
	CHECK(d.n_replies == 2);

	/* Reply not captured: stop anyway rather than trust what follows. */
	CHECK(parse(c, "220 mx\r\n250 mx\r\n", &d) == 0);
	CHECK(d.starttls && !d.tls);
	CHECK(d.helo_count == 1 && d.mail_from.p == NULL);
}

static void test_starttls_refused(void)
{
	struct smtp_dialogue d;

	CHECK(parse("EHLO x\r\nSTARTTLS\r\nMAIL FROM:<a@b>\r\n",
		    "220 mx\r\n250 mx\r\n454 4.7.0 TLS not available\r\n250 ok\r\n", &d) == 0);
	CHECK(d.starttls && !d.tls);
	CHECK_STR(S(d.mail_from), "<a@b>");
	CHECK(d.n_replies == 3);
	CHECK(d.n_replies == 3 && d.replies[1].code == 454 && d.replies[2].code == 250);
	CHECK_STR(S(d.replies[1].text), "4.7.0 TLS not available");
}

static void test_auth(void)
{
	struct smtp_dialogue d;

	/* SASL lines are not commands, even when they spell one. */
	CHECK(parse("EHLO x\r\nAUTH LOGIN\r\nDATA\r\nSTARTTLS\r\nMAIL FROM:<a@b>\r\n",
		    "220 mx\r\n250 mx\r\n334 VXNlcm5hbWU6\r\n334 UGFzc3dvcmQ6\r\n235 ok\r\n250 ok\r\n",
		    &d) == 0);
	CHECK(!d.starttls);
	CHECK_STR(S(d.mail_from), "<a@b>");
	CHECK(d.n_commands == 5);
	CHECK(d.n_replies == 5);
}

static void test_bdat(void)
{
	struct smtp_dialogue d;

	/* The 13-byte chunk holds what looks like a command. */
	CHECK(parse("EHLO x\r\nBDAT 13 LAST\r\nRCPT TO:<a>\r\nQUIT\r\n", "", &d) == 0);
	CHECK(d.n_rcpt == 0);
	CHECK(d.n_commands == 3);
	CHECK(!d.client_partial);
	CHECK(parse("EHLO x\r\nBDAT 99999999999999999999999\r\nRCPT TO:<a>\r\n", "", &d) == 0);
	CHECK(d.n_rcpt == 0);
	CHECK(d.client_partial);
}

static void test_garbage(void)
{
	static const uint8_t hello[] = { 0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc,
					 0x03, 0x03, 0x0a, 'E',  'H',  'L',  'O',  ' ',  'x',
					 '\r', '\n' };
	static const uint8_t srv_tls[] = { 0x16, 0x03, 0x03, 0x00, 0x5a, 0x02, 0x0a };
	struct smtp_dialogue d;

	CHECK(smtp_parse(hello, sizeof(hello), NULL, 0, &d) == 0);
	CHECK(d.not_smtp);
	CHECK(d.n_commands == 0 && d.helo_count == 0);

	CHECK(smtp_parse(NULL, 0, srv_tls, sizeof(srv_tls), &d) == 0);
	CHECK(d.not_smtp);
	CHECK(d.n_replies == 0 && d.banner_code == 0);

	CHECK(parse("GET / HTTP/1.1\r\nHost: x\r\n", "", &d) == 0);
	CHECK(d.not_smtp);

	CHECK(parse("", "", &d) == 0);
	CHECK(!d.not_smtp && d.n_commands == 0 && d.n_replies == 0);
	CHECK(!d.client_partial && !d.server_partial);
	CHECK(smtp_parse(NULL, 0, NULL, 0, &d) == 0);
	CHECK(!d.not_smtp);

	CHECK(parse("\r\n", "\r\n", &d) == 0);
	CHECK(d.n_commands == 1);
	CHECK(d.not_smtp); /* a server's first line is never empty */

	CHECK(parse("\r\n", "", &d) == 0);
	CHECK(!d.not_smtp);

	CHECK(parse("EHLO x\r\n", "2x0 hello\r\n", &d) == 0);
	CHECK(d.not_smtp);
	CHECK(parse("EHLO x\r\n", "220hello\r\n", &d) == 0);
	CHECK(d.not_smtp);
	CHECK(parse("EHLO x\r\n", "220 mx\r\n25x nope\r\n250 ok\r\n", &d) == 0);
	CHECK(!d.not_smtp);
	CHECK(d.n_replies == 1 && d.replies[0].code == 250);

	/* A stream cut inside the first code or verb is not evidence. */
	CHECK(parse("EH", "22", &d) == 0);
	CHECK(!d.not_smtp);
	CHECK(d.client_partial && d.server_partial);

	CHECK(smtp_parse(NULL, 3, NULL, 0, &d) == -EINVAL);
	CHECK(smtp_parse(NULL, 0, NULL, 0, NULL) == -EINVAL);
}

static void test_banner(void)
{
	struct smtp_dialogue d;

	CHECK(parse("EHLO x\r\nMAIL FROM:<a@b>\r\n", "250 hello\r\n250 ok\r\n", &d) == 0);
	CHECK(d.banner_code == 0);
	CHECK(d.banner.p == NULL);
	CHECK(d.n_replies == 2);

	CHECK(parse("", "220-mx.example ESMTP\r\n220-no spam\r\n220 ok\r\n", &d) == 0);
	CHECK(d.banner_code == 220);
	CHECK_STR(S(d.banner), "mx.example ESMTP");
	CHECK(d.n_replies == 0);

	CHECK(parse("EHLO x\r\n", "554 go away\r\n", &d) == 0);
	CHECK(d.banner_code == 554);

	CHECK(parse("", "220\r\n", &d) == 0);
	CHECK(d.banner_code == 220);
	CHECK_STR(S(d.banner), "");

	/* Cut inside a multi-line reply: still one reply, flagged partial. */
	CHECK(parse("EHLO x\r\n", "220 mx\r\n250-mx\r\n250-PIPEL", &d) == 0);
	CHECK(d.server_partial);
	CHECK(d.n_replies == 1);
	CHECK_STR(S(d.replies[0].text), "mx");
}

static void test_many_rcpt(void)
{
	static char c[4096], s[4096];
	struct smtp_dialogue d;
	size_t cl, sl;
	int i;

	cl = (size_t)snprintf(c, sizeof(c), "EHLO x\r\nMAIL FROM:<a@b>\r\n");
	sl = (size_t)snprintf(s, sizeof(s), "220 mx\r\n250 mx\r\n250 ok\r\n");
	for (i = 0; i < 30; i++) {
		cl += (size_t)snprintf(c + cl, sizeof(c) - cl, "RCPT TO:<r%d@x>\r\n", i);
		sl += (size_t)snprintf(s + sl, sizeof(s) - sl, "250 ok %d\r\n", i);
	}
	CHECK(parse(c, s, &d) == 0);
	CHECK(d.n_rcpt == SMTP_MAX_RCPT);
	CHECK_STR(S(d.rcpt_to[15]), "<r15@x>");
	CHECK(d.n_replies == SMTP_MAX_REPLIES);
	CHECK_STR(S(d.replies[15].text), "ok 13");
	CHECK(d.n_commands == 32);
}

static int str_in(struct smtp_str s, const uint8_t *buf, size_t len)
{
	if (!s.p)
		return s.len == 0;
	return (uintptr_t)s.p >= (uintptr_t)buf &&
	       (uintptr_t)s.p + s.len <= (uintptr_t)buf + len;
}

/* Random streams mixing SMTP-like tokens and bytes: must not crash. */
static void test_random(void)
{
	static const char *tok[] = { "EHLO ", "HELO", "MAIL FROM:", "RCPT TO:<", "DATA", "BDAT 5",
				     "STARTTLS", "AUTH", "\r\n", "\n", ".", "220", "250-", "250 ",
				     "334 ", "354 ", "454 ", " ", "\t", "\x16\x03" };
	uint8_t c[512], s[512];
	struct smtp_dialogue d;
	uint32_t seed = 42;
	int iter, i, bad = 0;
	size_t cl, sl;

#define RND() (seed = seed * 1103515245 + 12345, seed >> 16)
	for (iter = 0; iter < 2000; iter++) {
		for (cl = 0; cl < sizeof(c) - 16 && RND() % 40;) {
			if (RND() % 2) {
				const char *t = tok[RND() % (sizeof(tok) / sizeof(tok[0]))];

				memcpy(c + cl, t, strlen(t));
				cl += strlen(t);
			} else {
				c[cl++] = (uint8_t)RND();
			}
		}
		for (sl = 0; sl < sizeof(s) - 16 && RND() % 40;) {
			if (RND() % 2) {
				const char *t = tok[RND() % (sizeof(tok) / sizeof(tok[0]))];

				memcpy(s + sl, t, strlen(t));
				sl += strlen(t);
			} else {
				s[sl++] = (uint8_t)RND();
			}
		}
		if (smtp_parse(c, cl, s, sl, &d))
			bad++;
		bad += !str_in(d.helo, c, cl) || !str_in(d.mail_from, c, cl);
		bad += !str_in(d.banner, s, sl);
		bad += d.n_rcpt < 0 || d.n_rcpt > SMTP_MAX_RCPT;
		bad += d.n_replies < 0 || d.n_replies > SMTP_MAX_REPLIES;
		for (i = 0; i < d.n_rcpt && i < SMTP_MAX_RCPT; i++)
			bad += !str_in(d.rcpt_to[i], c, cl);
		for (i = 0; i < d.n_replies && i < SMTP_MAX_REPLIES; i++)
			bad += !str_in(d.replies[i].text, s, sl);
		bad += d.helo_verb[4] != '\0';
	}
#undef RND
	CHECK(bad == 0);
}

int main(void)
{
	RUN(test_ehlo_dialogue);
	RUN(test_helo);
	RUN(test_lowercase);
	RUN(test_pipelined);
	RUN(test_partial_line);
	RUN(test_long_helo);
	RUN(test_helo_odd_args);
	RUN(test_no_helo);
	RUN(test_starttls_accepted);
	RUN(test_starttls_refused);
	RUN(test_auth);
	RUN(test_bdat);
	RUN(test_garbage);
	RUN(test_banner);
	RUN(test_many_rcpt);
	RUN(test_random);
	CHECK_EXIT();
}
