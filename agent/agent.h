/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
#ifndef SMTPWATCH_AGENT_H
#define SMTPWATCH_AGENT_H
#include <stdint.h>
#include "evidence.h"
#include "smtpwatch/events.h"

#define SW_VERSION "0.1.0"

struct sw_run_opts {
	const char *output;	 /* NULL or "-" for stdout */
	const char *socket_path;
	uint16_t ports[SW_MAX_PORTS];
	int nports;
	uint64_t ring_bytes;
	uint32_t max_sessions;
	int tc_mode;		 /* enum sw_tc_mode; SW_TC_NONE picks the best */
	uint32_t idle_timeout_s; /* a session with no packet for this long is reported */
	struct sw_evidence_cfg evidence;
};

/* smtpwatch check-helo: the rules each HELO trips, one JSON line each. */
int sw_cmd_check_helo(int argc, char **argv);

/* smtpwatch run: returns the process exit code. */
int sw_run(const struct sw_run_opts *o);

#endif
