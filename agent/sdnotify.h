/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * systemd's readiness protocol without libsystemd (sd_notify(3)): one datagram
 * to $NOTIFY_SOCKET, a path or, with a leading '@', an abstract socket.
 */
#ifndef SMTPWATCH_SDNOTIFY_H
#define SMTPWATCH_SDNOTIFY_H
#include <stdint.h>

/*
 * Sends state ("READY=1", "WATCHDOG=1", "STOPPING=1", "STATUS=...", several
 * separated by '\n'). Returns 0 when sent or when not run by systemd
 * (NOTIFY_SOCKET unset), -errno when it could not be sent. Never blocks.
 */
int sw_sd_notify(const char *state);
/*
 * How often to send "WATCHDOG=1": half of $WATCHDOG_USEC in nanoseconds, or 0
 * when systemd expects none (unset, or $WATCHDOG_PID names another process).
 */
uint64_t sw_sd_watchdog_interval_ns(void);

#endif
