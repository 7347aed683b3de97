/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* Events of the contract, built from a session: ECS names, smtp.* after Suricata. */
#ifndef SMTPWATCH_REPORT_H
#define SMTPWATCH_REPORT_H
#include <stdint.h>
#include "output.h"
#include "session.h"

/* Fill the session's process fields from the connect record (and /proc if needed). */
void sw_report_resolve(struct sw_session *s);
/* connection_attempted, at connect. */
int sw_report_connect(struct sw_output *o, const struct sw_session *s, int64_t mono_to_real);
/* smtp_session (attributed) or smtp_unattributed (wire only), at close. */
int sw_report_session(struct sw_output *o, const struct sw_session *s, int64_t mono_to_real,
		      const char *ifname);

#endif
