/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
#ifndef SMTPWATCH_UTIL_H
#define SMTPWATCH_UTIL_H
#include <stddef.h>
#include <stdint.h>

/* sysexits.h codes of the command-line contract. */
#define EX_SW_USAGE 64
#define EX_SW_DATAERR 65
#define EX_SW_UNAVAILABLE 69
#define EX_SW_NOPERM 77
#define EX_SW_CONFIG 78

/* "1048576", "512K", "10M", "1G" -> bytes. Returns 0 or -EINVAL. */
int sw_parse_size(const char *s, uint64_t *out);
/* RFC 3339 UTC with microseconds, from nanoseconds since the epoch. */
void sw_format_time(uint64_t epoch_ns, char *buf, size_t len);
/* Address bytes (4 for AF_INET, 16 for AF_INET6) to text. */
void sw_format_addr(int family, const uint8_t *addr, char *buf, size_t len);
uint64_t sw_now_ns(int clock_id);
/* write() until done or an error: 0 or -errno. */
int sw_write_all(int fd, const void *buf, size_t n);

#endif
