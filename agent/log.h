/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
#ifndef SMTPWATCH_LOG_H
#define SMTPWATCH_LOG_H
#include <stdio.h>

extern int sw_verbose;

#define pr_warn(...) fprintf(stderr, "smtpwatch: " __VA_ARGS__)
#define pr_info(...) fprintf(stderr, "smtpwatch: " __VA_ARGS__)
#define pr_debug(...)                                                                      \
	do {                                                                               \
		if (sw_verbose)                                                            \
			fprintf(stderr, "smtpwatch: " __VA_ARGS__);                         \
	} while (0)

#endif
