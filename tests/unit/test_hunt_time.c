// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* The time and duration parsers behind 'smtpwatch hunt --at/--window'. */
#include <errno.h>
#include <stdint.h>

#include "check.h"
#include "timeparse.h"

/* 2026-11-23T06:25:00Z, from `date -u -d 2026-11-23T06:25:00Z +%s`. */
#define LISTED 1795415100LL
#define S 1000000LL

static int64_t t_of(const char *s)
{
	int64_t us = -42;

	return sw_parse_time(s, &us) ? INT64_MIN : us;
}

static void test_time_rfc3339(void)
{
	CHECK(t_of("2026-11-23T06:25:00Z") == LISTED * S);
	CHECK(t_of("2026-11-23t06:25:00z") == LISTED * S);
	CHECK(t_of("1970-01-01T00:00:00Z") == 0);
	CHECK(t_of("2000-03-01T00:00:00Z") == 951868800LL * S);
}

static void test_time_fraction(void)
{
	CHECK(t_of("2026-11-23T06:25:00.123456Z") == LISTED * S + 123456);
	CHECK(t_of("2026-11-23T06:25:00.5Z") == LISTED * S + 500000);
	/* nanoseconds are cut, not rounded: the journal has microseconds */
	CHECK(t_of("2026-11-23T06:25:00.123456999Z") == LISTED * S + 123456);
	CHECK(t_of("2026-11-23T06:25:00.000000000000000001Z") == LISTED * S);
	CHECK(t_of("1969-12-31T23:59:59.5Z") == -500000);
	CHECK(t_of("2026-11-23T06:25:00.Z") == INT64_MIN);
}

static void test_time_offsets(void)
{
	CHECK(t_of("2026-11-23T08:25:00+02:00") == LISTED * S);
	CHECK(t_of("2026-11-23T01:25:00-05:00") == LISTED * S);
	CHECK(t_of("2026-11-23T11:55:00.25+05:30") == LISTED * S + 250000);
	CHECK(t_of("2026-11-23T06:25:00+00:00") == LISTED * S);
	CHECK(t_of("2026-11-23T06:25:00-00:00") == LISTED * S);
	CHECK(t_of("2026-11-23T08:25:00+0200") == LISTED * S);
	/* across midnight and the year */
	CHECK(t_of("2026-11-22T23:25:00-07:00") == LISTED * S);
	CHECK(t_of("2027-01-01T00:30:00+01:00") == t_of("2026-12-31T23:30:00Z"));
	CHECK(t_of("2026-11-23T06:25:00+24:00") == INT64_MIN);
	CHECK(t_of("2026-11-23T06:25:00+02:60") == INT64_MIN);
	CHECK(t_of("2026-11-23T06:25:00+2:00") == INT64_MIN);
	CHECK(t_of("2026-11-23T06:25:00+02:00:00") == INT64_MIN);
}

static void test_time_plain_utc(void)
{
	CHECK(t_of("2026-11-23 06:25:00") == LISTED * S);
	CHECK(t_of("2026-11-23 06:25:00 UTC") == LISTED * S);
	CHECK(t_of("2026-11-23 06:25:00utc") == LISTED * S);
	CHECK(t_of("2026-11-23T06:25:00") == LISTED * S);
	CHECK(t_of("2026-11-23 06:25:00.75") == LISTED * S + 750000);
	CHECK(t_of("2026-11-23 06:25:00 ") == INT64_MIN);
	CHECK(t_of("2026-11-23 06:25:00 CET") == INT64_MIN);
}

static void test_time_calendar(void)
{
	CHECK(t_of("2024-02-29T00:00:00Z") == 1709164800LL * S);
	CHECK(t_of("2000-02-29T00:00:00Z") != INT64_MIN);
	CHECK(t_of("2025-02-29T00:00:00Z") == INT64_MIN);
	CHECK(t_of("1900-02-29T00:00:00Z") == INT64_MIN);
	CHECK(t_of("2026-04-31T00:00:00Z") == INT64_MIN);
	CHECK(t_of("2026-13-01T00:00:00Z") == INT64_MIN);
	CHECK(t_of("2026-00-01T00:00:00Z") == INT64_MIN);
	CHECK(t_of("2026-11-00T00:00:00Z") == INT64_MIN);
	CHECK(t_of("2026-11-23T24:00:00Z") == INT64_MIN);
	CHECK(t_of("2026-11-23T06:60:00Z") == INT64_MIN);
	CHECK(t_of("2026-11-23T06:25:61Z") == INT64_MIN);
	/* a leap second is the next second, not an error */
	CHECK(t_of("2016-12-31T23:59:60Z") == t_of("2017-01-01T00:00:00Z"));
	CHECK(t_of("0000-01-01T00:00:00Z") == -62167219200LL * S);
	CHECK(t_of("9999-12-31T23:59:59.999999Z") == 253402300799LL * S + 999999);
}

static void test_time_garbage(void)
{
	static const char *bad[] = {
		"", "now", "1795415100", "2026-11-23", "2026-11-23T06:25Z", "2026-11-23T06:25:00ZZ",
		"2026-11-23T06:25:00Z ", " 2026-11-23T06:25:00Z", "2026-11-23X06:25:00Z",
		"26-11-23T06:25:00Z", "2026-1-23T06:25:00Z", "2026-11-23T6:25:00Z",
		"+026-11-23T06:25:00Z", "2026-11-23T06:25:00+", "2026-11-23T06:25:00+02:",
		"2026-11-23T06:25:00\n", "2026-11-23T06:25:0\0Z",
	};
	int64_t us = 7;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		if (t_of(bad[i]) != INT64_MIN)
			printf("  accepted '%s'\n", bad[i]);
		CHECK(t_of(bad[i]) == INT64_MIN);
	}
	CHECK(sw_parse_time(NULL, &us) == -EINVAL);
	CHECK(us == 7); /* untouched on error */
}

static int64_t d_of(const char *s)
{
	int64_t us = -42;
	int r = sw_parse_duration(s, &us);

	return r ? r : us;
}

static void test_duration_forms(void)
{
	CHECK(d_of("600") == 600 * S);
	CHECK(d_of("0") == 0);
	CHECK(d_of("90s") == 90 * S);
	CHECK(d_of("10m") == 600 * S);
	CHECK(d_of("2h") == 7200 * S);
	CHECK(d_of("1d") == 86400 * S);
	CHECK(d_of("10M") == 600 * S);
	CHECK(d_of("1h30m") == 5400 * S);
	CHECK(d_of("1d2h3m4s") == (86400 + 7200 + 180 + 4) * S);
	CHECK(d_of("007m") == 420 * S);
}

static void test_duration_bad(void)
{
	static const char *bad[] = {
		"", "s", "m10", "-5", "+5", "1.5h", "10 m", " 10m", "10m ", "10x", "10mm",
		"1h30", "10min", "1w", "0x10",
	};
	int64_t us = 7;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		if (d_of(bad[i]) != -EINVAL)
			printf("  '%s' gave %lld\n", bad[i], (long long)d_of(bad[i]));
		CHECK(d_of(bad[i]) == -EINVAL);
	}
	CHECK(sw_parse_duration(NULL, &us) == -EINVAL);
	CHECK(us == 7);
}

static void test_duration_range(void)
{
	CHECK(d_of("36500d") == 36500LL * 86400 * S);
	CHECK(d_of("99999999999999999999999") == -ERANGE);
	CHECK(d_of("9223372036854775807") == -ERANGE);
	CHECK(d_of("9999999999d") == -ERANGE);
	CHECK(d_of("26687000d26687000d") == -ERANGE);
	/* the bound itself, in seconds, is accepted; one more is not */
	CHECK(d_of("2305843009213s") == 2305843009213LL * S);
	CHECK(d_of("2305843009214s") == -ERANGE);
}

int main(void)
{
	RUN(test_time_rfc3339);
	RUN(test_time_fraction);
	RUN(test_time_offsets);
	RUN(test_time_plain_utc);
	RUN(test_time_calendar);
	RUN(test_time_garbage);
	RUN(test_duration_forms);
	RUN(test_duration_bad);
	RUN(test_duration_range);
	CHECK_EXIT();
}
