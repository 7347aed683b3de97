// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * libFuzzer harness for helo_classify(): the input is the HELO, optionally
 * followed by a 0 byte and a host name (so name comparisons see hostile
 * bytes on both sides). Beyond crashes, it traps on an error return, a rule
 * bit outside the enum, a score outside 0..100, and on HELO_MISSING for a
 * HELO that was sent.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "helo_rules.h"

#define ALL_RULES ((1u << HELO_RULE_MAX) - 1)

static void check(const uint8_t *helo, size_t len, const struct helo_host *host,
		  const struct helo_peer *peer)
{
	uint32_t rules = ~0u;
	int score;

	if (helo_classify(helo, len, host, peer, &rules))
		__builtin_trap();
	if (rules & ~ALL_RULES || rules & (1u << HELO_MISSING))
		__builtin_trap();
	score = helo_score(rules);
	if (score < 0 || score > 100)
		__builtin_trap();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const uint8_t addrs[][16] = {
		{ 192, 0, 2, 10 },
		{ 0x20, 0x01, 0x0d, 0xb8, [15] = 0x10 },
	};
	static const int fams[] = { AF_INET, AF_INET6 };
	const uint8_t *zero = memchr(data, 0, size);
	size_t hlen = zero ? (size_t)(zero - data) : size;
	const char *names[3] = { "mail.example.com", "mail", NULL };
	struct helo_host host = {
		.names = names,
		.n_names = 2,
		.addrs = addrs,
		.addr_families = fams,
		.n_addrs = 2,
	};
	struct helo_peer peer = {
		.family = AF_INET6,
		.addr = { [10] = 0xff, [11] = 0xff, 198, 51, 100, 7 },
		.name = "mx.example.net",
	};
	char *name = NULL;

	if (zero) {
		/* the bytes after the 0, as a C string: a host name and the peer's */
		name = strndup((const char *)zero + 1, size - hlen - 1);
		if (!name)
			return 0;
		names[2] = name;
		host.n_names = 3;
		peer.name = name;
	}
	check(data, hlen, &host, &peer);
	check(data, size, &host, NULL); /* the 0 byte included */
	check(data, hlen, NULL, NULL);
	free(name);
	return 0;
}
