/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
#include <cjson/cJSON.h>
#include <iconv.h>
#include <stdint.h>
#include <stdlib.h>

#include "check.h"
#include "textsafe.h"

/*
 * Strict UTF-8 check through glibc's decoder, an oracle independent of
 * textsafe.c. Also rejects the code points sw_text_json must never emit.
 */
static int utf8_ok(const char *s)
{
	iconv_t cd = iconv_open("UTF-32LE", "UTF-8");
	size_t inlen = strlen(s), outlen = inlen * 4 + 4, i, n;
	char *in = (char *)s, *buf = malloc(outlen), *o = buf;
	int ok = 1;

	if (cd == (iconv_t)-1 || !buf) {
		free(buf);
		return 0;
	}
	if (iconv(cd, &in, &inlen, &o, &outlen) == (size_t)-1)
		ok = 0;
	n = (size_t)(o - buf) / 4;
	for (i = 0; ok && i < n; i++) {
		uint32_t cp;

		memcpy(&cp, buf + 4 * i, 4);
		if (cp == 0 || (cp >= 0x7f && cp <= 0x9f))
			ok = 0;
	}
	iconv_close(cd);
	free(buf);
	return ok;
}

/* sw_text_json -> cJSON string -> printed JSON, checked to be safe. */
static char *to_json(const void *p, size_t len)
{
	char *txt = sw_text_json(p, len), *js = NULL;
	cJSON *item, *back;
	const char *c;

	CHECK(txt != NULL);
	if (!txt)
		return NULL;
	CHECK(utf8_ok(txt));
	item = cJSON_CreateString(txt);
	CHECK(item != NULL);
	if (item)
		js = cJSON_PrintUnformatted(item);
	CHECK(js != NULL);
	if (js) {
		for (c = js; *c; c++)
			CHECK((unsigned char)*c >= 0x20);
		back = cJSON_Parse(js);
		CHECK(cJSON_IsString(back));
		if (cJSON_IsString(back))
			CHECK_STR(cJSON_GetStringValue(back), txt);
		cJSON_Delete(back);
	}
	cJSON_Delete(item);
	free(txt);
	return js;
}

#define CHECK_JSON(bytes, want)                                  \
	do {                                                     \
		char *js_ = to_json(bytes, sizeof(bytes) - 1);   \
		CHECK_STR(js_, want);                             \
		free(js_);                                        \
	} while (0)

static void test_json_controls(void)
{
	CHECK_JSON("a\0b", "\"a\\\\x00b\"");
	CHECK_JSON("\x1b[31m", "\"\\u001b[31m\"");
	CHECK_JSON("say \"hi\"", "\"say \\\"hi\\\"\"");
	CHECK_JSON("a\nb\rc\td", "\"a\\nb\\rc\\td\"");
	CHECK_JSON("x\x7fy", "\"x\\\\x7fy\"");
	CHECK_JSON("back\\slash", "\"back\\\\slash\"");
	CHECK_JSON("\x01\x1f", "\"\\u0001\\u001f\"");
}

static void test_json_invalid_utf8(void)
{
	CHECK_JSON("\xff", "\"\\\\xff\"");
	CHECK_JSON("\xc0\xaf", "\"\\\\xc0\\\\xaf\"");		/* overlong '/' */
	CHECK_JSON("\xe0\x80\xaf", "\"\\\\xe0\\\\x80\\\\xaf\""); /* overlong 3-byte */
	CHECK_JSON("\xed\xa0\x80", "\"\\\\xed\\\\xa0\\\\x80\""); /* U+D800 */
	CHECK_JSON("\xf4\x90\x80\x80", "\"\\\\xf4\\\\x90\\\\x80\\\\x80\""); /* > U+10FFFF */
	/* Truncated sequence: each stray byte escaped, the next char kept. */
	CHECK_JSON("\xe2\x82" "A", "\"\\\\xe2\\\\x82A\"");
	CHECK_JSON("ok\xe2\x82", "\"ok\\\\xe2\\\\x82\"");
	CHECK_JSON("\x80", "\"\\\\x80\"");
	CHECK_JSON("\xc2\x9b", "\"\\\\xc2\\\\x9b\""); /* C1 CSI */
	CHECK_JSON("\xc2\x85", "\"\\\\xc2\\\\x85\""); /* C1 NEL */
}

static void test_json_valid_kept(void)
{
	CHECK_JSON("h\xc3\xa9llo", "\"h\xc3\xa9llo\"");
	CHECK_JSON("\xf0\x9f\x98\x80", "\"\xf0\x9f\x98\x80\"");	/* U+1F600 */
	CHECK_JSON("\xc2\xa0\xe2\x82\xac", "\"\xc2\xa0\xe2\x82\xac\""); /* NBSP, euro */
	CHECK_JSON("\xf4\x8f\xbf\xbf", "\"\xf4\x8f\xbf\xbf\"");	/* U+10FFFF */
	CHECK_JSON("", "\"\"");
}

/* Random bytes: the output must always be safe UTF-8 that cJSON round-trips. */
static void test_json_random(void)
{
	uint32_t seed = 12345;
	uint8_t buf[64];
	int iter, fails_before = check_case_failed;
	size_t i, len;

	for (iter = 0; iter < 2000 && check_case_failed == fails_before; iter++) {
		seed = seed * 1103515245 + 12345;
		len = (seed >> 16) % sizeof(buf);
		for (i = 0; i < len; i++) {
			seed = seed * 1103515245 + 12345;
			buf[i] = (uint8_t)(seed >> 16);
		}
		free(to_json(buf, len));
	}
}

static void test_terminal(void)
{
	char out[64];

	CHECK(sw_text_terminal((const uint8_t *)"a\x1b[2Jb", 6, out, sizeof(out)) == 9);
	CHECK_STR(out, "a\\x1b[2Jb");
	CHECK(sw_text_terminal((const uint8_t *)"\0\\\xff", 3, out, sizeof(out)) == 10);
	CHECK_STR(out, "\\x00\\\\\\xff");
	CHECK(sw_text_terminal((const uint8_t *)"\t\n\r\x7f", 4, out, sizeof(out)) == 16);
	CHECK_STR(out, "\\x09\\x0a\\x0d\\x7f");
	CHECK(sw_text_terminal((const uint8_t *)"h\xc3\xa9", 3, out, sizeof(out)) == 9);
	CHECK_STR(out, "h\\xc3\\xa9");
	CHECK(sw_text_terminal((const uint8_t *)"Hi ~", 4, out, sizeof(out)) == 4);
	CHECK_STR(out, "Hi ~");
}

static void test_terminal_truncation(void)
{
	static const uint8_t in[] = "ab\x1b\\c\xff";
	/* Every length the output may be cut to: ends of whole pieces. */
	static const size_t cuts[] = { 0, 1, 2, 6, 8, 9, 13 };
	static const char full[] = "ab\\x1b\\\\c\\xff";
	char out[32];
	size_t outlen, n, want, i;

	for (outlen = 1; outlen <= sizeof(full) + 2; outlen++) {
		memset(out, 'Z', sizeof(out));
		n = sw_text_terminal(in, sizeof(in) - 1, out, outlen);
		for (want = 0, i = 0; i < sizeof(cuts) / sizeof(cuts[0]); i++)
			if (cuts[i] <= outlen - 1)
				want = cuts[i];
		CHECK(n == want);
		CHECK(out[n] == '\0');
		CHECK(strlen(out) == n);
		CHECK(!strncmp(out, full, n));
		CHECK(out[outlen] == 'Z'); /* nothing written past outlen */
	}
	memset(out, 'Z', sizeof(out));
	CHECK(sw_text_terminal(in, sizeof(in) - 1, out, 0) == 0);
	CHECK(out[0] == 'Z');
	CHECK(sw_text_terminal(NULL, 5, out, sizeof(out)) == 0);
	CHECK_STR(out, "");
}

int main(void)
{
	RUN(test_json_controls);
	RUN(test_json_invalid_utf8);
	RUN(test_json_valid_kept);
	RUN(test_json_random);
	RUN(test_terminal);
	RUN(test_terminal_truncation);
	CHECK_EXIT();
}
