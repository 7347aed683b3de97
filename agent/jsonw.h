/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * A JSON text writer into one reusable buffer, for the event hot path: the
 * session and connect events are written straight to text instead of being
 * built as cJSON trees and printed (two allocations per field, numbers through
 * printf and strtod). The text is what cJSON_PrintUnformatted() prints for the
 * same values: strings escaped as cJSON escapes them, and network or process
 * bytes made safe first exactly as sw_text_json() does (tests/unit/test_jsonw.c
 * checks both against cJSON).
 */
#ifndef SMTPWATCH_JSONW_H
#define SMTPWATCH_JSONW_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define JW_MAX_DEPTH 32

struct jw {
	char *buf;
	size_t len, cap;
	int depth;
	bool more[JW_MAX_DEPTH]; /* a member was written at this depth: next needs a comma */
	char closer[JW_MAX_DEPTH];
	bool oom;		 /* an allocation failed: the text is incomplete */
	int64_t ts_sec;		 /* jw_time(): the second last formatted, and its text */
	char ts_base[24];
};

/* Empty the text; the buffer is kept for the next one. */
void jw_reset(struct jw *w);
void jw_free(struct jw *w);
/* The text so far, NUL-terminated; NULL after an allocation failure. */
const char *jw_text(struct jw *w);

/* key is NULL for an array element or for the outermost value. */
void jw_obj(struct jw *w, const char *key);
void jw_arr(struct jw *w, const char *key);
void jw_end(struct jw *w); /* closes the innermost object or array */
/* A string the agent made (host name, rule name): JSON escaping only. */
void jw_str(struct jw *w, const char *key, const char *s);
/* Bytes from the network or a process: made safe (sw_text_unit), then escaped. */
void jw_bytes(struct jw *w, const char *key, const void *p, size_t len);
void jw_u64(struct jw *w, const char *key, uint64_t v);
void jw_int(struct jw *w, const char *key, int64_t v);
void jw_bool(struct jw *w, const char *key, bool v);
/* RFC 3339 UTC with microseconds, as sw_format_time() writes it. */
void jw_time(struct jw *w, const char *key, uint64_t epoch_ns);
/* Already valid JSON text (a number, a literal), copied as is. */
void jw_raw(struct jw *w, const char *key, const char *json, size_t len);

#endif
