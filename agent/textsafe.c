/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>

#include "textsafe.h"

static const char hexdig[] = "0123456789abcdef";

static char *put_hex(char *o, uint8_t b)
{
	*o++ = '\\';
	*o++ = 'x';
	*o++ = hexdig[b >> 4];
	*o++ = hexdig[b & 15];
	return o;
}

static inline bool is_cont(uint8_t b)
{
	return (b & 0xc0) == 0x80;
}

/*
 * Length of the well-formed UTF-8 sequence at p (RFC 3629 table: no
 * overlongs, no surrogates, nothing above U+10FFFF), or 0 if there is none.
 */
static size_t utf8_seq_len(const uint8_t *p, size_t avail)
{
	uint8_t b = p[0], lo = 0x80, hi = 0xbf;
	size_t n, i;

	if (b < 0x80)
		return 1;
	if (b < 0xc2)
		return 0; /* stray continuation or overlong 2-byte lead */
	if (b < 0xe0) {
		n = 2;
	} else if (b < 0xf0) {
		n = 3;
		if (b == 0xe0)
			lo = 0xa0; /* overlong */
		else if (b == 0xed)
			hi = 0x9f; /* surrogates */
	} else if (b < 0xf5) {
		n = 4;
		if (b == 0xf0)
			lo = 0x90; /* overlong */
		else if (b == 0xf4)
			hi = 0x8f; /* above U+10FFFF */
	} else {
		return 0;
	}
	if (avail < n || p[1] < lo || p[1] > hi)
		return 0;
	for (i = 2; i < n; i++)
		if (!is_cont(p[i]))
			return 0;
	return n;
}

int sw_text_unit(const uint8_t *p, size_t avail)
{
	size_t n = utf8_seq_len(p, avail);

	/* NUL would end the C string; DEL and C1 act on terminals. */
	if (n == 0)
		return -1; /* resync on the next byte */
	if (p[0] == 0 || p[0] == 0x7f || (n == 2 && p[0] == 0xc2 && p[1] < 0xa0))
		return -(int)n;
	return (int)n;
}

char *sw_text_json(const uint8_t *p, size_t len)
{
	size_t i = 0;
	char *out, *o;
	int n;

	if (!p)
		len = 0;
	/* Worst case every byte becomes four characters. */
	if (len > (SIZE_MAX - 1) / 4)
		return NULL;
	out = malloc(len * 4 + 1);
	if (!out)
		return NULL;
	o = out;
	while (i < len) {
		n = sw_text_unit(p + i, len - i);
		if (n < 0) {
			while (n++)
				o = put_hex(o, p[i++]);
			continue;
		}
		while (n--)
			*o++ = (char)p[i++];
	}
	*o = '\0';
	return out;
}

size_t sw_text_terminal(const uint8_t *p, size_t len, char *out, size_t outlen)
{
	size_t i, o = 0, need;
	uint8_t b;

	if (!out || outlen == 0)
		return 0;
	if (!p)
		len = 0;
	for (i = 0; i < len; i++) {
		b = p[i];
		if (b == '\\')
			need = 2;
		else if (b >= 0x20 && b < 0x7f)
			need = 1;
		else
			need = 4;
		/* Stop before an escape that would not fit whole. */
		if (need > outlen - 1 - o)
			break;
		if (need == 1) {
			out[o++] = (char)b;
		} else if (need == 2) {
			out[o++] = '\\';
			out[o++] = '\\';
		} else {
			put_hex(out + o, b);
			o += 4;
		}
	}
	out[o] = '\0';
	return o;
}
