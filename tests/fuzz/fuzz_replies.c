// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * libFuzzer harness for reply_listing(): the first byte picks the reply code,
 * the rest is the reply text. Beyond crashes and out-of-bounds reads, it
 * traps when an output string is unterminated, a list name is not the safe
 * charset, an ip is not an address, or a second call disagrees.
 */
#include <arpa/inet.h>
#include <stdint.h>
#include <string.h>

#include "replies.h"

static const int codes[] = { 220, 250, 354, 399, 421, 450, 451, 452, 550, 553, 554, 599, 600 };

static int safe_list(const char *s)
{
	for (; *s; s++)
		if (!((*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') ||
		      strchr(" ._+-", *s)))
			return 0;
	return 1;
}

static int valid_ip(const char *s)
{
	uint8_t a[16];

	return inet_pton(AF_INET, s, a) == 1 || inet_pton(AF_INET6, s, a) == 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct reply_listing a, b;
	int code, r;

	if (!size)
		return 0;
	code = codes[data[0] % (sizeof(codes) / sizeof(codes[0]))];
	r = reply_listing(code, data + 1, size - 1, &a);
	if (r != 0 && r != 1)
		__builtin_trap();
	if (!memchr(a.list, 0, sizeof(a.list)) || !memchr(a.ip, 0, sizeof(a.ip)))
		__builtin_trap();
	if (r == 0 && (a.list[0] || a.ip[0]))
		__builtin_trap();
	if (r == 1 && (!a.list[0] || code < 400 || code > 599))
		__builtin_trap();
	if (!safe_list(a.list) || (a.ip[0] && !valid_ip(a.ip)))
		__builtin_trap();
	if (reply_listing(code, data + 1, size - 1, &b) != r || memcmp(&a, &b, sizeof(a)))
		__builtin_trap();
	return 0;
}
