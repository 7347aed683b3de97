/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * What survives a restart of the agent. With --pin the ring buffer, the flow
 * state maps and every link are pinned in a directory of the BPF filesystem, so
 * the hooks keep recording while no agent runs; a new agent reuses the maps,
 * swaps its programs into the same links, consumes what queued up, and takes
 * back the sessions the previous agent had open from a state file it wrote on
 * SIGTERM. A small memory-mapped "meta" array, pinned beside them, carries the
 * output's sequence number and the count of open sessions, so that even after
 * kill -9 the sequence continues without a gap and what was lost is counted.
 */
#ifndef SMTPWATCH_PERSIST_H
#define SMTPWATCH_PERSIST_H
#include <stdbool.h>
#include <stdint.h>

struct bhv_table;

#define SW_DEFAULT_PIN_DIR "/sys/fs/bpf/smtpwatch"

struct sw_sessions;
struct smtpwatch_bpf;

/* Value of the pinned meta array: written by the agent only. */
struct sw_meta {
	uint64_t magic;
	uint64_t abi;	      /* hash of include/smtpwatch/events.h */
	uint64_t generation;  /* random, at creation: ties the state file to these maps */
	uint64_t seq_assigned; /* event.sequence handed out */
	uint64_t seq_flushed;  /* ... of which written (or counted lost) */
	uint64_t open_sessions;
	uint64_t restarts;
	uint32_t clean;	      /* the last agent stopped cleanly and saved its sessions */
	uint32_t pid;
};

struct sw_persist {
	bool keep;	  /* --pin: leave everything pinned at exit */
	bool active;	  /* using the pin directory */
	bool resumed;	  /* found an earlier agent's state */
	bool was_clean;	  /* ... which stopped cleanly */
	char dir[256];
	int dir_fd;	  /* flock()ed while this agent runs */
	int meta_fd;
	struct sw_meta *meta;
	uint64_t prev_pid;
	uint64_t restored;     /* sessions taken back from the state file */
	uint64_t procs_restored; /* processes whose evidence came back with them */
	uint64_t lost_sessions; /* open when the previous agent died */
	uint64_t lost_lines;    /* assigned a sequence, never written */
	uint64_t fresh_maps;    /* pinned maps that could not be reused */
	char error[256];	/* why pinning is off, when it was asked for */
};

/*
 * Before the BPF object is loaded: lock the directory, adopt an earlier
 * agent's pins when they match this build, and point the maps that must survive
 * at their pin paths. keep: --pin. Returns 0, or a sysexits code after one
 * sentence (another agent holds the directory).
 */
int sw_persist_open(struct sw_persist *p, const char *dir, bool keep, struct smtpwatch_bpf *skel);
/* Path of a pinned object in the directory: 0, or -ENAMETOOLONG. */
int sw_persist_path(const struct sw_persist *p, const char *name, char *buf, size_t len);
/* At exit: without keep, unpin everything (the hooks go with the agent). */
void sw_persist_close(struct sw_persist *p, bool clean);
/* `smtpwatch cleanup`: remove what a pinned agent left. Returns an exit code. */
int sw_persist_cleanup(const char *dir, const char *state_file, bool quiet);

/* The sessions the agent has open, and its per-process evidence (bhv, may be NULL),
 * for the next one. 0 or -errno. */
int sw_persist_save_sessions(const struct sw_persist *p, const struct sw_sessions *t,
			     const struct bhv_table *bhv, const char *path);
/* Take them back; the file is removed once read. Returns the count of sessions or
 * -errno; *procs gets the processes whose evidence came back, or -errno for it alone
 * (a file without it, or with another build's records). */
long sw_persist_load_sessions(const struct sw_persist *p, struct sw_sessions *t,
			      struct bhv_table *bhv, const char *path, long *procs);

#endif
