/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Minimal test harness: each case prints "PASS name" or "FAIL name: why";
 * tests/run.sh sums those lines across every test program.
 */
#ifndef SMTPWATCH_CHECK_H
#define SMTPWATCH_CHECK_H
#include <stdio.h>
#include <string.h>

static int check_failed_cases;
static int check_case_failed;

#define CHECK(cond)                                                                        \
	do {                                                                               \
		if (!(cond)) {                                                             \
			printf("  check failed at %s:%d: %s\n", __FILE__, __LINE__, #cond);        \
			check_case_failed = 1;                                                  \
		}                                                                          \
	} while (0)

#define CHECK_STR(got, want)                                                                \
	do {                                                                               \
		const char *g_ = (got), *w_ = (want);                                       \
		if (!g_ || strcmp(g_, w_)) {                                                 \
			printf("  check failed at %s:%d: got \"%s\", want \"%s\"\n", __FILE__,     \
			       __LINE__, g_ ? g_ : "(null)", w_);                               \
			check_case_failed = 1;                                                  \
		}                                                                          \
	} while (0)

#define RUN(fn)                                                                            \
	do {                                                                               \
		check_case_failed = 0;                                                      \
		fn();                                                                      \
		printf("%s %s\n", check_case_failed ? "FAIL" : "PASS", #fn);                \
		check_failed_cases += check_case_failed;                                     \
	} while (0)

#define CHECK_EXIT() return check_failed_cases ? 1 : 0

#endif
