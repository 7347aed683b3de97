// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * libFuzzer harness for the JSON writer path of network bytes: sw_text_json()
 * then cJSON. Traps unless the printed line is valid JSON without a raw control
 * byte and decodes back to the sanitised text.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cjson/cJSON.h>
#include "textsafe.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *text = sw_text_json(data, size), *line;
	cJSON *obj, *back;

	if (!text)
		return 0;
	obj = cJSON_CreateObject();
	cJSON_AddStringToObject(obj, "helo", text);
	line = cJSON_PrintUnformatted(obj);
	if (!line)
		__builtin_trap();
	for (const unsigned char *p = (const unsigned char *)line; *p; p++)
		if (*p < 0x20 || *p == 0x7f)
			__builtin_trap();
	back = cJSON_Parse(line);
	if (!back || !cJSON_IsString(cJSON_GetObjectItem(back, "helo")) ||
	    strcmp(cJSON_GetObjectItem(back, "helo")->valuestring, text))
		__builtin_trap();
	cJSON_Delete(back);
	cJSON_Delete(obj);
	free(line);
	free(text);
	return 0;
}
