/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Prometheus text exposition format (version 0.0.4) from the status document
 * the control socket serves (docs/control.md), for node_exporter's textfile
 * collector and `smtpwatch status`.
 *
 * Names: smtpwatch_ prefix; every number in status.counters is a counter
 * (smtpwatch_KEY_total) except the gauges sessions_open, processes_tracked and
 * ring_*; every key of status.losses is smtpwatch_losses_total{cause="KEY"}, so
 * a new loss or counter shows up without a change here.
 */
#ifndef SMTPWATCH_METRICS_H
#define SMTPWATCH_METRICS_H
#include <cjson/cJSON.h>

/*
 * The metrics text, malloc'd (free() it), NULL when out of memory. status NULL
 * (no agent answered) renders only "smtpwatch_up 0".
 */
char *sw_metrics_render(const cJSON *status);
/*
 * Replaces path with text atomically: a temporary file in the same directory
 * (".NAME.XXXXXX", which the textfile collector ignores), fsync, mode 0644,
 * rename, fsync of the directory. Readers see the old file or the new one,
 * never half of one. Returns 0 or -errno.
 */
int sw_metrics_write_file(const char *path, const char *text);

#endif
