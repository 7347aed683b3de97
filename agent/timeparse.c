// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>

#include "timeparse.h"

#define US_PER_S 1000000LL

static bool is_digit(char c)
{
	return c >= '0' && c <= '9';
}

static char lower(char c)
{
	return c >= 'A' && c <= 'Z' ? c + ('a' - 'A') : c;
}

/* Exactly n digits at *p, advancing it. Returns the value or -1. */
static int digits(const char **p, int n)
{
	int v = 0;

	for (int i = 0; i < n; i++) {
		if (!is_digit((*p)[i]))
			return -1;
		v = v * 10 + ((*p)[i] - '0');
	}
	*p += n;
	return v;
}

static bool leap(int y)
{
	return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static int days_in_month(int y, int m)
{
	static const int d[] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };

	return m == 2 && leap(y) ? 29 : d[m - 1];
}

/*
 * Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's
 * days_from_civil): timegm() is neither pure nor in C11.
 */
static int64_t days_from_civil(int64_t y, int m, int d)
{
	int64_t era, yoe, doy, doe;

	y -= m <= 2;
	era = (y >= 0 ? y : y - 399) / 400;
	yoe = y - era * 400;
	doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
	doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + doe - 719468;
}

/* "Z", "+hh:mm", "-hhmm", " UTC" or nothing, to seconds east of UTC. */
static int parse_offset(const char *p, int *off_s)
{
	int sign, hh, mm;

	*off_s = 0;
	if (!*p)
		return 0;
	if ((*p == 'Z' || *p == 'z') && !p[1])
		return 0;
	if (*p == ' ')
		p++;
	if (lower(p[0]) == 'u' && lower(p[1]) == 't' && lower(p[2]) == 'c' && !p[3])
		return 0;
	if (*p != '+' && *p != '-')
		return -EINVAL;
	sign = *p++ == '-' ? -1 : 1;
	hh = digits(&p, 2);
	if (*p == ':')
		p++;
	mm = digits(&p, 2);
	if (hh < 0 || hh > 23 || mm < 0 || mm > 59 || *p)
		return -EINVAL;
	*off_s = sign * (hh * 3600 + mm * 60);
	return 0;
}

int sw_parse_time(const char *s, int64_t *epoch_us)
{
	const char *p = s;
	int y, mo, d, h, mi, sec, off_s, scale;
	int64_t frac = 0, t;

	if (!s)
		return -EINVAL;
	y = digits(&p, 4);
	if (y < 0 || *p++ != '-')
		return -EINVAL;
	mo = digits(&p, 2);
	if (mo < 1 || mo > 12 || *p++ != '-')
		return -EINVAL;
	d = digits(&p, 2);
	if (d < 1 || d > days_in_month(y, mo))
		return -EINVAL;
	if (*p != 'T' && *p != 't' && *p != ' ')
		return -EINVAL;
	p++;
	h = digits(&p, 2);
	if (h < 0 || h > 23 || *p++ != ':')
		return -EINVAL;
	mi = digits(&p, 2);
	if (mi < 0 || mi > 59 || *p++ != ':')
		return -EINVAL;
	sec = digits(&p, 2);
	if (sec < 0 || sec > 60)
		return -EINVAL;
	if (*p == '.') {
		p++;
		if (!is_digit(*p))
			return -EINVAL;
		/* Microseconds are the journal's resolution: more digits are cut. */
		for (scale = 100000; is_digit(*p); p++, scale /= 10)
			frac += (*p - '0') * scale;
	}
	if (parse_offset(p, &off_s))
		return -EINVAL;
	t = days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + sec - off_s;
	*epoch_us = t * US_PER_S + frac;
	return 0;
}

int sw_parse_duration(const char *s, int64_t *us)
{
	const char *p = s;
	int64_t total = 0, v, unit;
	bool first = true;

	if (!s || !*s)
		return -EINVAL;
	while (*p) {
		if (!is_digit(*p))
			return -EINVAL;
		for (v = 0; is_digit(*p); p++) {
			if (v > SW_DURATION_MAX_US / 10)
				return -ERANGE;
			v = v * 10 + (*p - '0');
		}
		switch (lower(*p)) {
		case '\0':
			/* A bare number is seconds, but "1h30" is a typo, not 1h30s. */
			if (!first)
				return -EINVAL;
			unit = US_PER_S;
			break;
		case 's':
			unit = US_PER_S;
			p++;
			break;
		case 'm':
			unit = 60 * US_PER_S;
			p++;
			break;
		case 'h':
			unit = 3600 * US_PER_S;
			p++;
			break;
		case 'd':
			unit = 86400 * US_PER_S;
			p++;
			break;
		default:
			return -EINVAL;
		}
		if (v > (SW_DURATION_MAX_US - total) / unit)
			return -ERANGE;
		total += v * unit;
		first = false;
	}
	*us = total;
	return 0;
}
