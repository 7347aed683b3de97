/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
#ifndef SMTPWATCH_OUTPUT_H
#define SMTPWATCH_OUTPUT_H
#include <stdint.h>
#include <cjson/cJSON.h>
#include "syslog_out.h"

struct sw_output {
	int fd;
	char *path; /* NULL for stdout */
	char *buf;  /* whole lines only: a line is never split across writes or files */
	size_t len, cap;
	uint64_t sequence;
	uint64_t written;
	uint64_t pending; /* lines in buf */
	uint64_t write_errors; /* lines that could not be written (disk full, ...) */
	uint64_t size;	       /* bytes in the current file */
	uint64_t rotate_size;  /* rotate past this many bytes; 0: never */
	uint32_t rotate_keep;  /* rotated files kept: PATH.1.gz .. PATH.N.gz */
	uint64_t rotations, reopens;
	int compressor;	       /* pid of the child gzipping PATH.1, or 0 */
	struct sw_syslog *syslog; /* every line also goes there, when set */
	/* Mirrors of sequence and of the last sequence flushed, in memory that
	 * outlives the process (the pinned meta map), or NULL. */
	volatile uint64_t *seq_assigned, *seq_flushed;
	char error[512];	  /* why the journal cannot be opened or written, "" when it can */
	int failing;		  /* lines are being lost: said once on stderr */
	char host[256];
	char host_id[64]; /* /etc/machine-id */
	char boot_id[64];
};

int sw_output_open(struct sw_output *o, const char *path);
/* Rotation by size: PATH -> PATH.1.gz (gzip, by a child process) -> PATH.2.gz ... */
/* 0, or -EPERM with o->error set when others may write the journal's directory. */
int sw_output_set_rotation(struct sw_output *o, uint64_t size, uint32_t keep);
/* SIGHUP: logrotate moved the file; write to a new one at PATH. 0 or -errno. */
int sw_output_reopen(struct sw_output *o);
/* Reap a finished compressor (call on SIGCHLD or a tick). */
void sw_output_reap(struct sw_output *o, int wait);
void sw_output_close(struct sw_output *o);
/*
 * A new event with the fields every event has: @timestamp, event.action,
 * host.name. event.sequence is added when it is written, so it stays gap-free.
 */
cJSON *sw_event_new(struct sw_output *o, const char *action, uint64_t epoch_ns);
/* Writes one line and frees the event. */
int sw_output_write(struct sw_output *o, cJSON *ev);
/*
 * Writes one line the caller wrote as text (the event writer of report.c, no
 * tree): a whole JSON object, no newline. event.sequence is numbered here and
 * inserted at seq_at, the offset of the closing brace of the event object, so
 * that it stays gap-free and last in event as sw_output_write() writes it.
 * action gives the syslog severity. text NULL (the writer ran out of memory):
 * counted as a write error, no number used.
 */
int sw_output_line(struct sw_output *o, const char *text, size_t len, size_t seq_at,
		   const char *action);
void sw_output_flush(struct sw_output *o);
/* Object at a dotted path, created as needed: "process.parent". */
cJSON *sw_obj(cJSON *root, const char *dotted);

#endif
