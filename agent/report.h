/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* Events of the contract, built from a session: ECS names, smtp.* after Suricata. */
#ifndef SMTPWATCH_REPORT_H
#define SMTPWATCH_REPORT_H
#include <stdint.h>
#include "output.h"
#include "evidence.h"
#include "session.h"

/* The host's identity (machine id, boot id) and the cgroup2 mount, once, at start. */
void sw_report_init(const struct sw_output *o, const char *cgroup_mount);
/* Executable of (pid, start) from the kernel's exec cache; 0 or -ENOENT. */
typedef int (*sw_exec_lookup_fn)(void *ctx, uint32_t pid, uint64_t start_ns, char *buf,
				 size_t len);
/* Free the event writer's buffer, at exit. */
void sw_report_fini(void);
/* Fill the session's process fields from the connect record (and /proc if needed). */
void sw_report_resolve(struct sw_session *s, sw_exec_lookup_fn lookup, void *ctx);
/* process.entity_id: unique across pid reuse and reboots, stable across events. */
void sw_entity_id(uint32_t pid, uint64_t start_ns, char *out, size_t len);
/* connection_attempted, at connect. */
int sw_report_connect(struct sw_output *o, const struct sw_session *s, int64_t mono_to_real);
/* smtp_session (attributed) or smtp_unattributed (wire only), at close. */
int sw_report_session(struct sw_output *o, const struct sw_session *s, int64_t mono_to_real,
		      const char *ifname, const struct sw_evidence *e);
/* connection_denied: enforce mode refused a connect(). */
int sw_report_denied(struct sw_output *o, const struct sw_session *s, int64_t mono_to_real);
/* The once-per-window summary of a process that crossed the alert threshold. */
int sw_report_alert(struct sw_output *o, const struct sw_session *s, int64_t mono_to_real,
		    const struct sw_evidence *e, const struct bhv_table *bhv);

#endif
