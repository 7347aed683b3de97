/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Community ID v1 flow hash (https://github.com/corelight/community-id-spec),
 * so flows can be joined with Zeek/Suricata logs of the same traffic.
 */
#ifndef SMTPWATCH_COMMUNITY_ID_H
#define SMTPWATCH_COMMUNITY_ID_H
#include <stddef.h>
#include <stdint.h>

/* "1:" + 28 base64 characters + NUL is 31; leave room. */
#define COMMUNITY_ID_LEN 64

/*
 * Writes "1:<base64 sha1>" into out. Addresses are in network byte order
 * (4 bytes for AF_INET, 16 for AF_INET6); ports are in host order.
 * Ports are hashed as given: ICMP type/code mapping is the caller's job.
 * Returns 0, -EINVAL (bad family or NULL pointer) or -ENOSPC (outlen too small).
 */
int community_id_v1(uint16_t seed, int family, const uint8_t *saddr, const uint8_t *daddr,
		    uint16_t sport, uint16_t dport, uint8_t proto, char *out, size_t outlen);

/*
 * A short stable identifier (20 base64 characters of SHA-1) for data, such as
 * process.entity_id from host id, boot id, pid and start time.
 */
void sw_digest_id(const void *data, size_t len, char *out, size_t outlen);

#endif
