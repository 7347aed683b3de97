/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Control socket: a unix stream socket, root only. One request line
 * {"cmd":"status"} per connection, one JSON line back. See docs/control.md.
 */
#ifndef SMTPWATCH_CONTROL_H
#define SMTPWATCH_CONTROL_H
#include <cjson/cJSON.h>

#define SW_DEFAULT_SOCKET "/run/smtpwatch/smtpwatch.sock"

/* Agent side. */
int sw_control_listen(const char *path);
/*
 * Serve one connection that is ready to read: answer(cmd) builds the reply.
 * Never blocks: a client that sends nothing usable is dropped.
 */
void sw_control_serve(int listen_fd, cJSON *(*answer)(const char *cmd, void *ctx), void *ctx);
void sw_control_close(int fd, const char *path);

/* Client side: the reply to cmd, or NULL with errno set. */
cJSON *sw_control_request(const char *path, const char *cmd);

#endif
