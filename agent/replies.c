// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * Which blocklist refused us, and for which address. Every receiving MTA
 * words this differently, so this is substring matching against the names
 * the lists and mailbox providers put in their replies. The text comes off
 * the wire: no NUL terminator, any byte value, any length.
 */
#include <arpa/inet.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "replies.h"

#define NOT_FOUND SIZE_MAX
#define IP_TEXT_MAX 45 /* INET6_ADDRSTRLEN - 1: longest address text we accept */

struct signature {
	const char *pat; /* lowercase */
	const char *list;
	bool token; /* a status code or vendor code: must stand alone, not inside 15.7.10 */
};

/*
 * First hit in table order wins. DNSBL names come before vendors: when a
 * mailbox provider relays a DNSBL verdict, the DNSBL is what to delist from.
 * "sbl-xbl" precedes "xbl", which it contains.
 */
#define NAME(p, l) { .pat = p, .list = l }
#define CODE(p, l) { .pat = p, .list = l, .token = true }

static const struct signature sigs[] = {
	NAME("sbl-xbl.spamhaus.", "spamhaus-sbl-xbl"),
	NAME("zen.spamhaus.", "spamhaus-zen"),
	NAME("zen.dq.spamhaus.", "spamhaus-zen"), /* Data Query Service: KEY.zen.dq.spamhaus.net */
	NAME("sbl.spamhaus.", "spamhaus-sbl"),
	NAME("sbl.dq.spamhaus.", "spamhaus-sbl"),
	NAME("xbl.spamhaus.", "spamhaus-xbl"),
	NAME("xbl.dq.spamhaus.", "spamhaus-xbl"),
	NAME("pbl.spamhaus.", "spamhaus-pbl"),
	NAME("pbl.dq.spamhaus.", "spamhaus-pbl"),
	NAME("spamhaus", "spamhaus"), /* spamhaus.org/query, /sbl, /lookup, "blocked using Spamhaus" */
	NAME("abuseat.org", "cbl"),
	NAME("barracudacentral.", "barracuda"),
	NAME("barracuda reputation", "barracuda"),
	NAME("barracudanetworks.com/reputation", "barracuda"),
	NAME("spamcop.net", "spamcop"),
	NAME("trend micro email reputation", "trendmicro-ers"),
	NAME("trend micro rbl", "trendmicro-ers"),
	NAME("ers.trendmicro.", "trendmicro-ers"),
	NAME("mail-abuse.com", "trendmicro-ers"),
	NAME("mail-abuse.org", "trendmicro-ers"), /* RBL+ before Trend Micro bought MAPS */
	NAME("sorbs.net", "sorbs"),
	NAME("uceprotect", "uceprotect"),
	CODE("s3140", "microsoft"), /* Outlook.com: "part of their network is on our block list" */
	CODE("s3150", "microsoft"),
	CODE("5.7.606", "microsoft"),
	CODE("5.7.511", "microsoft"),
	NAME("banned sending ip", "microsoft"),
	NAME("proofpoint", "proofpoint"),
	NAME("mta's poor reputation", "cisco"),
	NAME("mta\xe2\x80\x99s poor reputation", "cisco"), /* U+2019 apostrophe */
	NAME("senderbase", "cisco"),
	NAME("talosintelligence", "cisco"),
	CODE("4.7.28", "gmail"), /* unusual rate of unsolicited mail from your IP */
	CODE("5.7.26", "gmail"), /* unauthenticated, DMARC */
};

static inline uint8_t lc(uint8_t c)
{
	return c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c;
}

static inline bool is_digit(uint8_t c)
{
	return c >= '0' && c <= '9';
}

static inline bool is_alnum(uint8_t c)
{
	c = lc(c);
	return is_digit(c) || (c >= 'a' && c <= 'z');
}

static inline bool is_hex(uint8_t c)
{
	c = lc(c);
	return is_digit(c) || (c >= 'a' && c <= 'f');
}

/* Case-insensitive: does lowercase word start t[0..len)? */
static bool starts(const uint8_t *t, size_t len, const char *word)
{
	size_t i, n = strlen(word);

	if (n > len)
		return false;
	for (i = 0; i < n; i++)
		if (lc(t[i]) != (uint8_t)word[i])
			return false;
	return true;
}

/* Offset of lowercase pat in t[from..len), case-insensitive, or NOT_FOUND. */
static size_t find(const uint8_t *t, size_t len, size_t from, const char *pat)
{
	size_t i, n = strlen(pat);

	if (!n || n > len)
		return NOT_FOUND;
	for (i = from; i <= len - n; i++)
		if (lc(t[i]) == (uint8_t)pat[0] && starts(t + i, len - i, pat))
			return i;
	return NOT_FOUND;
}

/* pat not inside a longer code: "5.7.1" must not hit "15.7.10" or "5.7.12". */
static bool has_token(const uint8_t *t, size_t len, const char *pat)
{
	size_t at = 0, end, n = strlen(pat);

	while ((at = find(t, len, at, pat)) != NOT_FOUND) {
		end = at + n;
		if ((at == 0 || (!is_alnum(t[at - 1]) && t[at - 1] != '.')) &&
		    (end == len || (!is_alnum(t[end]) &&
				    !(t[end] == '.' && end + 1 < len && is_digit(t[end + 1])))))
			return true;
		at++;
	}
	return false;
}

static const char *match_sigs(const uint8_t *t, size_t len, bool names_only)
{
	size_t i;

	for (i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++) {
		if (sigs[i].token) {
			if (!names_only && has_token(t, len, sigs[i].pat))
				return sigs[i].list;
		} else if (find(t, len, 0, sigs[i].pat) != NOT_FOUND) {
			return sigs[i].list;
		}
	}
	return NULL;
}

/*
 * Gmail's reputation refusals share a status code with every other policy
 * refusal (5.7.1, 4.7.0), so ask for Gmail's wording as well as the code.
 */
static bool gmail_reputation(const uint8_t *t, size_t len)
{
	static const char *const why[] = { "unsolicited mail", "likely unsolicited",
					   "low reputation", "low ip reputation" };
	static const char *const gmail[] = { "gmail", "google.com", "gsmtp",
					     "our system has detected" };
	bool hit = false;
	size_t i;

	for (i = 0; i < sizeof(why) / sizeof(why[0]) && !hit; i++)
		hit = find(t, len, 0, why[i]) != NOT_FOUND;
	if (!hit)
		return false;
	if (has_token(t, len, "5.7.1"))
		return true;
	for (i = 0; i < sizeof(gmail) / sizeof(gmail[0]); i++)
		if (find(t, len, 0, gmail[i]) != NOT_FOUND)
			return true;
	return false;
}

static bool is_zone(const uint8_t *s, size_t n)
{
	bool dot = false, alpha = false;
	size_t i;

	for (i = 0; i < n; i++) {
		dot |= s[i] == '.';
		alpha |= is_alnum(s[i]) && !is_digit(s[i]);
	}
	return dot && alpha;
}

static inline bool is_name_char(uint8_t c)
{
	return is_alnum(c) || c == '-' || c == '_' || c == '+' || c == ' ';
}

/*
 * Postfix reject_rbl_client: "Client host [IP] blocked using LIST; TEXT".
 * Sets [*lo, *hi) to LIST: a DNS zone (*zone), or a service's name where the
 * site set one ("Barracuda Reputation"). A '.' belongs to it only inside a
 * word, so a sentence's full stop ends it.
 */
static bool blocked_using(const uint8_t *t, size_t len, size_t *lo, size_t *hi, bool *zone)
{
	static const char key[] = "blocked using";
	size_t at = 0, p, q, w;

	while ((at = find(t, len, at, key)) != NOT_FOUND) {
		p = at + sizeof(key) - 1;
		at++;
		if (p >= len || (t[p] != ' ' && t[p] != '\t'))
			continue;
		while (p < len && (t[p] == ' ' || t[p] == '\t'))
			p++;
		for (q = p; q < len; q++)
			if (!is_name_char(t[q]) &&
			    !(t[q] == '.' && q + 1 < len && is_alnum(t[q + 1])))
				break;
		while (q > p && t[q - 1] == ' ')
			q--;
		if (q == p)
			continue;
		for (w = p; w < q && t[w] != ' '; w++)
			;
		*zone = is_zone(t + p, w - p);
		*lo = p;
		*hi = *zone ? w : q; /* "zone.example and more words" */
		return true;
	}
	return false;
}

static void set_list(char *dst, const uint8_t *s, size_t n)
{
	size_t i;

	if (n > REPLY_LIST_LEN - 1)
		n = REPLY_LIST_LEN - 1;
	for (i = 0; i < n; i++)
		dst[i] = (char)lc(s[i]);
	dst[n] = '\0';
}

/* Strict dotted quad: four parts of 1-3 digits, each <= 255, no leading zeros. */
static bool is_ipv4(const uint8_t *s, size_t n)
{
	size_t i = 0, start, digits;
	unsigned int v;
	int part;

	for (part = 0; part < 4; part++) {
		if (part) {
			if (i >= n || s[i] != '.')
				return false;
			i++;
		}
		start = i;
		for (v = 0, digits = 0; i < n && is_digit(s[i]) && digits < 3; i++, digits++)
			v = v * 10 + (s[i] - '0');
		/* "010" reads as octal to inet_aton(): nobody means that */
		if (!digits || v > 255 || (digits > 1 && s[start] == '0'))
			return false;
	}
	return i == n;
}

static bool is_ipv6(const uint8_t *s, size_t n)
{
	char buf[IP_TEXT_MAX + 1];
	struct in6_addr a;
	bool colon = false;
	size_t i;

	if (n > IP_TEXT_MAX)
		return false;
	/* inet_pton() stops at a NUL: check every byte ourselves first. */
	for (i = 0; i < n; i++) {
		if (!is_hex(s[i]) && s[i] != ':' && s[i] != '.')
			return false;
		colon |= s[i] == ':';
	}
	if (!colon)
		return false;
	memcpy(buf, s, n);
	buf[n] = '\0';
	return inet_pton(AF_INET6, buf, &a) == 1;
}

static bool take_ip(char *ip, const uint8_t *s, size_t n)
{
	if (n > IP_TEXT_MAX || (!is_ipv4(s, n) && !is_ipv6(s, n)))
		return false;
	memcpy(ip, s, n);
	ip[n] = '\0';
	return true;
}

/* "[192.0.2.1]", "[IPv6:2001:db8::1]", as in Postfix's "Client host [IP]". */
static bool bracketed_ip(const uint8_t *t, size_t len, char *ip)
{
	size_t i, s, e, stop;

	for (i = 0; i < len; i++) {
		if (t[i] != '[')
			continue;
		s = i + 1;
		if (starts(t + s, len - s, "ipv6:"))
			s += 5;
		stop = len - s > IP_TEXT_MAX ? s + IP_TEXT_MAX + 1 : len;
		for (e = s; e < stop && t[e] != ']'; e++)
			;
		if (e < stop && take_ip(ip, t + s, e - s))
			return true;
	}
	return false;
}

/* End of the run of address characters from s; take_ip() rejects what is too long. */
static size_t ip_run(const uint8_t *t, size_t len, size_t s)
{
	while (s < len && (is_hex(t[s]) || t[s] == ':' || t[s] == '.'))
		s++;
	return s;
}

/* "from 192.0.2.1", "IP: 192.0.2.1", "address 2001:db8::1", "(192.0.2.1)". */
static bool keyword_ip(const uint8_t *t, size_t len, char *ip)
{
	static const char *const words[] = { "from", "ip", "address" };
	size_t i, k, p, e;

	for (i = 0; i < len; i++) {
		if (t[i] == '(') {
			e = ip_run(t, len, i + 1);
			if (e < len && t[e] == ')' && take_ip(ip, t + i + 1, e - i - 1))
				return true;
			continue;
		}
		if (i > 0 && is_alnum(t[i - 1]))
			continue;
		for (k = 0; k < sizeof(words) / sizeof(words[0]); k++) {
			if (!starts(t + i, len - i, words[k]))
				continue;
			p = i + strlen(words[k]);
			if (p < len && (t[p] == ':' || t[p] == '='))
				p++;
			while (p < len && (t[p] == ' ' || t[p] == '\t'))
				p++;
			if (p == i + strlen(words[k]))
				continue; /* "fromage", "ipsum" */
			e = ip_run(t, len, p);
			while (e > p && t[e - 1] == '.')
				e--; /* end of sentence */
			if ((e == len || !is_alnum(t[e])) && take_ip(ip, t + p, e - p))
				return true;
		}
	}
	return false;
}

/* Last resort: a dotted quad on its own, as in "lookup?ip=203.0.113.7". */
static bool bare_ipv4(const uint8_t *t, size_t len, char *ip)
{
	size_t i = 0, e, n;

	while (i < len) {
		if (!is_digit(t[i]) || (i > 0 && (is_alnum(t[i - 1]) || t[i - 1] == '.'))) {
			i++;
			continue;
		}
		for (e = i; e < len && (is_digit(t[e]) || t[e] == '.'); e++)
			;
		n = e - i;
		while (n && t[i + n - 1] == '.')
			n--;
		/* "1.2.3.4.5" is a version or an OID, "1.2.3.4x" a name. */
		if ((e == len || !is_alnum(t[e])) && take_ip(ip, t + i, n))
			return true;
		i = e;
	}
	return false;
}

int reply_listing(int code, const uint8_t *text, size_t len, struct reply_listing *out)
{
	const char *list = NULL;
	size_t lo = 0, hi = 0;
	bool named, zone = false;

	if (!out)
		return 0;
	memset(out, 0, sizeof(*out));
	if (!text)
		len = 0;
	if (code < 400 || code > 599)
		return 0;

	named = blocked_using(text, len, &lo, &hi, &zone);
	if (named && zone) {
		/* The zone that matched decides, whatever else the text links to. */
		list = match_sigs(text + lo, hi - lo, true);
	} else {
		list = match_sigs(text, len, false);
		if (!list && gmail_reputation(text, len))
			list = "gmail";
	}
	if (list)
		set_list(out->list, (const uint8_t *)list, strlen(list));
	else if (named) /* a list we have no name for: as the MTA spelled it */
		set_list(out->list, text + lo, hi - lo);
	else
		return 0;

	if (!bracketed_ip(text, len, out->ip) && !keyword_ip(text, len, out->ip))
		bare_ipv4(text, len, out->ip);
	return 1;
}
