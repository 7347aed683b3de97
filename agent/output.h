/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
#ifndef SMTPWATCH_OUTPUT_H
#define SMTPWATCH_OUTPUT_H
#include <stdint.h>
#include <cjson/cJSON.h>

struct sw_output {
	int fd;
	char *path; /* NULL for stdout */
	char *buf;  /* whole lines only, so no reader ever sees half a line */
	size_t len, cap;
	uint64_t sequence;
	uint64_t written;
	uint64_t pending; /* lines in buf */
	uint64_t write_errors; /* lines that could not be written (disk full, ...) */
	char host[256];
	char host_id[64]; /* /etc/machine-id */
	char boot_id[64];
};

int sw_output_open(struct sw_output *o, const char *path);
void sw_output_close(struct sw_output *o);
/*
 * A new event with the fields every event has: @timestamp, event.action,
 * host.name. event.sequence is added when it is written, so it stays gap-free.
 */
cJSON *sw_event_new(struct sw_output *o, const char *action, uint64_t epoch_ns);
/* Writes one line and frees the event. */
int sw_output_write(struct sw_output *o, cJSON *ev);
void sw_output_flush(struct sw_output *o);
/* Object at a dotted path, created as needed: "process.parent". */
cJSON *sw_obj(cJSON *root, const char *dotted);

#endif
