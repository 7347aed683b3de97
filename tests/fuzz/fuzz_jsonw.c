// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * libFuzzer harness for the event writer (agent/jsonw.c): network bytes written
 * by jw_bytes() must be byte for byte what sw_text_json() then cJSON print, the
 * path it replaces. Traps on any difference.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cjson/cJSON.h>
#include "jsonw.h"
#include "textsafe.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct jw w;
	char *text = sw_text_json(data, size), *want;
	cJSON *obj;

	if (!text)
		return 0;
	obj = cJSON_CreateObject();
	cJSON_AddStringToObject(obj, "helo", text);
	cJSON_AddNumberToObject(obj, "len", (double)size);
	want = cJSON_PrintUnformatted(obj);
	jw_reset(&w);
	jw_obj(&w, NULL);
	jw_bytes(&w, "helo", data, size);
	jw_u64(&w, "len", size);
	jw_end(&w);
	if (!want || !jw_text(&w) || strcmp(jw_text(&w), want))
		__builtin_trap();
	cJSON_Delete(obj);
	free(want);
	free(text);
	return 0;
}
