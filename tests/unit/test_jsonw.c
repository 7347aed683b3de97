/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * The direct JSON writer against the oracle it replaces in the hot path:
 * sw_text_json() then cJSON_PrintUnformatted() must give the same bytes.
 */
#include <cjson/cJSON.h>
#include <stdint.h>
#include <stdlib.h>

#include "check.h"
#include "jsonw.h"
#include "textsafe.h"
#include "util.h"

static char *cjson_of_bytes(const uint8_t *p, size_t len)
{
	char *t = sw_text_json(p, len), *js;
	cJSON *s = cJSON_CreateString(t);

	js = cJSON_PrintUnformatted(s);
	cJSON_Delete(s);
	free(t);
	return js;
}

static uint32_t rnd(uint32_t *seed)
{
	*seed = *seed * 1103515245u + 12345u;
	return *seed >> 8;
}

/* Bytes biased to what is hard: controls, quotes, backslashes, UTF-8 leads and tails. */
static uint8_t hard_byte(uint32_t *seed)
{
	static const uint8_t pick[] = { 0x00, 0x01, 0x08, 0x09, 0x0a, 0x0c, 0x0d, 0x1b, 0x1f, '"',
					'\\', '/', 'a', 'Z', ' ', 0x7f, 0x80, 0x9f, 0xa0, 0xbf,
					0xc0, 0xc2, 0xc3, 0xdf, 0xe0, 0xe2, 0xed, 0xef, 0xf0, 0xf4,
					0xf5, 0xff };
	uint32_t r = rnd(seed);

	return r % 3 ? pick[r / 3 % sizeof(pick)] : (uint8_t)(r >> 4);
}

static void test_jsonw_bytes_match_cjson(void)
{
	struct jw w = { 0 };
	uint32_t seed = 6;
	uint8_t buf[96];

	for (int iter = 0; iter < 200000 && !check_case_failed; iter++) {
		size_t len = rnd(&seed) % sizeof(buf);
		char *want;

		for (size_t i = 0; i < len; i++)
			buf[i] = hard_byte(&seed);
		jw_reset(&w);
		jw_bytes(&w, NULL, buf, len);
		want = cjson_of_bytes(buf, len);
		CHECK_STR(jw_text(&w), want);
		free(want);
	}
	jw_free(&w);
}

static void test_jsonw_str_match_cjson(void)
{
	struct jw w = { 0 };
	uint32_t seed = 7;
	char buf[64];

	for (int iter = 0; iter < 50000 && !check_case_failed; iter++) {
		size_t len = rnd(&seed) % (sizeof(buf) - 1);
		cJSON *s;
		char *want;

		for (size_t i = 0; i < len; i++) {
			buf[i] = hard_byte(&seed);
			if (!buf[i])
				buf[i] = 'x';
		}
		buf[len] = 0;
		jw_reset(&w);
		jw_str(&w, NULL, buf);
		s = cJSON_CreateString(buf);
		want = cJSON_PrintUnformatted(s);
		CHECK_STR(jw_text(&w), want);
		free(want);
		cJSON_Delete(s);
	}
	jw_free(&w);
}

/* A nested document, field for field, as report.c writes events. */
static void test_jsonw_document(void)
{
	struct jw w = { 0 };
	cJSON *root = cJSON_CreateObject(), *o, *a, *r;
	uint64_t nums[] = { 0, 1, 9, 10, 65535, 2147483647ULL, 2147483648ULL, 4294967296ULL,
			    1763900000123456ULL / 1000, 999999999999999ULL };
	char *want, ts[64];

	jw_obj(&w, NULL);
	jw_time(&w, "@timestamp", 1763900000123456789ULL);
	sw_format_time(1763900000123456789ULL, ts, sizeof(ts));
	cJSON_AddStringToObject(root, "@timestamp", ts);
	jw_obj(&w, "event");
	o = cJSON_AddObjectToObject(root, "event");
	for (size_t i = 0; i < sizeof(nums) / sizeof(nums[0]); i++) {
		char key[8] = { 'n', (char)('0' + i), 0 };

		jw_u64(&w, key, nums[i]);
		cJSON_AddNumberToObject(o, key, (double)nums[i]);
	}
	jw_int(&w, "neg", -42);
	cJSON_AddNumberToObject(o, "neg", -42);
	jw_end(&w);
	jw_arr(&w, "empty");
	jw_end(&w);
	cJSON_AddArrayToObject(root, "empty");
	jw_arr(&w, "replies");
	a = cJSON_AddArrayToObject(root, "replies");
	for (int i = 0; i < 3; i++) {
		jw_obj(&w, NULL);
		r = cJSON_CreateObject();
		jw_u64(&w, "code", 250 + i);
		cJSON_AddNumberToObject(r, "code", 250 + i);
		jw_bytes(&w, "text", "ok\r\n\x01\xff", 6);
		{
			char *t = sw_text_json((const uint8_t *)"ok\r\n\x01\xff", 6);

			cJSON_AddStringToObject(r, "text", t);
			free(t);
		}
		jw_end(&w);
		cJSON_AddItemToArray(a, r);
	}
	jw_end(&w);
	jw_obj(&w, "flags");
	o = cJSON_AddObjectToObject(root, "flags");
	jw_bool(&w, "t", true);
	jw_bool(&w, "f", false);
	cJSON_AddBoolToObject(o, "t", 1);
	cJSON_AddBoolToObject(o, "f", 0);
	jw_obj(&w, "empty");
	cJSON_AddObjectToObject(o, "empty");
	jw_end(&w);
	jw_end(&w);
	jw_end(&w);
	want = cJSON_PrintUnformatted(root);
	CHECK_STR(jw_text(&w), want);
	CHECK(w.depth == 0);
	free(want);
	cJSON_Delete(root);

	/* Reused: a second document starts clean. */
	jw_reset(&w);
	jw_obj(&w, NULL);
	jw_str(&w, "k", "v");
	jw_end(&w);
	CHECK_STR(jw_text(&w), "{\"k\":\"v\"}");
	jw_end(&w); /* one end too many is refused, not written */
	CHECK(jw_text(&w) == NULL);
	jw_free(&w);
}

static void test_jsonw_time(void)
{
	struct jw w = { 0 };
	uint64_t t[] = { 0, 999, 1000, 1763900000000000000ULL, 1763900000999999999ULL,
			 1763900001000001000ULL, 4102444799999999000ULL };
	char want[80], ts[64];

	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		jw_reset(&w);
		jw_time(&w, NULL, t[i]);
		sw_format_time(t[i], ts, sizeof(ts));
		snprintf(want, sizeof(want), "\"%s\"", ts);
		CHECK_STR(jw_text(&w), want);
	}
	jw_free(&w);
}

int main(void)
{
	RUN(test_jsonw_bytes_match_cjson);
	RUN(test_jsonw_str_match_cjson);
	RUN(test_jsonw_document);
	RUN(test_jsonw_time);
	CHECK_EXIT();
}
