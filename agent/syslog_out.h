/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Syslog output: each JSON event line as one RFC 5424 message,
 *
 *   <PRI>1 TIMESTAMP HOSTNAME APP-NAME PROCID - - @cee:{json}
 *
 * facility daemon, to "udp://HOST:PORT", "tcp://HOST:PORT" (RFC 6587 octet
 * counting: "LEN SP MSG") or "unix:///dev/log" (a datagram socket). The "@cee:"
 * cookie is what rsyslog's mmjsonparse looks for.
 *
 * Nothing here blocks the caller after open: sockets are non-blocking, and
 * messages that cannot leave now wait in a bounded buffer (whole messages only)
 * while the collector is away; what does not fit is dropped and counted.
 * A TCP connection that breaks is re-made with exponential backoff
 * (0.5 s doubling to 30 s, with jitter so a fleet does not reconnect at once).
 *
 * Event loop: sw_syslog_fd() is one stable descriptor for the whole life of the
 * output (an epoll set holding the socket and a backoff timer), so reconnects
 * never change what the caller registered. Add it once with EPOLLIN; when it is
 * readable, call sw_syslog_poll(). Calling sw_syslog_poll() from a timer works
 * too and is harmless.
 */
#ifndef SMTPWATCH_SYSLOG_OUT_H
#define SMTPWATCH_SYSLOG_OUT_H
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#define SW_SYSLOG_BUFFER_DEFAULT (4u << 20) /* bytes waiting while the collector is away */
#define SW_SYSLOG_UDP_MAX 65507		   /* largest UDP payload over IPv4 */

/* RFC 5424 severities used for events. */
enum {
	SW_SYSLOG_WARNING = 4, /* smtp_alert */
	SW_SYSLOG_NOTICE = 5,  /* connection_denied */
	SW_SYSLOG_INFO = 6,    /* everything else */
};

enum sw_syslog_transport { SW_SYSLOG_UDP = 1, SW_SYSLOG_TCP, SW_SYSLOG_UNIX };

struct sw_syslog {
	/* Set before sw_syslog_open() to change it; 0 means the default. */
	size_t buffer_limit;

	/* Counters, read them at any time. */
	uint64_t sent;	     /* messages handed whole to the kernel */
	uint64_t dropped;    /* messages lost: buffer full, too large, still queued at close */
	uint64_t reconnects; /* times the collector was reached again after losing it */
	size_t buffered_bytes; /* bytes waiting to be sent */
	uint64_t buffered;     /* messages waiting to be sent */

	/* Private. */
	int transport;
	int state;
	int fd;	 /* the socket, -1 when there is none */
	int efd; /* epoll set: the socket and the timer; what sw_syslog_fd() returns */
	int tfd; /* timerfd (CLOCK_MONOTONIC): backoff and connect deadline */
	uint32_t fd_events; /* what fd is registered for in efd, 0 when not */
	struct sockaddr_storage addr;
	socklen_t addrlen;
	char target[160];
	char header_tail[400]; /* " HOSTNAME APP-NAME PROCID - - @cee:" */
	size_t header_tail_len;
	char *buf; /* queued records: [uint32_t len][bytes]... */
	size_t cap;
	size_t start; /* first record not yet delivered (TCP: not acknowledged) */
	size_t wr;    /* TCP: first record not yet written whole; start <= wr <= end */
	size_t end;
	size_t head_done; /* TCP: bytes of the record at wr already written */
	uint64_t backoff_ns, retry_at_ns, connect_deadline_ns, up_at_ns;
	int lost; /* the collector was reached, then lost: the next success is a reconnect */
	uint32_t rand_state;
};

/*
 * Parses target, resolves its host (once, here: this may wait for DNS; give an
 * address to avoid that) and, for TCP, starts connecting. A collector that is
 * not there yet is not an error: messages wait for it. app_name NULL means
 * "smtpwatch", hostname NULL the host's name. Returns 0, or -errno with one
 * sentence in err.
 */
int sw_syslog_open(struct sw_syslog *s, const char *target, const char *app_name,
		   const char *hostname, char *err, size_t errlen);
/*
 * Queues one event line (a trailing newline is removed) and sends what it can.
 * epoch_ns is the message TIMESTAMP, CLOCK_REALTIME (0: now); severity 0-7.
 * Returns 0 when the message was sent or queued, -ENOBUFS when it was dropped
 * (counted), -EMSGSIZE when it can never be sent (counted).
 */
int sw_syslog_send(struct sw_syslog *s, const char *json_line, size_t len, uint64_t epoch_ns,
		   int severity);
/*
 * Connects, reconnects after the backoff, detects a collector that went away,
 * sends what is queued. now_ns is CLOCK_MONOTONIC. Returns 0, or -errno of the
 * last transport error (informational: the output keeps trying).
 */
int sw_syslog_poll(struct sw_syslog *s, uint64_t now_ns);
/* The descriptor to poll for EPOLLIN (stable across reconnects), -1 if not open. */
int sw_syslog_fd(const struct sw_syslog *s);
/* 1 when a TCP connection is up or a datagram socket is delivering. */
int sw_syslog_connected(const struct sw_syslog *s);
/* The severity for an event.action: alerts warning, denials notice, the rest info. */
int sw_syslog_severity(const char *action);
/*
 * Sends what is queued for at most timeout_ms (so a clean shutdown delivers the
 * last events), then closes. What is still queued is counted as dropped.
 */
void sw_syslog_close(struct sw_syslog *s, int timeout_ms);

#endif
