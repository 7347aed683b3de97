/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Bytes from the network are never trusted: these turn them into text that is
 * safe for a JSON string or for a terminal. Unsafe bytes become "\xNN".
 */
#ifndef SMTPWATCH_TEXTSAFE_H
#define SMTPWATCH_TEXTSAFE_H
#include <stddef.h>
#include <stdint.h>

/*
 * Returns a malloc'd, NUL-terminated, valid UTF-8 string for
 * cJSON_CreateString(), or NULL on ENOMEM. Valid UTF-8 is kept, except NUL,
 * DEL and C1 controls; those and every byte of an invalid sequence become
 * "\xNN". Other C0 controls are kept: cJSON escapes them as \u00XX.
 */
char *sw_text_json(const uint8_t *p, size_t len);

/*
 * The unit at p that sw_text_json() handles as a whole: n > 0, a safe UTF-8
 * sequence of n bytes kept as is; n < 0, -n bytes each shown as "\xNN".
 * For writers that escape into their own buffer (agent/jsonw.c).
 */
int sw_text_unit(const uint8_t *p, size_t avail);

/*
 * Printable ASCII verbatim, '\' as "\\", every other byte as "\xNN".
 * NUL-terminates when outlen > 0, never cuts an escape in half.
 * Returns the number of characters written, not counting the NUL.
 */
size_t sw_text_terminal(const uint8_t *p, size_t len, char *out, size_t outlen);

#endif
