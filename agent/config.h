/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * The configuration file (JSON, docs/config.md). Embedded defaults when the
 * default file is absent; every error names the file, the key and what is wrong.
 */
#ifndef SMTPWATCH_CONFIG_H
#define SMTPWATCH_CONFIG_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "agent.h"

#define SW_DEFAULT_CONFIG "/etc/smtpwatch/smtpwatch.json"

/* Fill o from the file at path over what o already holds. 0, or -1 with err set. */
int sw_config_load(const char *path, struct sw_run_opts *o, char *err, size_t errlen);
/* The built-in defaults (what runs with no file). */
void sw_config_defaults(struct sw_run_opts *o);
void sw_policy_free(struct sw_policy *p);
/* Everything the options own (policy lists, strings from the file). */
void sw_opts_free(struct sw_run_opts *o);
/* "192.0.2.0/24", "2001:db8::25/128", "192.0.2.25" -> cidr. 0 or -EINVAL. */
int sw_parse_cidr(const char *s, struct sw_cidr *c);

#endif
