/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Community ID v1. SHA-1 and base64 are written out here because none of our
 * dependencies (libbpf, libelf, zlib, cJSON) provides them, and the hash runs
 * once per flow over at most 40 bytes, so a plain implementation is enough.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include "community_id.h"

#define SHA1_DIGEST_LEN 20

struct sha1_ctx {
	uint32_t h[5];
	uint64_t nbytes;
	uint8_t buf[64];
	size_t buflen;
};

static inline uint32_t rol32(uint32_t x, unsigned int n)
{
	return (x << n) | (x >> (32 - n));
}

static void sha1_init(struct sha1_ctx *c)
{
	c->h[0] = 0x67452301;
	c->h[1] = 0xefcdab89;
	c->h[2] = 0x98badcfe;
	c->h[3] = 0x10325476;
	c->h[4] = 0xc3d2e1f0;
	c->nbytes = 0;
	c->buflen = 0;
}

static void sha1_block(struct sha1_ctx *c, const uint8_t *blk)
{
	uint32_t w[80], a, b, cc, d, e, f, k, t;
	int i;

	for (i = 0; i < 16; i++)
		w[i] = (uint32_t)blk[4 * i] << 24 | (uint32_t)blk[4 * i + 1] << 16 |
		       (uint32_t)blk[4 * i + 2] << 8 | (uint32_t)blk[4 * i + 3];
	for (i = 16; i < 80; i++)
		w[i] = rol32(w[i - 3] ^ w[i - 8] ^ w[i - 14] ^ w[i - 16], 1);

	a = c->h[0];
	b = c->h[1];
	cc = c->h[2];
	d = c->h[3];
	e = c->h[4];
	for (i = 0; i < 80; i++) {
		if (i < 20) {
			f = (b & cc) | (~b & d);
			k = 0x5a827999;
		} else if (i < 40) {
			f = b ^ cc ^ d;
			k = 0x6ed9eba1;
		} else if (i < 60) {
			f = (b & cc) | (b & d) | (cc & d);
			k = 0x8f1bbcdc;
		} else {
			f = b ^ cc ^ d;
			k = 0xca62c1d6;
		}
		t = rol32(a, 5) + f + e + k + w[i];
		e = d;
		d = cc;
		cc = rol32(b, 30);
		b = a;
		a = t;
	}
	c->h[0] += a;
	c->h[1] += b;
	c->h[2] += cc;
	c->h[3] += d;
	c->h[4] += e;
}

static void sha1_update(struct sha1_ctx *c, const void *data, size_t len)
{
	const uint8_t *p = data;

	c->nbytes += len;
	while (len) {
		size_t n = sizeof(c->buf) - c->buflen;

		if (n > len)
			n = len;
		memcpy(c->buf + c->buflen, p, n);
		c->buflen += n;
		p += n;
		len -= n;
		if (c->buflen == sizeof(c->buf)) {
			sha1_block(c, c->buf);
			c->buflen = 0;
		}
	}
}

static void sha1_final(struct sha1_ctx *c, uint8_t out[SHA1_DIGEST_LEN])
{
	uint64_t bits = c->nbytes * 8;
	uint8_t pad = 0x80, zero = 0, len_be[8];
	int i;

	sha1_update(c, &pad, 1);
	while (c->buflen != 56)
		sha1_update(c, &zero, 1);
	for (i = 0; i < 8; i++)
		len_be[i] = bits >> (56 - 8 * i);
	sha1_update(c, len_be, sizeof(len_be));
	for (i = 0; i < 5; i++) {
		out[4 * i] = c->h[i] >> 24;
		out[4 * i + 1] = c->h[i] >> 16;
		out[4 * i + 2] = c->h[i] >> 8;
		out[4 * i + 3] = c->h[i];
	}
}

/* Standard alphabet with '=' padding, as the spec requires. */
static size_t base64_encode(const uint8_t *in, size_t len, char *out)
{
	static const char tbl[] =
		"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	size_t i, o = 0;

	for (i = 0; i + 2 < len; i += 3) {
		uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];

		out[o++] = tbl[v >> 18];
		out[o++] = tbl[(v >> 12) & 63];
		out[o++] = tbl[(v >> 6) & 63];
		out[o++] = tbl[v & 63];
	}
	if (i < len) {
		uint32_t v = (uint32_t)in[i] << 16;

		if (i + 1 < len)
			v |= (uint32_t)in[i + 1] << 8;
		out[o++] = tbl[v >> 18];
		out[o++] = tbl[(v >> 12) & 63];
		out[o++] = i + 1 < len ? tbl[(v >> 6) & 63] : '=';
		out[o++] = '=';
	}
	out[o] = '\0';
	return o;
}

int community_id_v1(uint16_t seed, int family, const uint8_t *saddr, const uint8_t *daddr,
		    uint16_t sport, uint16_t dport, uint8_t proto, char *out, size_t outlen)
{
	uint8_t digest[SHA1_DIGEST_LEN], hdr[2], tail[6];
	const uint8_t *a1 = saddr, *a2 = daddr;
	uint16_t p1 = sport, p2 = dport;
	struct sha1_ctx c;
	size_t alen;
	int cmp;

	if (!saddr || !daddr || !out)
		return -EINVAL;
	if (family == AF_INET)
		alen = 4;
	else if (family == AF_INET6)
		alen = 16;
	else
		return -EINVAL;
	/* "1:" + base64 of 20 bytes (28 chars) + NUL */
	if (outlen < 2 + 28 + 1)
		return -ENOSPC;

	/* Both directions of a flow must hash alike: smaller endpoint first. */
	cmp = memcmp(saddr, daddr, alen);
	if (cmp > 0 || (cmp == 0 && sport > dport)) {
		a1 = daddr;
		a2 = saddr;
		p1 = dport;
		p2 = sport;
	}

	hdr[0] = seed >> 8;
	hdr[1] = seed;
	tail[0] = proto;
	tail[1] = 0;
	tail[2] = p1 >> 8;
	tail[3] = p1;
	tail[4] = p2 >> 8;
	tail[5] = p2;

	sha1_init(&c);
	sha1_update(&c, hdr, sizeof(hdr));
	sha1_update(&c, a1, alen);
	sha1_update(&c, a2, alen);
	sha1_update(&c, tail, sizeof(tail));
	sha1_final(&c, digest);

	out[0] = '1';
	out[1] = ':';
	base64_encode(digest, sizeof(digest), out + 2);
	return 0;
}

void sw_digest_id(const void *data, size_t len, char *out, size_t outlen)
{
	uint8_t digest[SHA1_DIGEST_LEN];
	char b64[32];
	struct sha1_ctx c;

	sha1_init(&c);
	sha1_update(&c, data, len);
	sha1_final(&c, digest);
	/* 15 bytes: 20 base64 characters and no padding. */
	base64_encode(digest, 15, b64);
	snprintf(out, outlen, "%s", b64);
}
