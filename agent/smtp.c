/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * SMTP dialogue parser (RFC 5321), run over captured streams after the fact.
 *
 * The server's replies are matched to client lines in order: the banner
 * first, then one reply per command line. That pairing is what tells us
 * whether DATA was accepted (the body that follows is not commands), whether
 * AUTH wants another SASL line, and whether STARTTLS switched to TLS.
 */
#include <errno.h>
#include <string.h>

#include "smtp.h"

/* Longest verb we accept as SMTP; real ones are 4 to 8 letters. */
#define SMTP_MAX_VERB 16

struct line_it {
	const uint8_t *buf;
	size_t len;
	size_t pos;
};

enum smtp_verb {
	V_OTHER,
	V_HELO,
	V_EHLO,
	V_MAIL,
	V_RCPT,
	V_DATA,
	V_BDAT,
	V_AUTH,
	V_STARTTLS,
};

struct server_rd {
	struct line_it li;
	bool done; /* not SMTP, or TLS follows: read no further */
	bool have_peek;
	struct smtp_reply peek;
	bool *partial;
};

static inline bool is_alpha(uint8_t c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static inline bool is_digit(uint8_t c)
{
	return c >= '0' && c <= '9';
}

static inline bool is_blank(uint8_t c)
{
	return c == ' ' || c == '\t';
}

static inline uint8_t to_upper(uint8_t c)
{
	return c >= 'a' && c <= 'z' ? c - 'a' + 'A' : c;
}

/* Locale-free, and the input is not NUL-terminated. */
static bool eq_nocase(const uint8_t *p, size_t len, const char *word)
{
	size_t i;

	if (len != strlen(word))
		return false;
	for (i = 0; i < len; i++)
		if (to_upper(p[i]) != (uint8_t)word[i])
			return false;
	return true;
}

/*
 * Next line without its LF and one trailing CR; bare LF ends a line too.
 * *complete is false for a last line the stream cut before its LF.
 */
static bool next_line(struct line_it *it, struct smtp_str *line, bool *complete)
{
	const uint8_t *start, *lf;
	size_t rest;

	if (it->pos >= it->len)
		return false;
	start = it->buf + it->pos;
	rest = it->len - it->pos;
	lf = memchr(start, '\n', rest);
	if (lf) {
		line->len = (size_t)(lf - start);
		it->pos += line->len + 1;
		*complete = true;
	} else {
		line->len = rest;
		it->pos = it->len;
		*complete = false;
	}
	line->p = start;
	if (line->len && start[line->len - 1] == '\r')
		line->len--;
	return true;
}

/* Code of a reply line "NNN", "NNN text" or "NNN-text", or 0 if it is not one. */
static int reply_line(const struct smtp_str *l, bool *more, struct smtp_str *text)
{
	const uint8_t *p = l->p;

	if (l->len < 3 || p[0] < '1' || p[0] > '5' || !is_digit(p[1]) || !is_digit(p[2]))
		return 0;
	if (l->len > 3 && p[3] != ' ' && p[3] != '-')
		return 0;
	*more = l->len > 3 && p[3] == '-';
	text->p = p + (l->len > 3 ? 4 : 3);
	text->len = l->len > 3 ? l->len - 4 : 0;
	return (p[0] - '0') * 100 + (p[1] - '0') * 10 + (p[2] - '0');
}

/*
 * Next whole reply: first line's text, last line's code. Lines that are not
 * reply lines are skipped. A reply the stream cut short still counts.
 */
static bool read_reply(struct server_rd *s, struct smtp_reply *r)
{
	struct smtp_str line, text;
	bool complete, more, started = false;
	int code;

	while (next_line(&s->li, &line, &complete)) {
		if (!complete)
			*s->partial = true;
		code = reply_line(&line, &more, &text);
		if (!code)
			continue;
		if (!started) {
			r->text = text;
			r->full = text;
		}
		/* Lines are contiguous in the stream: full spans to this line's end. */
		r->full.len = (size_t)(line.p + line.len - r->full.p);
		started = true;
		r->code = code;
		if (!more)
			return true;
	}
	return started;
}

static const struct smtp_reply *peek_reply(struct server_rd *s)
{
	if (!s->have_peek && !s->done)
		s->have_peek = read_reply(s, &s->peek);
	return s->have_peek ? &s->peek : NULL;
}

/* Consume and record the next reply; its code, or 0 if the server said no more. */
static int take_reply(struct server_rd *s, struct smtp_dialogue *d)
{
	const struct smtp_reply *r = peek_reply(s);

	if (!r)
		return 0;
	s->have_peek = false;
	if (d->n_replies < SMTP_MAX_REPLIES)
		d->replies[d->n_replies++] = *r;
	return r->code;
}

/* The verb runs to the first blank; *rest is what follows it. */
static enum smtp_verb classify(const struct smtp_str *l, struct smtp_str *rest)
{
	static const struct {
		const char *word;
		enum smtp_verb v;
	} verbs[] = {
		{ "HELO", V_HELO }, { "EHLO", V_EHLO }, { "MAIL", V_MAIL },
		{ "RCPT", V_RCPT }, { "DATA", V_DATA }, { "BDAT", V_BDAT },
		{ "AUTH", V_AUTH }, { "STARTTLS", V_STARTTLS },
	};
	size_t n = 0, i;

	while (n < l->len && !is_blank(l->p[n]))
		n++;
	rest->p = l->p + n;
	rest->len = l->len - n;
	for (i = 0; i < sizeof(verbs) / sizeof(verbs[0]); i++)
		if (eq_nocase(l->p, n, verbs[i].word))
			return verbs[i].v;
	return V_OTHER;
}

static void skip_blanks(struct smtp_str *s)
{
	while (s->len && is_blank(s->p[0])) {
		s->p++;
		s->len--;
	}
}

/*
 * "FROM:" / "TO:" after MAIL / RCPT. Blanks around the keyword are tolerated
 * because some senders add them and servers accept it; the argument is kept
 * as sent, brackets and parameters included.
 */
static bool keyword_arg(struct smtp_str rest, const char *kw, struct smtp_str *arg)
{
	size_t n = strlen(kw);

	skip_blanks(&rest);
	if (rest.len < n || !eq_nocase(rest.p, n, kw))
		return false;
	rest.p += n;
	rest.len -= n;
	skip_blanks(&rest);
	if (!rest.len || rest.p[0] != ':')
		return false;
	rest.p++;
	rest.len--;
	skip_blanks(&rest);
	*arg = rest;
	return true;
}

/* RFC 3030: "BDAT <size> [LAST]" is followed by exactly size raw bytes. */
static bool bdat_size(struct smtp_str rest, size_t *size)
{
	size_t v = 0;

	skip_blanks(&rest);
	if (!rest.len || !is_digit(rest.p[0]))
		return false;
	while (rest.len && is_digit(rest.p[0])) {
		unsigned int dg = rest.p[0] - '0';

		v = v > (SIZE_MAX - dg) / 10 ? SIZE_MAX : v * 10 + dg;
		rest.p++;
		rest.len--;
	}
	*size = v;
	return true;
}

static void note_helo(struct smtp_dialogue *d, const struct smtp_str *l, enum smtp_verb v)
{
	if (d->helo_count++)
		return;
	memcpy(d->helo_verb, v == V_EHLO ? "EHLO" : "HELO", 5);
	/* Only the one separator goes: extra blanks are part of what was sent. */
	d->helo.p = l->p + (l->len > 4 ? 5 : 4);
	d->helo.len = l->len > 4 ? l->len - 5 : 0;
}

static void parse_client(struct line_it *it, struct server_rd *s, struct smtp_dialogue *d)
{
	struct smtp_str l, rest, arg;
	bool complete, in_body = false, sasl = false;
	enum smtp_verb v;
	size_t size;
	int code;

	while (next_line(it, &l, &complete)) {
		if (!complete) {
			d->client_partial = true;
			/* A cut-off HELO still names the client. */
			if (!in_body && !sasl) {
				v = classify(&l, &rest);
				if (v == V_HELO || v == V_EHLO)
					note_helo(d, &l, v);
			}
			return;
		}
		if (in_body) {
			/* Dot-stuffing means only a lone "." ends the body. */
			if (l.len == 1 && l.p[0] == '.') {
				in_body = false;
				take_reply(s, d);
			}
			continue;
		}
		d->n_commands++;
		if (sasl) {
			sasl = take_reply(s, d) == 334;
			continue;
		}
		v = classify(&l, &rest);
		if ((v == V_MAIL || v == V_RCPT || v == V_DATA || v == V_BDAT) && !d->helo_count)
			d->mail_before_helo = true;
		switch (v) {
		case V_HELO:
		case V_EHLO:
			note_helo(d, &l, v);
			take_reply(s, d);
			break;
		case V_MAIL:
			if (!d->mail_from.p && keyword_arg(rest, "FROM", &arg))
				d->mail_from = arg;
			take_reply(s, d);
			break;
		case V_RCPT:
			if (d->n_rcpt < SMTP_MAX_RCPT && keyword_arg(rest, "TO", &arg))
				d->rcpt_to[d->n_rcpt++] = arg;
			take_reply(s, d);
			break;
		case V_DATA:
			/* With no reply captured, assume the body follows. */
			code = take_reply(s, d);
			in_body = !code || code / 100 == 3;
			break;
		case V_BDAT:
			if (bdat_size(rest, &size)) {
				if (size > it->len - it->pos) {
					d->client_partial = true;
					it->pos = it->len;
				} else {
					it->pos += size;
				}
			}
			take_reply(s, d);
			break;
		case V_AUTH:
			sasl = take_reply(s, d) == 334;
			break;
		case V_STARTTLS:
			d->starttls = true;
			code = take_reply(s, d);
			/* Only a clear refusal keeps the session in plain text. */
			if (code >= 400 && code < 600)
				break;
			d->tls = code / 100 == 2;
			s->done = true;
			return;
		default:
			take_reply(s, d);
			break;
		}
	}
}

/* First non-empty client line must start with a verb-like word. */
static bool client_looks_smtp(const uint8_t *p, size_t len)
{
	struct line_it it = { p, len, 0 };
	struct smtp_str l;
	bool complete;
	size_t n;

	while (next_line(&it, &l, &complete)) {
		if (!l.len)
			continue;
		for (n = 0; n < l.len && n <= SMTP_MAX_VERB && is_alpha(l.p[n]); n++)
			;
		if (n > SMTP_MAX_VERB)
			return false;
		if (n == l.len)
			return !complete || n >= 4; /* cut inside the verb: give it the benefit */
		return n >= 4 && is_blank(l.p[n]);
	}
	return true;
}

/* First server line must be a reply line, or a cut-off start of one. */
static bool server_looks_smtp(const uint8_t *p, size_t len)
{
	struct line_it it = { p, len, 0 };
	struct smtp_str l, text;
	bool complete, more;
	size_t i;

	if (!next_line(&it, &l, &complete))
		return true;
	if (!complete && l.len < 3) {
		for (i = 0; i < l.len; i++)
			if (!is_digit(l.p[i]))
				return false;
		return true;
	}
	return reply_line(&l, &more, &text) != 0;
}

int smtp_parse(const uint8_t *client, size_t clen, const uint8_t *server, size_t slen,
	       struct smtp_dialogue *d)
{
	struct line_it cl = { client, clen, 0 };
	struct server_rd s = { .li = { server, slen, 0 } };
	const struct smtp_reply *r;

	if (!d || (!client && clen) || (!server && slen))
		return -EINVAL;
	memset(d, 0, sizeof(*d));
	s.partial = &d->server_partial;

	if (!server_looks_smtp(server, slen)) {
		d->not_smtp = true;
		s.done = true;
	}

	/*
	 * The greeting is 220, or 421/554 when the server turns the client
	 * away (RFC 5321 3.1); anything else means the banner was not captured
	 * and the first reply answers the first command.
	 */
	r = peek_reply(&s);
	if (r && (r->code == 220 || r->code == 421 || r->code == 554)) {
		d->banner_code = r->code;
		d->banner = r->text;
		s.have_peek = false;
	}

	if (client_looks_smtp(client, clen))
		parse_client(&cl, &s, d);
	else
		d->not_smtp = true;

	/* Replies no client line accounted for, e.g. a closing 421. */
	while (take_reply(&s, d))
		;
	return 0;
}
