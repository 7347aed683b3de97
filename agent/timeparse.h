/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Times and durations as a responder types them (from a blocklist listing)
 * and as the agent writes them (@timestamp, event.start). Pure functions.
 */
#ifndef SMTPWATCH_TIMEPARSE_H
#define SMTPWATCH_TIMEPARSE_H
#include <stdint.h>

/* Longest duration sw_parse_duration() accepts: TIME +/- it never overflows. */
#define SW_DURATION_MAX_US (INT64_MAX / 4)

/*
 * "2026-11-23T06:25:00Z", "2026-11-23T06:25:00.123456+02:00" (RFC 3339; 't'
 * or ' ' may replace 'T', 'z' 'Z'; any number of fraction digits, cut to
 * microseconds; "+hhmm" too), or "2026-11-23 06:25:00" with no offset or a
 * trailing " UTC", both meaning UTC. A leap second (:60) counts as the next
 * second. To microseconds since the epoch. Returns 0 or -EINVAL.
 */
int sw_parse_time(const char *s, int64_t *epoch_us);

/*
 * "600" (seconds), "90s", "10m", "2h", "1d", or a sum such as "1h30m"; units
 * are case-insensitive. To microseconds. Returns 0, -EINVAL, or -ERANGE above
 * SW_DURATION_MAX_US.
 */
int sw_parse_duration(const char *s, int64_t *us);

#endif
