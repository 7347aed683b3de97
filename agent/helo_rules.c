// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * HELO/EHLO argument classification. Every rule is an independent fact about
 * the argument, except HELO_NOT_SELF, which only speaks about names that are
 * otherwise clean. docs/rules.md explains each rule and its weight.
 *
 * Everything here runs on raw network bytes: no byte is assumed printable or
 * NUL-free, and every scan is linear in the argument's length.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>

#include "helo_rules.h"

#define HELO_NAME_MAX 255 /* Postfix valid_hostname(); RFC 1035 2.3.4 */
#define HELO_LABEL_MAX 63

static const char *const rule_names[HELO_RULE_MAX] = {
	[HELO_MISSING] = "HELO_MISSING",
	[HELO_BARE_IP] = "HELO_BARE_IP",
	[HELO_LITERAL_BAD] = "HELO_LITERAL_BAD",
	[HELO_LITERAL_MISMATCH] = "HELO_LITERAL_MISMATCH",
	[HELO_NO_DOT] = "HELO_NO_DOT",
	[HELO_LOCALHOST] = "HELO_LOCALHOST",
	[HELO_BAD_CHARS] = "HELO_BAD_CHARS",
	[HELO_LAN_TLD] = "HELO_LAN_TLD",
	[HELO_GENERIC_WORD] = "HELO_GENERIC_WORD",
	[HELO_DYNAMIC] = "HELO_DYNAMIC",
	[HELO_IS_PEER] = "HELO_IS_PEER",
	[HELO_FORGED_BIGCO] = "HELO_FORGED_BIGCO",
	[HELO_NOT_SELF] = "HELO_NOT_SELF",
	[HELO_RANDOM] = "HELO_RANDOM",
};

/* docs/rules.md gives the reason for each number. */
static const int rule_weights[HELO_RULE_MAX] = {
	[HELO_MISSING] = 40,
	[HELO_BARE_IP] = 40,
	[HELO_LITERAL_BAD] = 50,
	[HELO_LITERAL_MISMATCH] = 30,
	[HELO_NO_DOT] = 30,
	[HELO_LOCALHOST] = 50,
	[HELO_BAD_CHARS] = 50,
	[HELO_LAN_TLD] = 30,
	[HELO_GENERIC_WORD] = 30,
	[HELO_DYNAMIC] = 25,
	[HELO_IS_PEER] = 60,
	[HELO_FORGED_BIGCO] = 70,
	[HELO_NOT_SELF] = 10,
	[HELO_RANDOM] = 35,
};

/*
 * Every delegated two-letter country code TLD (IANA root zone), two letters
 * per entry. Any other two-letter last label is not a public TLD.
 */
static const char cctlds[] =
	"acadaeafagaialamaoaqarasatauawaxaz"
	"babbbdbebfbgbhbibjbmbnbobrbsbtbvbwbybz"
	"cacccdcfcgchcickclcmcncocrcucvcwcxcycz"
	"dedjdkdmdodz"
	"eceeegereseteu"
	"fifjfkfmfofr"
	"gagbgdgegfggghgiglgmgngpgqgrgsgtgugwgy"
	"hkhmhnhrhthu"
	"idieiliminioiqirisit"
	"jejmjojp"
	"kekgkhkikmknkpkrkwkykz"
	"lalblclilklrlsltlulvly"
	"mamcmdmemgmhmkmlmmmnmompmqmrmsmtmumvmwmxmymz"
	"nancnenfngninlnonpnrnunz"
	"om"
	"papepfpgphpkplpmpnprpsptpwpy"
	"qa"
	"reroesrurw"
	"sasbscsdsesgshsisjskslsmsnsosrssstsusvsxsysz"
	"tctdtftgthtjtktltmtntotrtttvtwtz"
	"uauguksusuyuz"
	"vavcvevgvivnvu"
	"wfws"
	"yeyt"
	"zazmzw";

/*
 * Longer TLDs a mail server's name plausibly ends in: the legacy gTLDs and
 * the new gTLDs most seen in mail. RFC 2606 "test", "example" and "invalid"
 * are here on purpose: documentation and test suites use them, and they are
 * reserved, not private. LAN suffixes (lan, local, home, corp, internal,
 * localdomain, ...) are deliberately absent, so they trip HELO_LAN_TLD.
 */
static const char *const gtlds[] = {
	"academy", "accountant", "aero", "africa", "agency", "amazon", "amsterdam",
	"apartments", "app", "apple", "arpa", "art", "asia", "associates", "attorney", "audio",
	"baby", "bank", "bar", "bayern", "beauty", "berlin", "best", "bet", "bid", "bio",
	"biz", "black", "blog", "blue", "bond", "boston", "brussels", "build", "business",
	"buzz", "cafe", "cam", "capital", "care", "cash", "casino", "cat", "center", "cfd",
	"charity", "chat", "cheap", "church", "city", "click", "clinic", "clothing", "cloud",
	"club", "codes", "college", "com", "community", "company", "computer", "construction",
	"consulting", "coop", "coupons", "credit", "cricket", "cymru", "cyou", "date",
	"dating", "deals", "delivery", "dental", "design", "dev", "digital", "direct",
	"directory", "discount", "doctor", "dog", "domains", "download", "earth", "eco", "edu",
	"education", "email", "energy", "engineering", "enterprises", "estate", "eus",
	"events", "example", "exchange", "expert", "express", "faith", "family", "farm",
	"fashion", "film", "finance", "financial", "fit", "fitness", "football", "forum",
	"foundation", "fun", "fund", "gal", "gallery", "game", "games", "garden", "gift",
	"gifts", "global", "gmbh", "gold", "golf", "google", "gov", "green", "group", "guide",
	"guru", "hair", "hamburg", "health", "healthcare", "help", "holdings", "holiday",
	"homes", "hospital", "host", "hosting", "house", "how", "icu", "industries", "info",
	"ink", "institute", "insurance", "int", "international", "invalid", "investments",
	"istanbul", "jewelry", "jobs", "kids", "kim", "koeln", "land", "lat", "law", "lawyer",
	"legal", "life", "link", "live", "loan", "lol", "london", "love", "ltd", "makeup",
	"management", "market", "marketing", "markets", "mba", "media", "melbourne", "men",
	"miami", "microsoft", "mil", "mobi", "moe", "money", "monster", "moscow", "movie",
	"museum", "music", "nagoya", "name", "net", "network", "news", "ngo", "ninja", "nrw",
	"nyc", "one", "online", "ooo", "org", "osaka", "ovh", "page", "paris", "partners",
	"party", "pet", "photo", "photos", "pics", "pictures", "pink", "pizza", "place", "plus",
	"poker", "post", "pro", "properties", "property", "pub", "quebec", "quest", "racing",
	"radio", "realestate", "red", "rent", "rest", "restaurant", "review", "reviews",
	"rocks", "run", "sale", "sbs", "school", "science", "scot", "services", "shoes",
	"shop", "shopping", "site", "skin", "social", "software", "solar", "solutions",
	"space", "sport", "store", "stream", "studio", "style", "support", "swiss", "sydney",
	"systems", "team", "tech", "technology", "tel", "test", "tips", "today", "tokyo",
	"tools", "top", "tours", "town", "trade", "trading", "training", "travel",
	"university", "uno", "vegas", "ventures", "video", "vip", "wales", "watch", "webcam",
	"website", "wedding", "wien", "wiki", "win", "work", "works", "world", "wtf", "xxx",
	"xyz", "yahoo", "yoga", "yokohama", "zone",
};

/* Names that are private by convention though their TLD is public. */
static const char *const lan_suffixes[] = {
	".home.arpa",  /* RFC 8375 */
	".mshome.net", /* Windows Internet Connection Sharing */
};

/*
 * Loopback names from RFC 6761 6.3 and the /etc/hosts of Debian
 * (ip6-localhost) and Red Hat (localhost6); ".localhost" suffixes are
 * matched separately.
 */
static const char *const localhost_names[] = {
	"localhost", "localhost.localdomain", "localhost4", "localhost4.localdomain4",
	"localhost6", "localhost6.localdomain6", "ip6-localhost", "ip6-loopback",
};

/*
 * First labels that say nothing about the host: OS and OEM defaults, role
 * words, placeholders.
 */
static const char *const generic_words[] = {
	"acer", "admin", "administrator", "asus", "centos", "client", "compaq", "computer",
	"dell", "debian", "default", "desktop", "domain", "ehlo", "email", "example",
	"exchange", "fedora", "friend", "gateway", "guest", "hello", "helo", "home",
	"homepc", "host", "hostname", "hp", "kali", "laptop", "lenovo", "local", "mail",
	"mailserver", "mx", "my-pc", "mycomputer", "mypc", "nas", "notebook", "oem",
	"office", "owner", "pc", "raspberrypi", "root", "router", "server", "smtp", "test",
	"toshiba", "ubuntu", "unknown", "user", "users", "win", "windows", "workstation",
	"www", "ylmf-pc",
};

/* Suffixes of a first label that OS installers put on machine names. */
static const char *const default_name_suffixes[] = {
	"-pc", "-laptop", "-desktop", "-notebook", "-imac",
};

/*
 * Letter runs that ISPs put in the reverse DNS of dynamic and residential
 * address pools, as looked for by "dynamic rDNS" checks (SpamAssassin's
 * RDNS_DYNAMIC, rspamd's hfilter).
 */
static const char *const dynamic_words[] = {
	"adsl",	   "broadband", "cable", "cablemodem", "client", "clients", "cpe",
	"cust",	   "customer",	"dhcp",	 "dial",       "dialin", "dialup",  "dsl",
	"dyn",	   "dynamic",	"dynip", "ftth",       "modem",	 "pool",    "ppp",
	"pppoe",   "sdsl",	"vdsl",	 "xdsl",
};

/* Provider domains bots claim to be: the providers' own servers say host names. */
static const char *const bigco_domains[] = {
	"gmail.com",   "google.com",	 "googlemail.com", "outlook.com", "hotmail.com",
	"live.com",    "msn.com",	 "microsoft.com",  "yahoo.com",	  "yahoo.co.uk",
	"aol.com",     "icloud.com",	 "me.com",	   "mail.ru",	  "yandex.ru",
	"gmx.net",     "gmx.de",	 "web.de",	   "qq.com",	  "163.com",
	"protonmail.com", "zoho.com",
};

/*
 * HELO_RANDOM letter weights: round(100 * log2(26 * f)) where f is the
 * letter's frequency in English text floored at 0.8%, so that other
 * languages' k, j, z do not weigh like noise. Positive: more common than in a
 * uniformly random string.
 */
static const int16_t letter_llr[26] = {
	109, -136, -46,	 16,  172, -81,	 -94, 67,  86, -227, -227, 6,	-68,
	80,  96,   -102, -227, 64, 71,	 124, -46, -197, -68, -227, -94, -227,
};

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

struct ipaddr {
	int family;
	uint8_t a[16];
};

static inline uint8_t lc(uint8_t c)
{
	return c >= 'A' && c <= 'Z' ? c + ('a' - 'A') : c;
}

static inline bool is_digit(uint8_t c)
{
	return c >= '0' && c <= '9';
}

static inline bool is_alpha(uint8_t c)
{
	return lc(c) >= 'a' && lc(c) <= 'z';
}

static inline bool is_alnum(uint8_t c)
{
	return is_alpha(c) || is_digit(c);
}

static inline bool is_ldh(uint8_t c)
{
	return is_alnum(c) || c == '-';
}

static int hexval(uint8_t c)
{
	if (is_digit(c))
		return c - '0';
	c = lc(c);
	return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* p[0..n) equals the C string s, ASCII case ignored. */
static bool eq_ci(const uint8_t *p, size_t n, const char *s)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (!s[i] || lc(p[i]) != lc((uint8_t)s[i]))
			return false;
	return s[n] == '\0';
}

static bool eq2_ci(const uint8_t *a, size_t an, const uint8_t *b, size_t bn)
{
	size_t i;

	if (an != bn)
		return false;
	for (i = 0; i < an; i++)
		if (lc(a[i]) != lc(b[i]))
			return false;
	return true;
}

static bool suffix_ci(const uint8_t *p, size_t n, const char *suf)
{
	size_t sn = strlen(suf);

	return n >= sn && eq_ci(p + n - sn, sn, suf);
}

static bool in_list(const uint8_t *p, size_t n, const char *const *list, size_t count)
{
	size_t i;

	for (i = 0; i < count; i++)
		if (eq_ci(p, n, list[i]))
			return true;
	return false;
}

/* One trailing dot is the root label (RFC 1035 5.1): drop it before comparing. */
static size_t strip_dot(const uint8_t *p, size_t n)
{
	return n > 1 && p[n - 1] == '.' ? n - 1 : n;
}

/*
 * Dotted quad, RFC 5321 4.1.3 IPv4-address-literal: four 1-3 digit numbers
 * up to 255 (leading zeros allowed, as Snum allows them).
 */
static bool parse_ipv4(const uint8_t *p, size_t n, uint8_t out[4])
{
	size_t i = 0;
	int part;

	for (part = 0; part < 4; part++) {
		unsigned int v = 0, d = 0;

		if (part) {
			if (i >= n || p[i] != '.')
				return false;
			i++;
		}
		while (i < n && is_digit(p[i]) && d < 4) {
			v = v * 10 + (p[i++] - '0');
			d++;
		}
		if (d == 0 || d > 3 || v > 255)
			return false;
		out[part] = v;
	}
	return i == n;
}

/*
 * IPv6 text form of RFC 4291 2.2 (RFC 5321 4.1.3 IPv6-addr): eight groups,
 * or fewer around one "::", the last 32 bits optionally as a dotted quad.
 * No zone index.
 */
static bool parse_ipv6(const uint8_t *p, size_t n, uint8_t out[16])
{
	uint16_t g[8];
	int ng = 0, gap = -1, before, after, k;
	size_t i = 0;

	if (n >= 2 && p[0] == ':' && p[1] == ':') {
		gap = 0;
		i = 2;
	} else if (n && p[0] == ':') {
		return false;
	}
	while (i < n) {
		size_t start = i;
		unsigned int v = 0, d = 0;

		while (i < n && hexval(p[i]) >= 0 && d < 5) {
			v = v * 16 + hexval(p[i++]);
			d++;
		}
		if (i < n && p[i] == '.') {
			uint8_t q[4];

			if (ng > 6 || !parse_ipv4(p + start, n - start, q))
				return false;
			g[ng++] = q[0] << 8 | q[1];
			g[ng++] = q[2] << 8 | q[3];
			break;
		}
		if (d == 0 || d > 4 || ng == 8)
			return false;
		g[ng++] = v;
		if (i == n)
			break;
		if (p[i++] != ':' || i == n)
			return false;
		if (p[i] == ':') {
			if (gap >= 0)
				return false;
			gap = ng;
			i++;
		}
	}
	/* "::" stands for at least one zero group. */
	if (gap < 0 ? ng != 8 : ng > 7)
		return false;
	memset(out, 0, 16);
	before = gap < 0 ? ng : gap;
	after = ng - before;
	for (k = 0; k < before; k++) {
		out[2 * k] = g[k] >> 8;
		out[2 * k + 1] = g[k] & 0xff;
	}
	for (k = 0; k < after; k++) {
		out[2 * (8 - after + k)] = g[before + k] >> 8;
		out[2 * (8 - after + k) + 1] = g[before + k] & 0xff;
	}
	return true;
}

/* IPv4-mapped IPv6 (::ffff:a.b.c.d) compares as the IPv4 address it is. */
static void ip_set(struct ipaddr *ip, int family, const uint8_t *a)
{
	static const uint8_t mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };

	memset(ip, 0, sizeof(*ip));
	if (family == AF_INET6 && !memcmp(a, mapped, 12)) {
		ip->family = AF_INET;
		memcpy(ip->a, a + 12, 4);
	} else if (family == AF_INET6) {
		ip->family = AF_INET6;
		memcpy(ip->a, a, 16);
	} else if (family == AF_INET) {
		ip->family = AF_INET;
		memcpy(ip->a, a, 4);
	}
}

static bool ip_eq(const struct ipaddr *x, const struct ipaddr *y)
{
	return x->family && x->family == y->family &&
	       !memcmp(x->a, y->a, x->family == AF_INET ? 4 : 16);
}

static bool ip_loopback(const struct ipaddr *ip)
{
	static const uint8_t one[16] = { [15] = 1 };

	if (ip->family == AF_INET)
		return ip->a[0] == 127;
	return ip->family == AF_INET6 && !memcmp(ip->a, one, 16);
}

/* Bare address: dotted quad (one trailing dot tolerated) or IPv6 text. */
static bool parse_bare(const uint8_t *p, size_t n, struct ipaddr *ip)
{
	uint8_t a[16];

	if (parse_ipv4(p, strip_dot(p, n), a)) {
		ip_set(ip, AF_INET, a);
		return true;
	}
	if (parse_ipv6(p, n, a)) {
		ip_set(ip, AF_INET6, a);
		return true;
	}
	return false;
}

/*
 * RFC 5321 4.1.3 address literal: "[a.b.c.d]" or "[IPv6:...]" (the tag is
 * case-insensitive, as ABNF strings are). The General-address-literal form
 * "[tag:...]" is refused: no other tag has ever been registered.
 */
static bool parse_literal(const uint8_t *p, size_t n, struct ipaddr *ip)
{
	uint8_t a[16];

	if (n < 2 || p[0] != '[' || p[n - 1] != ']')
		return false;
	p++;
	n -= 2;
	if (n > 5 && eq_ci(p, 5, "IPv6:")) {
		if (!parse_ipv6(p + 5, n - 5, a))
			return false;
		ip_set(ip, AF_INET6, a);
		return true;
	}
	if (!parse_ipv4(p, n, a))
		return false;
	ip_set(ip, AF_INET, a);
	return true;
}

static bool host_has_addr(const struct helo_host *host, const struct ipaddr *ip)
{
	struct ipaddr h;
	int i;

	for (i = 0; i < host->n_addrs; i++) {
		ip_set(&h, host->addr_families[i], host->addrs[i]);
		if (ip_eq(&h, ip))
			return true;
	}
	return false;
}

static bool peer_is(const struct helo_peer *peer, const struct ipaddr *ip)
{
	struct ipaddr d;

	if (!peer || (peer->family != AF_INET && peer->family != AF_INET6))
		return false;
	ip_set(&d, peer->family, peer->addr);
	return ip_eq(&d, ip);
}

/* Name comparison: ASCII case and one trailing dot on either side ignored. */
static bool name_eq(const uint8_t *p, size_t n, const char *s)
{
	size_t sn = strlen(s);

	return eq2_ci(p, n, (const uint8_t *)s, strip_dot((const uint8_t *)s, sn));
}

/*
 * The HELO is one of the host's names. When the host knows only short names
 * (gethostname() often is one while the MTA says the FQDN), a short name also
 * matches a HELO whose first label it is.
 */
static bool host_has_name(const struct helo_host *host, const uint8_t *p, size_t n,
			  size_t first_len)
{
	bool fqdn_known = false;
	int i;

	for (i = 0; i < host->n_names; i++) {
		const char *h = host->names[i];

		if (!h || !*h)
			continue;
		if (name_eq(p, n, h))
			return true;
		if (strchr(h, '.') && strchr(h, '.')[1])
			fqdn_known = true;
	}
	for (i = 0; i < host->n_names && !fqdn_known; i++) {
		const char *h = host->names[i];

		if (h && *h && eq_ci(p, first_len, h))
			return true;
	}
	return false;
}

static bool public_tld(const uint8_t *p, size_t n)
{
	size_t i;

	if (n == 2) {
		for (i = 0; i + 1 < sizeof(cctlds); i += 2)
			if (lc(p[0]) == cctlds[i] && lc(p[1]) == cctlds[i + 1])
				return true;
		return false;
	}
	/* IDN TLDs (RFC 3490 ACE form): too many to list, all public. */
	if (n > 4 && eq_ci(p, 4, "xn--"))
		return true;
	return in_list(p, n, gtlds, ARRAY_SIZE(gtlds));
}

/* Windows and macOS default machine names, whatever domain follows them. */
static bool default_machine_name(const uint8_t *p, size_t n)
{
	static const struct {
		const char *prefix;
		size_t min, max; /* alphanumerics after the prefix */
	} pre[] = {
		{ "desktop-", 1, 15 }, /* Windows 10/11: DESKTOP-XXXXXXX */
		{ "laptop-", 1, 15 },  /* Windows 10/11 on laptops: LAPTOP-XXXXXXXX */
		{ "win-", 8, 15 },     /* Windows Server: WIN-XXXXXXXXXXX */
	};
	size_t i, j;

	for (i = 0; i < ARRAY_SIZE(pre); i++) {
		size_t pn = strlen(pre[i].prefix);

		if (n < pn || !eq_ci(p, pn, pre[i].prefix))
			continue;
		for (j = pn; j < n && is_alnum(p[j]); j++)
			;
		if (j == n && n - pn >= pre[i].min && n - pn <= pre[i].max)
			return true;
	}
	for (i = 0; i < ARRAY_SIZE(default_name_suffixes); i++) {
		size_t sn = strlen(default_name_suffixes[i]);

		if (n > sn && suffix_ci(p, n, default_name_suffixes[i]))
			return true;
	}
	/* macOS: "Johns-MacBook-Pro", "MacBook-Air" */
	for (i = 0; i + 7 <= n; i++)
		if (eq_ci(p + i, 7, "macbook"))
			return true;
	return false;
}

/* Letter runs of the name matched against dynamic_words. */
static bool dynamic_word(const uint8_t *p, size_t n)
{
	size_t i = 0, s;

	while (i < n) {
		if (!is_alpha(p[i])) {
			i++;
			continue;
		}
		for (s = i; i < n && is_alpha(p[i]); i++)
			;
		if (in_list(p + s, i - s, dynamic_words, ARRAY_SIZE(dynamic_words)))
			return true;
	}
	return false;
}

static bool octets12(const uint8_t *p)
{
	int k;

	for (k = 0; k < 12; k += 3)
		if ((p[k] - '0') * 100 + (p[k + 1] - '0') * 10 + (p[k + 2] - '0') > 255)
			return false;
	return true;
}

/*
 * An IPv4 address inside a name: four numbers 0-255 joined by single dots or
 * hyphens in either order ("c-98-207-1-2", "1.2.0.192.in-addr.arpa"), or a
 * run of exactly 12 digits of four zero-padded octets ("host098207001002").
 */
static bool embeds_ipv4(const uint8_t *p, size_t n)
{
	size_t i = 0, s, prev_end = 0;
	int count = 0;

	while (i < n) {
		unsigned int v = 0;

		if (!is_digit(p[i])) {
			i++;
			continue;
		}
		for (s = i; i < n && is_digit(p[i]); i++)
			if (i - s < 4)
				v = v * 10 + (p[i] - '0');
		if (i - s == 12 && octets12(p + s))
			return true;
		if (i - s > 3 || v > 255) {
			count = 0;
			continue;
		}
		if (count && s == prev_end + 1 && (p[prev_end] == '.' || p[prev_end] == '-'))
			count++;
		else
			count = 1;
		prev_end = i;
		if (count == 4)
			return true;
	}
	return false;
}

static bool is_vowel(uint8_t c)
{
	return c == 'a' || c == 'e' || c == 'i' || c == 'o' || c == 'u' || c == 'y';
}

/* Consonant-only abbreviations of host names, left out of HELO_RANDOM's score. */
static const char *const host_abbrevs[] = {
	"smtp", "mx", "www", "srv", "dns", "vps", "cdn", "ftp", "mta",
};

/* Consonant clusters that spell one sound (English, German, Polish): one unit. */
static const char *const digraphs[] = {
	"sch", "ch", "sh", "th", "ph", "ck", "sz", "cz", "rz", "ng",
};

/* Length of the first entry of list that p[0..n) starts with, or 0. */
static size_t starts_with_any(const uint8_t *p, size_t n, const char *const *list, size_t count)
{
	size_t i, ln;

	for (i = 0; i < count; i++) {
		ln = strlen(list[i]);
		if (n >= ln && eq_ci(p, ln, list[i]))
			return ln;
	}
	return 0;
}

/*
 * One alphanumeric run of a label looks machine-generated when either
 *  - it has >= 8 characters and switches between letters and digits >= 4
 *    times ("a8f3k2j9"), or
 *  - leaving out digits and host_abbrevs, it has L >= 8 letters and, with C
 *    the share (0..1) of adjacent units (letters, digraphs counted as one)
 *    that are both consonants and A the mean letter_llr, the score
 *    100 * C - 0.3 * A reaches 60.
 * Uniformly random letters average C ~ 0.59 and A ~ -45, English words
 * C ~ 0.35 and A ~ +50. Calibrated on the public suffix list's labels of 8+
 * letters (5 of 2025 trip: hdfcbank, merckmsd, ...) against random 8-14
 * letter strings (about two thirds trip).
 */
static bool random_word(const uint8_t *p, size_t n)
{
	int64_t llr = 0, cc = 0, letters = 0, pairs = 0;
	bool prev_cons = false, have_prev = false;
	int switches = 0;
	size_t i, k, step;

	for (i = 1; i < n; i++)
		if (is_digit(p[i]) != is_digit(p[i - 1]))
			switches++;
	if (n >= 8 && switches >= 4)
		return true;

	for (i = 0; i < n; i += step) {
		bool cons;

		step = starts_with_any(p + i, n - i, host_abbrevs, ARRAY_SIZE(host_abbrevs));
		if (step) {
			have_prev = false;
			continue;
		}
		step = 1;
		if (is_digit(p[i]))
			continue;
		step = starts_with_any(p + i, n - i, digraphs, ARRAY_SIZE(digraphs)) ?: 1;
		for (k = 0; k < step; k++)
			llr += letter_llr[lc(p[i + k]) - 'a'];
		letters += step;
		cons = !is_vowel(lc(p[i]));
		if (have_prev) {
			pairs++;
			cc += prev_cons && cons;
		}
		prev_cons = cons;
		have_prev = true;
	}
	if (letters < 8 || !pairs)
		return false;
	/* 100*cc/pairs - 0.3*llr/letters >= 60, times 10*pairs*letters: integers only */
	return 1000 * cc * letters - 3 * llr * pairs >= 600 * pairs * letters;
}

/* Alphanumeric runs of a label, punycode labels skipped (they look random). */
static bool random_label(const uint8_t *p, size_t n)
{
	size_t i = 0, s;

	if (n >= 4 && eq_ci(p, 4, "xn--"))
		return false;
	while (i < n) {
		if (!is_alnum(p[i])) {
			i++;
			continue;
		}
		for (s = i; i < n && is_alnum(p[i]); i++)
			;
		if (random_word(p + s, i - s))
			return true;
	}
	return false;
}

static uint32_t classify_literal(const uint8_t *p, size_t n, const struct helo_host *host,
				 const struct helo_peer *peer)
{
	struct ipaddr ip;
	uint32_t r = 0;

	if (!parse_literal(p, n, &ip))
		return 1u << HELO_LITERAL_BAD;
	if (ip_loopback(&ip))
		r |= 1u << HELO_LOCALHOST;
	if (peer_is(peer, &ip))
		r |= 1u << HELO_IS_PEER;
	if (host->n_addrs > 0 && !host_has_addr(host, &ip))
		r |= 1u << HELO_LITERAL_MISMATCH;
	return r;
}

static uint32_t classify_name(const uint8_t *p, size_t len, const struct helo_host *host,
			      const struct helo_peer *peer)
{
	size_t n = strip_dot(p, len), i, s, first_len = 0, last_s = 0, last_len = 0;
	int labels = 0;
	bool bad = false, last_ldh = true, lan = false, localhost;
	uint32_t r = 0;

	if (n > HELO_NAME_MAX)
		bad = true;
	for (i = 0; i <= n; i = s + 1) {
		bool ldh = true;

		/* label [i, s) */
		for (s = i; s < n && p[s] != '.'; s++)
			if (!is_ldh(p[s]))
				ldh = false;
		if (!ldh || s == i || s - i > HELO_LABEL_MAX || p[i] == '-' || p[s - 1] == '-')
			bad = true;
		if (!labels)
			first_len = s - i;
		last_s = i;
		last_len = s - i;
		last_ldh = ldh;
		labels++;
	}
	if (bad)
		r |= 1u << HELO_BAD_CHARS;
	if (labels == 1)
		r |= 1u << HELO_NO_DOT;

	localhost = in_list(p, n, localhost_names, ARRAY_SIZE(localhost_names)) ||
		    suffix_ci(p, n, ".localhost");
	if (localhost)
		r |= 1u << HELO_LOCALHOST;

	if (labels > 1 && last_len && last_ldh && !public_tld(p + last_s, last_len))
		lan = true;
	for (i = 0; i < ARRAY_SIZE(lan_suffixes); i++)
		if (suffix_ci(p, n, lan_suffixes[i]))
			lan = true;
	if (lan)
		r |= 1u << HELO_LAN_TLD;

	/* A role word is fine as the first label of a public name: mail.example.com. */
	if ((in_list(p, first_len, generic_words, ARRAY_SIZE(generic_words)) &&
	     (labels == 1 || lan)) ||
	    default_machine_name(p, first_len))
		r |= 1u << HELO_GENERIC_WORD;

	if (dynamic_word(p, n) || embeds_ipv4(p, n))
		r |= 1u << HELO_DYNAMIC;

	if (peer && peer->name && *peer->name && name_eq(p, n, peer->name))
		r |= 1u << HELO_IS_PEER;

	if (in_list(p, n, bigco_domains, ARRAY_SIZE(bigco_domains)) &&
	    !host_has_name(host, p, n, n))
		r |= 1u << HELO_FORGED_BIGCO;

	if (!bad && labels > 1 && !lan && !localhost && host->n_names > 0 &&
	    !host_has_name(host, p, n, first_len))
		r |= 1u << HELO_NOT_SELF;

	/* Every label but the TLD; a single label is its own. */
	for (i = 0; i <= n && labels; i = s + 1) {
		for (s = i; s < n && p[s] != '.'; s++)
			;
		if (labels > 1 && i == last_s)
			break;
		if (random_label(p + i, s - i)) {
			r |= 1u << HELO_RANDOM;
			break;
		}
	}
	return r;
}

int helo_classify(const uint8_t *helo, size_t len, const struct helo_host *host,
		  const struct helo_peer *peer, uint32_t *rules)
{
	static const struct helo_host nobody;
	struct ipaddr ip;
	uint32_t r = 0;

	if (!rules || (!helo && len))
		return -EINVAL;
	if (!host)
		host = &nobody;
	if (host->n_names < 0 || host->n_addrs < 0 || (host->n_names && !host->names) ||
	    (host->n_addrs && (!host->addrs || !host->addr_families)))
		return -EINVAL;

	if (!helo) {
		r = 1u << HELO_MISSING;
	} else if (!len) {
		r = 1u << HELO_BAD_CHARS; /* "HELO" with nothing after it */
	} else if (helo[0] == '[') {
		r = classify_literal(helo, len, host, peer);
	} else if (parse_bare(helo, len, &ip)) {
		r = 1u << HELO_BARE_IP;
		if (ip_loopback(&ip))
			r |= 1u << HELO_LOCALHOST;
		if (peer_is(peer, &ip))
			r |= 1u << HELO_IS_PEER;
	} else {
		r = classify_name(helo, len, host, peer);
	}
	*rules = r;
	return 0;
}

const char *helo_rule_name(enum helo_rule r)
{
	return (unsigned int)r < HELO_RULE_MAX ? rule_names[r] : NULL;
}

int helo_rule_weight(enum helo_rule r)
{
	return (unsigned int)r < HELO_RULE_MAX ? rule_weights[r] : -EINVAL;
}

int helo_score(uint32_t rules)
{
	int i, sum = 0;

	for (i = 0; i < HELO_RULE_MAX; i++)
		if (rules & (1u << i))
			sum += rule_weights[i];
	return sum > 100 ? 100 : sum;
}
