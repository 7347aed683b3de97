/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
#include <errno.h>
#include <sys/socket.h>

#include "check.h"
#include "community_id.h"

static const uint8_t v4_a[4] = { 1, 2, 3, 4 };
static const uint8_t v4_b[4] = { 5, 6, 7, 8 };

/* Published vectors from the Community ID spec's baseline. */
static void test_v4_seed0(void)
{
	char out[COMMUNITY_ID_LEN];

	CHECK(community_id_v1(0, AF_INET, v4_a, v4_b, 1122, 3344, 6, out, sizeof(out)) == 0);
	CHECK_STR(out, "1:wCb3OG7yAFWelaUydu0D+125CLM=");
}

static void test_v4_seed1(void)
{
	char out[COMMUNITY_ID_LEN];

	CHECK(community_id_v1(1, AF_INET, v4_a, v4_b, 1122, 3344, 6, out, sizeof(out)) == 0);
	CHECK_STR(out, "1:HhA1B+6CoLbiKPEs5nhNYN4XWfk=");
}

/* Both directions of a flow must get the same id. */
static void test_v4_reversed(void)
{
	char out[COMMUNITY_ID_LEN];

	CHECK(community_id_v1(0, AF_INET, v4_b, v4_a, 3344, 1122, 6, out, sizeof(out)) == 0);
	CHECK_STR(out, "1:wCb3OG7yAFWelaUydu0D+125CLM=");
	CHECK(community_id_v1(1, AF_INET, v4_b, v4_a, 3344, 1122, 6, out, sizeof(out)) == 0);
	CHECK_STR(out, "1:HhA1B+6CoLbiKPEs5nhNYN4XWfk=");
}

/*
 * Expected values computed independently in Python:
 *   import hashlib, base64, socket, struct
 *   sa, da = socket.inet_pton(AF_INET6, s), socket.inet_pton(AF_INET6, d)
 *   if (sa, sp) > (da, dp): swap
 *   '1:' + base64.b64encode(hashlib.sha1(struct.pack('!H', seed) + sa + da +
 *          struct.pack('!BBHH', proto, 0, sp, dp)).digest())
 * (the same script reproduces both published IPv4 vectors).
 */
static void test_v6(void)
{
	uint8_t a[16] = { 0x20, 0x01, 0x0d, 0xb8, [15] = 1 }; /* 2001:db8::1 */
	uint8_t b[16] = { 0x20, 0x01, 0x0d, 0xb8, [15] = 2 }; /* 2001:db8::2 */
	char out[COMMUNITY_ID_LEN];

	CHECK(community_id_v1(0, AF_INET6, a, b, 51234, 25, 6, out, sizeof(out)) == 0);
	CHECK_STR(out, "1:giTI7tm7dwG92jFXThQAht+RxqA=");
	CHECK(community_id_v1(0, AF_INET6, b, a, 25, 51234, 6, out, sizeof(out)) == 0);
	CHECK_STR(out, "1:giTI7tm7dwG92jFXThQAht+RxqA=");
}

/* Equal addresses: the ports decide the order (same Python script). */
static void test_same_addr(void)
{
	uint8_t ll[16] = { 0xfe, 0x80, [15] = 1 }; /* fe80::1 */
	uint8_t lo[4] = { 10, 0, 0, 1 };
	char out[COMMUNITY_ID_LEN];

	CHECK(community_id_v1(0, AF_INET6, ll, ll, 25, 51234, 6, out, sizeof(out)) == 0);
	CHECK_STR(out, "1:/URofxqftBnpSfSKggj2l8EoUFg=");
	CHECK(community_id_v1(0, AF_INET6, ll, ll, 51234, 25, 6, out, sizeof(out)) == 0);
	CHECK_STR(out, "1:/URofxqftBnpSfSKggj2l8EoUFg=");
	CHECK(community_id_v1(0, AF_INET, lo, lo, 3344, 1122, 17, out, sizeof(out)) == 0);
	CHECK_STR(out, "1:TPDukuiNLOVD/4ymga5mztnOz4Q=");
}

static void test_errors(void)
{
	char out[COMMUNITY_ID_LEN];

	CHECK(community_id_v1(0, 12345, v4_a, v4_b, 1, 2, 6, out, sizeof(out)) == -EINVAL);
	CHECK(community_id_v1(0, AF_INET, NULL, v4_b, 1, 2, 6, out, sizeof(out)) == -EINVAL);
	CHECK(community_id_v1(0, AF_INET, v4_a, v4_b, 1, 2, 6, NULL, 64) == -EINVAL);
	CHECK(community_id_v1(0, AF_INET, v4_a, v4_b, 1122, 3344, 6, out, 30) == -ENOSPC);
	/* 31 bytes is exactly "1:" + 28 + NUL. */
	CHECK(community_id_v1(0, AF_INET, v4_a, v4_b, 1122, 3344, 6, out, 31) == 0);
	CHECK_STR(out, "1:wCb3OG7yAFWelaUydu0D+125CLM=");
}

int main(void)
{
	RUN(test_v4_seed0);
	RUN(test_v4_seed1);
	RUN(test_v4_reversed);
	RUN(test_v6);
	RUN(test_same_addr);
	RUN(test_errors);
	CHECK_EXIT();
}
