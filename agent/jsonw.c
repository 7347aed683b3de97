// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "jsonw.h"
#include "textsafe.h"

static const char hexdig[] = "0123456789abcdef";

/* Room for n more bytes and the NUL; false (and oom set) if there is none. */
static bool grow(struct jw *w, size_t n)
{
	size_t cap;
	char *b;

	if (w->oom)
		return false;
	cap = w->cap ? w->cap : 4096;
	while (cap < w->len + n + 1)
		cap *= 2;
	b = realloc(w->buf, cap);
	if (!b) {
		w->oom = true;
		return false;
	}
	w->buf = b;
	w->cap = cap;
	return true;
}

static inline bool room(struct jw *w, size_t n)
{
	return (w->len + n + 1 <= w->cap && !w->oom) || grow(w, n);
}

static inline void put(struct jw *w, const char *s, size_t n)
{
	if (!room(w, n))
		return;
	memcpy(w->buf + w->len, s, n);
	w->len += n;
}

void jw_reset(struct jw *w)
{
	w->len = 0;
	w->depth = 0;
	w->more[0] = false;
	w->oom = false;
}

void jw_free(struct jw *w)
{
	free(w->buf);
	w->buf = NULL;
	w->len = w->cap = 0;
}

const char *jw_text(struct jw *w)
{
	if (!room(w, 0))
		return NULL;
	w->buf[w->len] = 0;
	return w->buf;
}

/* The escaping of cJSON's print_string_ptr: bytes >= 0x80 pass through. */
static void esc_ascii(struct jw *w, const char *s, size_t n)
{
	char *o;

	if (!room(w, n * 6)) /* worst case: every byte as \u00XX */
		return;
	o = w->buf + w->len;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = s[i];

		if (c >= 32 && c != '"' && c != '\\') {
			*o++ = c;
			continue;
		}
		*o++ = '\\';
		switch (c) {
		case '"': *o++ = '"'; break;
		case '\\': *o++ = '\\'; break;
		case '\b': *o++ = 'b'; break;
		case '\f': *o++ = 'f'; break;
		case '\n': *o++ = 'n'; break;
		case '\r': *o++ = 'r'; break;
		case '\t': *o++ = 't'; break;
		default:
			memcpy(o, "u00", 3);
			o[3] = hexdig[c >> 4];
			o[4] = hexdig[c & 15];
			o += 5;
		}
	}
	w->len = o - w->buf;
}

/* The comma before a member, and its key: a literal of ours, never escaped. */
static void member(struct jw *w, const char *key)
{
	size_t n = key ? strlen(key) : 0;
	char *o;

	if (!room(w, n + 4))
		return;
	o = w->buf + w->len;
	if (w->more[w->depth])
		*o++ = ',';
	w->more[w->depth] = true;
	if (key) {
		*o++ = '"';
		memcpy(o, key, n);
		o += n;
		*o++ = '"';
		*o++ = ':';
	}
	w->len = o - w->buf;
}

static void begin(struct jw *w, const char *key, char c)
{
	member(w, key);
	put(w, &c, 1);
	if (w->depth + 1 < JW_MAX_DEPTH) {
		w->depth++;
		w->more[w->depth] = false;
		w->closer[w->depth] = c == '{' ? '}' : ']';
	} else {
		w->oom = true; /* deeper than any event goes: a bug, not data */
	}
}

void jw_obj(struct jw *w, const char *key)
{
	begin(w, key, '{');
}

void jw_arr(struct jw *w, const char *key)
{
	begin(w, key, '[');
}

void jw_end(struct jw *w)
{
	if (w->depth == 0) {
		w->oom = true; /* more ends than opens: a bug, not data */
		return;
	}
	put(w, &w->closer[w->depth], 1);
	w->depth--;
}

void jw_str(struct jw *w, const char *key, const char *s)
{
	member(w, key);
	put(w, "\"", 1);
	esc_ascii(w, s, strlen(s));
	put(w, "\"", 1);
}

void jw_bytes(struct jw *w, const char *key, const void *data, size_t len)
{
	const uint8_t *p = data;
	size_t i = 0;

	member(w, key);
	put(w, "\"", 1);
	if (!p)
		len = 0;
	while (i < len) {
		size_t start = i;
		int n;

		/* Printable ASCII but '"' and '\\': as is, in one pass (most bytes). */
		while (i < len && p[i] >= 32 && p[i] < 0x7f && p[i] != '"' && p[i] != '\\')
			i++;
		if (i > start) {
			put(w, (const char *)p + start, i - start);
			continue;
		}
		/* C0 controls other than NUL, '"', '\\': JSON escaping only. */
		while (i < len && p[i] && (p[i] < 32 || p[i] == '"' || p[i] == '\\'))
			i++;
		if (i > start) {
			esc_ascii(w, (const char *)p + start, i - start);
			continue;
		}
		n = sw_text_unit(p + i, len - i);
		if (n > 0) { /* safe multi-byte UTF-8: as is */
			put(w, (const char *)p + i, n);
			i += n;
			continue;
		}
		/* "\xNN" as a JSON string: the backslash itself is escaped. */
		for (; n < 0; n++, i++) {
			char e[5] = { '\\', '\\', 'x', hexdig[p[i] >> 4], hexdig[p[i] & 15] };

			put(w, e, 5);
		}
	}
	put(w, "\"", 1);
}

static size_t fmt_u64(char *out, uint64_t v)
{
	char tmp[20];
	size_t n = 0;

	do {
		tmp[n++] = '0' + v % 10;
		v /= 10;
	} while (v);
	for (size_t i = 0; i < n; i++)
		out[i] = tmp[n - 1 - i];
	return n;
}

void jw_u64(struct jw *w, const char *key, uint64_t v)
{
	char num[24];

	member(w, key);
	put(w, num, fmt_u64(num, v));
}

void jw_int(struct jw *w, const char *key, int64_t v)
{
	char num[24];
	size_t n = 0;

	member(w, key);
	if (v < 0)
		num[n++] = '-';
	n += fmt_u64(num + n, v < 0 ? -(uint64_t)v : (uint64_t)v);
	put(w, num, n);
}

void jw_bool(struct jw *w, const char *key, bool v)
{
	member(w, key);
	put(w, v ? "true" : "false", v ? 4 : 5);
}

void jw_time(struct jw *w, const char *key, uint64_t epoch_ns)
{
	int64_t secs = epoch_ns / 1000000000ULL;
	unsigned us = epoch_ns % 1000000000ULL / 1000;
	char t[40];
	size_t n;

	/* The date and time of day change once a second: format them once. */
	if (secs != w->ts_sec || !w->ts_base[0]) {
		time_t tt = secs;
		struct tm tm;

		gmtime_r(&tt, &tm);
		strftime(w->ts_base, sizeof(w->ts_base), "%Y-%m-%dT%H:%M:%S", &tm);
		w->ts_sec = secs;
	}
	n = strlen(w->ts_base);
	t[0] = '"';
	memcpy(t + 1, w->ts_base, n);
	n++;
	t[n++] = '.';
	for (int d = 5; d >= 0; d--) {
		t[n + d] = '0' + us % 10;
		us /= 10;
	}
	n += 6;
	t[n++] = 'Z';
	t[n++] = '"';
	member(w, key);
	put(w, t, n);
}

void jw_raw(struct jw *w, const char *key, const char *json, size_t len)
{
	member(w, key);
	put(w, json, len);
}
