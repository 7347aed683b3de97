/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
#ifndef SMTPWATCH_AGENT_H
#define SMTPWATCH_AGENT_H
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include "evidence.h"
#include "smtpwatch/events.h"

#define SW_VERSION "0.1.0"

struct sw_cidr {
	uint8_t family; /* AF_INET or AF_INET6 */
	uint8_t prefix;
	uint8_t addr[16];
};

/* Who may open an enforced port. Strings and arrays are owned here. */
struct sw_policy {
	int mode; /* SW_MODE_MONITOR or SW_MODE_ENFORCE */
	uint16_t ports[SW_MAX_PORTS]; /* enforced ports (default 25) */
	int nports;
	char **executables;
	int n_executables;
	char **units;
	int n_units;
	char **cgroups;
	int n_cgroups;
	uint32_t *uids;
	int n_uids;
	struct sw_cidr *dests;
	int n_dests;
};

struct sw_run_opts {
	const char *config;	 /* the file, NULL for none */
	const char *output;	 /* NULL or "-" for stdout */
	const char *socket_path;
	uint64_t rotate_size;	 /* 0: never rotate the output file */
	uint32_t rotate_keep;
	gid_t socket_group;	 /* (gid_t)-1: the control socket is root's only */
	uint16_t ports[SW_MAX_PORTS];
	int nports;
	uint64_t ring_bytes;
	uint32_t max_sessions;
	int tc_mode;		 /* enum sw_tc_mode; SW_TC_NONE picks the best */
	uint32_t idle_timeout_s; /* a session with no packet for this long is reported */
	struct sw_evidence_cfg evidence;
	char *mta_store[32];	 /* rules.mtas from the file */
	char *output_store, *socket_store; /* strings from the file */
	const char *syslog_target;  /* udp://, tcp://, unix:// or NULL */
	const char *metrics_file;   /* Prometheus textfile, or NULL */
	char *syslog_store, *metrics_store;
	bool pin;		    /* keep the hooks and state pinned across restarts */
	const char *pin_dir;	    /* NULL: SW_DEFAULT_PIN_DIR */
	char *pin_dir_store;
	struct sw_policy policy;
	/* Re-reads the file and re-applies the command line; for SIGHUP. */
	int (*reload)(struct sw_run_opts *o, char *err, size_t errlen);
	int argc;
	char **argv;
};

/* smtpwatch check-helo: the rules each HELO trips, one JSON line each. */
int sw_cmd_check_helo(int argc, char **argv);
/* smtpwatch hunt: the sessions behind a blocklist listing (HELO, time), from the journal. */
int sw_cmd_hunt(int argc, char **argv);

/* smtpwatch top: the agent's ranking of SMTP processes, live or in batch. */
int sw_cmd_top(int argc, char **argv);

/* smtpwatch run: returns the process exit code. */
int sw_run(struct sw_run_opts *o);

#endif
