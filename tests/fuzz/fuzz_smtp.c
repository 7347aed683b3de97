/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * libFuzzer harness for smtp_parse(): the input is the client stream, a 0
 * byte, then the server stream. Beyond crashes, it traps when a returned
 * string points outside its stream or a count leaves its bound.
 */
#include <stdint.h>
#include <string.h>

#include "smtp.h"

static int inside(struct smtp_str s, const uint8_t *buf, size_t len)
{
	if (!s.p)
		return s.len == 0;
	return (uintptr_t)s.p >= (uintptr_t)buf && (uintptr_t)s.p + s.len <= (uintptr_t)buf + len;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const uint8_t *zero = memchr(data, 0, size);
	size_t clen = zero ? (size_t)(zero - data) : size;
	const uint8_t *server = zero ? zero + 1 : NULL;
	size_t slen = zero ? size - clen - 1 : 0;
	struct smtp_dialogue d;
	int i;

	if (smtp_parse(data, clen, server, slen, &d))
		__builtin_trap();
	if (d.n_rcpt < 0 || d.n_rcpt > SMTP_MAX_RCPT || d.n_replies < 0 ||
	    d.n_replies > SMTP_MAX_REPLIES || d.helo_verb[4])
		__builtin_trap();
	if (!inside(d.helo, data, clen) || !inside(d.mail_from, data, clen) ||
	    !inside(d.banner, server, slen))
		__builtin_trap();
	for (i = 0; i < d.n_rcpt; i++)
		if (!inside(d.rcpt_to[i], data, clen))
			__builtin_trap();
	for (i = 0; i < d.n_replies; i++)
		if (!inside(d.replies[i].text, server, slen))
			__builtin_trap();
	return 0;
}
