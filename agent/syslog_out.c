// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * RFC 5424 syslog output for event lines; see syslog_out.h for the contract.
 *
 * The queue is one byte buffer of records, [uint32_t len][wire bytes], where
 * the wire bytes are what goes on the socket: the message for datagrams,
 * "LEN SP MSG" for TCP. Over TCP a record stays queued after it is written until
 * the collector's kernel has acknowledged it (SIOCOUTQ), so a connection that
 * breaks without a FIN (collector host gone, TCP_USER_TIMEOUT) loses nothing:
 * what was not acknowledged is written again on the next connection.
 */
#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <linux/sockios.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/timerfd.h>
#include <sys/un.h>
#include "syslog_out.h"

#define FACILITY_DAEMON 3
#define BACKOFF_MIN_NS (500 * 1000000ULL)
#define BACKOFF_MAX_NS (30 * 1000000000ULL)
#define CONNECT_TIMEOUT_NS (10 * 1000000000ULL)
#define ACK_CHECK_NS (200 * 1000000ULL)
#define TCP_USER_TIMEOUT_MS 30000
#define STABLE_NS (5 * 1000000000ULL) /* a connection this old resets the backoff */
#define BUFFER_INITIAL (64u * 1024)
#define REC_HDR sizeof(uint32_t)

enum { ST_DOWN, ST_CONNECTING, ST_UP };

static uint64_t mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + ts.tv_nsec;
}

static uint32_t next_rand(struct sw_syslog *s)
{
	uint32_t x = s->rand_state;

	x ^= x << 13;
	x ^= x >> 17;
	x ^= x << 5;
	return s->rand_state = x ?: 0x9e3779b9u;
}

static uint32_t rec_len(const struct sw_syslog *s, size_t at)
{
	uint32_t len;

	memcpy(&len, s->buf + at, sizeof(len));
	return len;
}

/* RFC 5424 fields are PRINTUSASCII (33-126); anything else becomes '_'. */
static size_t copy_field(char *dst, size_t max, const char *src)
{
	size_t n = 0;

	for (; src && *src && n < max; src++)
		dst[n++] = (*src > 32 && *src < 127) ? *src : '_';
	if (!n)
		dst[n++] = '-'; /* NILVALUE */
	dst[n] = 0;
	return n;
}

static void arm_timer(struct sw_syslog *s, uint64_t at_ns)
{
	struct itimerspec its = { 0 };

	if (at_ns) {
		its.it_value.tv_sec = at_ns / 1000000000ULL;
		its.it_value.tv_nsec = at_ns % 1000000000ULL;
	}
	timerfd_settime(s->tfd, TFD_TIMER_ABSTIME, &its, NULL);
}

/* What the socket is polled for: only what can make progress, so nothing spins. */
static void watch(struct sw_syslog *s, uint32_t events)
{
	struct epoll_event ev = { .events = events, .data.fd = s->fd };

	if (s->fd < 0 || events == s->fd_events)
		return;
	if (!events)
		epoll_ctl(s->efd, EPOLL_CTL_DEL, s->fd, NULL);
	else
		epoll_ctl(s->efd, s->fd_events ? EPOLL_CTL_MOD : EPOLL_CTL_ADD, s->fd, &ev);
	s->fd_events = events;
}

/* The first record leaves the queue: delivered, or dropped. */
static void pop_head(struct sw_syslog *s, int delivered)
{
	uint32_t len = rec_len(s, s->start);

	s->start += REC_HDR + len;
	if (s->wr < s->start)
		s->wr = s->start;
	if (s->start == s->end)
		s->start = s->wr = s->end = 0;
	s->buffered--;
	s->buffered_bytes -= len;
	if (delivered)
		s->sent++;
	else
		s->dropped++;
}

static void schedule_retry(struct sw_syslog *s, uint64_t now)
{
	uint64_t half, r;

	s->backoff_ns = s->backoff_ns ? s->backoff_ns * 2 : BACKOFF_MIN_NS;
	if (s->backoff_ns > BACKOFF_MAX_NS)
		s->backoff_ns = BACKOFF_MAX_NS;
	/* Half fixed, half random: a fleet that lost its relay comes back spread out. */
	half = s->backoff_ns / 2;
	r = (uint64_t)next_rand(s) << 32 | next_rand(s);
	s->retry_at_ns = now + half + r % (half + 1);
	s->state = ST_DOWN;
	arm_timer(s, s->retry_at_ns);
}

static void up(struct sw_syslog *s, uint64_t now)
{
	if (s->lost)
		s->reconnects++;
	s->lost = 0;
	s->state = ST_UP;
	s->up_at_ns = now;
	arm_timer(s, 0);
}

/* TCP: free the records the collector's kernel has acknowledged. */
static void ack_check(struct sw_syslog *s)
{
	size_t written = s->head_done, at;
	int outq = 0;

	if (s->transport != SW_SYSLOG_TCP || s->fd < 0)
		return;
	for (at = s->start; at < s->wr; at += REC_HDR + rec_len(s, at))
		written += rec_len(s, at);
	if (!written || ioctl(s->fd, SIOCOUTQ, &outq) || outq < 0 || (size_t)outq > written)
		return;
	written -= outq; /* now: bytes acknowledged */
	while (s->start < s->wr && rec_len(s, s->start) <= written) {
		written -= rec_len(s, s->start);
		pop_head(s, 1);
	}
}

static void tcp_close(struct sw_syslog *s)
{
	if (s->fd < 0)
		return;
	watch(s, 0);
	close(s->fd);
	s->fd = -1;
	s->fd_events = 0;
}

/* The connection is gone: what it did not acknowledge goes again on the next one. */
static void tcp_lost(struct sw_syslog *s, uint64_t now)
{
	ack_check(s);
	tcp_close(s);
	s->wr = s->start;
	s->head_done = 0;
	/* A collector that accepts and hangs up at once does not get hammered. */
	if (s->state == ST_UP && now - s->up_at_ns >= STABLE_NS)
		s->backoff_ns = 0;
	s->lost = 1;
	schedule_retry(s, now);
}

static void tcp_connect(struct sw_syslog *s, uint64_t now)
{
	int one = 1, tmo = TCP_USER_TIMEOUT_MS, idle = 60, intvl = 10, cnt = 3;

	tcp_close(s);
	s->fd = socket(s->addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (s->fd < 0) {
		schedule_retry(s, now);
		return;
	}
	/* A collector that vanishes without a FIN is noticed in 30 s, not 15 min. */
	setsockopt(s->fd, IPPROTO_TCP, TCP_USER_TIMEOUT, &tmo, sizeof(tmo));
	setsockopt(s->fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof(one));
	setsockopt(s->fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof(idle));
	setsockopt(s->fd, IPPROTO_TCP, TCP_KEEPINTVL, &intvl, sizeof(intvl));
	setsockopt(s->fd, IPPROTO_TCP, TCP_KEEPCNT, &cnt, sizeof(cnt));
	if (connect(s->fd, (struct sockaddr *)&s->addr, s->addrlen) == 0) {
		up(s, now);
		watch(s, EPOLLIN | EPOLLRDHUP);
		return;
	}
	if (errno != EINPROGRESS) {
		tcp_close(s);
		schedule_retry(s, now);
		return;
	}
	s->state = ST_CONNECTING;
	s->connect_deadline_ns = now + CONNECT_TIMEOUT_NS;
	arm_timer(s, s->connect_deadline_ns);
	watch(s, EPOLLOUT);
}

/* Reads what the collector says (nothing, normally): 0, or -errno when it is gone. */
static int tcp_check_peer(struct sw_syslog *s)
{
	char junk[512];

	for (;;) {
		ssize_t r = recv(s->fd, junk, sizeof(junk), MSG_DONTWAIT);

		if (r > 0)
			continue;
		if (r == 0)
			return -ECONNRESET;
		if (errno == EINTR)
			continue;
		return (errno == EAGAIN || errno == EWOULDBLOCK) ? 0 : -errno;
	}
}

static int tcp_flush(struct sw_syslog *s, uint64_t now)
{
	int err = tcp_check_peer(s);

	while (!err && s->wr < s->end) {
		uint32_t len = rec_len(s, s->wr);
		ssize_t r = send(s->fd, s->buf + s->wr + REC_HDR + s->head_done, len - s->head_done,
				 MSG_NOSIGNAL | MSG_DONTWAIT);

		if (r < 0) {
			if (errno == EINTR)
				continue;
			if (errno != EAGAIN && errno != EWOULDBLOCK)
				err = -errno;
			break;
		}
		s->head_done += r;
		if (s->head_done == len) {
			s->wr += REC_HDR + len;
			s->head_done = 0;
		}
	}
	if (err) {
		tcp_lost(s, now);
		return err;
	}
	ack_check(s);
	watch(s, EPOLLIN | EPOLLRDHUP | (s->wr < s->end ? EPOLLOUT : 0));
	/* Acknowledgements wake nobody: look again shortly while some are due. */
	arm_timer(s, s->start < s->wr || s->head_done ? now + ACK_CHECK_NS : 0);
	return 0;
}

/* Datagrams: also the retry of a receiver that was absent (state down, retry due). */
static int dgram_flush(struct sw_syslog *s, uint64_t now)
{
	while (s->start < s->end) {
		uint32_t len = rec_len(s, s->start);
		ssize_t r = sendto(s->fd, s->buf + s->start + REC_HDR, len, MSG_NOSIGNAL | MSG_DONTWAIT,
				   (struct sockaddr *)&s->addr, s->addrlen);
		int err = errno;

		if (r >= 0) {
			if (s->state != ST_UP)
				up(s, now);
			s->backoff_ns = 0;
			pop_head(s, 1);
			continue;
		}
		if (err == EINTR)
			continue;
		if (err == EMSGSIZE) { /* larger than this socket allows: never sendable */
			pop_head(s, 0);
			continue;
		}
		if (err == EAGAIN || err == EWOULDBLOCK) {
			/* The receiver's queue is full: wait until it takes more. */
			watch(s, EPOLLOUT);
			return -err;
		}
		/* No receiver (ENOENT, ECONNREFUSED), no route, ...: retry later. */
		watch(s, 0);
		if (s->state == ST_UP)
			s->lost = 1;
		schedule_retry(s, now);
		return -err;
	}
	s->wr = s->start;
	watch(s, 0);
	return 0;
}

/* Sends what can go now; (re)connects when the backoff allows. */
static int flush(struct sw_syslog *s, uint64_t now)
{
	if (s->state == ST_DOWN && now < s->retry_at_ns)
		return 0;
	if (s->transport != SW_SYSLOG_TCP)
		return dgram_flush(s, now);
	if (s->state == ST_DOWN)
		tcp_connect(s, now);
	return s->state == ST_UP ? tcp_flush(s, now) : 0;
}

/* Room for need more bytes, within the limit; 0 or -ENOBUFS. */
static int reserve(struct sw_syslog *s, size_t need)
{
	size_t used = s->end - s->start, cap;
	char *nb;

	if (used + need > s->buffer_limit)
		return -ENOBUFS;
	if (s->end + need <= s->cap)
		return 0;
	if (s->start) { /* slide the live records to the front */
		memmove(s->buf, s->buf + s->start, used);
		s->wr -= s->start;
		s->end -= s->start;
		s->start = 0;
		if (s->end + need <= s->cap)
			return 0;
	}
	cap = s->cap ? s->cap : BUFFER_INITIAL;
	while (cap < s->end + need)
		cap *= 2;
	if (cap > s->buffer_limit)
		cap = s->buffer_limit;
	nb = realloc(s->buf, cap);
	if (!nb)
		return -ENOBUFS;
	s->buf = nb;
	s->cap = cap;
	return 0;
}

static int parse_target(struct sw_syslog *s, const char *target, char *err, size_t errlen)
{
	struct addrinfo hints = { .ai_flags = AI_NUMERICSERV }, *res = NULL;
	char host[256], port[8] = "514";
	const char *rest, *colon;
	int r;

	if (!strncmp(target, "unix://", 7)) {
		struct sockaddr_un *un = (struct sockaddr_un *)&s->addr;
		const char *path = target + 7;

		if (path[0] != '/' || strlen(path) >= sizeof(un->sun_path)) {
			snprintf(err, errlen, "syslog target %s: give an absolute socket path of at most %zu bytes, as in unix:///dev/log",
				 target, sizeof(un->sun_path) - 1);
			return -EINVAL;
		}
		un->sun_family = AF_UNIX;
		strcpy(un->sun_path, path);
		s->addrlen = sizeof(*un);
		s->transport = SW_SYSLOG_UNIX;
		return 0;
	}
	if (!strncmp(target, "udp://", 6)) {
		s->transport = SW_SYSLOG_UDP;
		hints.ai_socktype = SOCK_DGRAM;
	} else if (!strncmp(target, "tcp://", 6)) {
		s->transport = SW_SYSLOG_TCP;
		hints.ai_socktype = SOCK_STREAM;
	} else {
		snprintf(err, errlen, "syslog target %s: use udp://HOST:PORT, tcp://HOST:PORT or unix:///PATH",
			 target);
		return -EINVAL;
	}
	rest = target + 6;
	if (rest[0] == '[') { /* [IPv6]:port */
		const char *close_br = strchr(rest, ']');

		if (!close_br || (size_t)(close_br - rest - 1) >= sizeof(host) ||
		    (close_br[1] && close_br[1] != ':'))
			goto bad;
		snprintf(host, sizeof(host), "%.*s", (int)(close_br - rest - 1), rest + 1);
		colon = close_br[1] ? close_br + 1 : NULL;
	} else {
		colon = strrchr(rest, ':');
		if ((colon ? (size_t)(colon - rest) : strlen(rest)) >= sizeof(host))
			goto bad;
		snprintf(host, sizeof(host), "%.*s", colon ? (int)(colon - rest) : (int)strlen(rest),
			 rest);
	}
	if (colon) {
		char *end;
		long p = strtol(colon + 1, &end, 10);

		if (*end || p < 1 || p > 65535 || end == colon + 1)
			goto bad;
		snprintf(port, sizeof(port), "%ld", p);
	}
	if (!host[0])
		goto bad;
	r = getaddrinfo(host, port, &hints, &res);
	if (r || !res) {
		snprintf(err, errlen, "syslog target %s: cannot resolve %s: %s", target, host,
			 r == EAI_SYSTEM ? strerror(errno) : gai_strerror(r));
		return -EHOSTUNREACH;
	}
	memcpy(&s->addr, res->ai_addr, res->ai_addrlen);
	s->addrlen = res->ai_addrlen;
	freeaddrinfo(res);
	return 0;
bad:
	snprintf(err, errlen, "syslog target %s: expected HOST:PORT with a port from 1 to 65535 ([ADDR]:PORT for IPv6)",
		 target);
	return -EINVAL;
}

int sw_syslog_open(struct sw_syslog *s, const char *target, const char *app_name,
		   const char *hostname, char *err, size_t errlen)
{
	size_t limit = s->buffer_limit ? s->buffer_limit : SW_SYSLOG_BUFFER_DEFAULT;
	struct epoll_event ev = { .events = EPOLLIN };
	char host[256], app[49], sys_host[256];
	int ret;

	memset(s, 0, sizeof(*s));
	s->buffer_limit = limit;
	s->fd = s->efd = s->tfd = -1;
	err[0] = 0;
	snprintf(s->target, sizeof(s->target), "%s", target ? target : "");
	ret = parse_target(s, s->target, err, errlen);
	if (ret)
		goto cleanup;
	if (!hostname || !hostname[0]) {
		if (gethostname(sys_host, sizeof(sys_host) - 1))
			sys_host[0] = 0;
		sys_host[sizeof(sys_host) - 1] = 0;
		hostname = sys_host;
	}
	copy_field(host, 255, hostname);
	copy_field(app, 48, app_name ? app_name : "smtpwatch");
	s->header_tail_len = snprintf(s->header_tail, sizeof(s->header_tail), " %s %s %d - - @cee:",
				      host, app, (int)getpid());
	s->rand_state = (uint32_t)getpid() ^ (uint32_t)mono_ns() ^ (uint32_t)(uintptr_t)s;
	next_rand(s);

	s->efd = epoll_create1(EPOLL_CLOEXEC);
	s->tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
	ev.data.fd = s->tfd;
	if (s->efd < 0 || s->tfd < 0 || epoll_ctl(s->efd, EPOLL_CTL_ADD, s->tfd, &ev)) {
		ret = -errno;
		snprintf(err, errlen, "syslog output: cannot set up its event descriptors: %s",
			 strerror(-ret));
		goto cleanup;
	}
	if (s->transport == SW_SYSLOG_TCP) {
		tcp_connect(s, mono_ns());
		return 0;
	}
	s->fd = socket(s->addr.ss_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (s->fd < 0) {
		ret = -errno;
		snprintf(err, errlen, "syslog output: cannot create a socket for %s: %s", s->target,
			 strerror(-ret));
		goto cleanup;
	}
	s->state = ST_UP;
	return 0;
cleanup:
	if (s->efd >= 0)
		close(s->efd);
	if (s->tfd >= 0)
		close(s->tfd);
	s->efd = s->tfd = -1;
	return ret;
}

int sw_syslog_send(struct sw_syslog *s, const char *json_line, size_t len, uint64_t epoch_ns,
		   int severity)
{
	char head[64], ts[40], prefix[24];
	size_t head_len, msg_len, prefix_len = 0, need;
	struct timespec now;
	struct tm tm;
	time_t sec;
	uint32_t wire;
	char *p;

	if (s->efd < 0)
		return -EBADF;
	while (len && (json_line[len - 1] == '\n' || json_line[len - 1] == '\r'))
		len--;
	if (!epoch_ns) {
		clock_gettime(CLOCK_REALTIME, &now);
		epoch_ns = (uint64_t)now.tv_sec * 1000000000ULL + now.tv_nsec;
	}
	if (severity < 0 || severity > 7)
		severity = SW_SYSLOG_INFO;
	sec = epoch_ns / 1000000000ULL;
	gmtime_r(&sec, &tm);
	strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%S", &tm);
	head_len = snprintf(head, sizeof(head), "<%d>1 %s.%06uZ", FACILITY_DAEMON * 8 + severity, ts,
			    (unsigned)(epoch_ns % 1000000000ULL / 1000));
	msg_len = head_len + s->header_tail_len + len;
	if (s->transport == SW_SYSLOG_TCP)
		prefix_len = snprintf(prefix, sizeof(prefix), "%zu ", msg_len);
	need = REC_HDR + prefix_len + msg_len;
	if ((s->transport == SW_SYSLOG_UDP && msg_len > SW_SYSLOG_UDP_MAX) || need > s->buffer_limit ||
	    need > UINT32_MAX) {
		s->dropped++;
		return -EMSGSIZE;
	}
	if (reserve(s, need)) {
		s->dropped++; /* the newest goes: what is queued keeps its order */
		return -ENOBUFS;
	}
	wire = prefix_len + msg_len;
	p = s->buf + s->end;
	memcpy(p, &wire, REC_HDR);
	p += REC_HDR;
	memcpy(p, prefix, prefix_len);
	p += prefix_len;
	memcpy(p, head, head_len);
	p += head_len;
	memcpy(p, s->header_tail, s->header_tail_len);
	p += s->header_tail_len;
	memcpy(p, json_line, len);
	s->end += need;
	s->buffered++;
	s->buffered_bytes += wire;
	flush(s, mono_ns());
	return 0;
}

int sw_syslog_poll(struct sw_syslog *s, uint64_t now_ns)
{
	struct epoll_event evs[4];
	uint32_t sock_ev = 0;
	uint64_t ticks;
	int n, ret;

	if (s->efd < 0)
		return -EBADF;
	/* Clears the timer's readiness (EAGAIN: it had not fired); the state says what is due. */
	if (read(s->tfd, &ticks, sizeof(ticks)) < 0 && errno != EAGAIN)
		return -errno;
	n = epoll_wait(s->efd, evs, 4, 0);
	for (int i = 0; i < n; i++)
		if (s->fd >= 0 && evs[i].data.fd == s->fd)
			sock_ev |= evs[i].events;
	if (s->state == ST_CONNECTING) {
		int soerr = 0;
		socklen_t sl = sizeof(soerr);

		if (sock_ev & (EPOLLOUT | EPOLLERR | EPOLLHUP)) {
			if (getsockopt(s->fd, SOL_SOCKET, SO_ERROR, &soerr, &sl))
				soerr = errno;
			if (soerr) {
				tcp_close(s);
				schedule_retry(s, now_ns);
				return -soerr;
			}
			up(s, now_ns);
		} else if (now_ns >= s->connect_deadline_ns) {
			tcp_close(s);
			schedule_retry(s, now_ns);
			return -ETIMEDOUT;
		} else {
			arm_timer(s, s->connect_deadline_ns);
			return 0;
		}
	}
	ret = flush(s, now_ns);
	if (s->state == ST_DOWN)
		arm_timer(s, s->retry_at_ns); /* called early (by a timer of the caller's): wait on */
	return ret;
}

int sw_syslog_fd(const struct sw_syslog *s)
{
	return s->efd;
}

int sw_syslog_connected(const struct sw_syslog *s)
{
	return s->efd >= 0 && s->state == ST_UP;
}

int sw_syslog_severity(const char *action)
{
	if (!action)
		return SW_SYSLOG_INFO;
	if (!strcmp(action, "smtp_alert"))
		return SW_SYSLOG_WARNING;
	if (!strcmp(action, "connection_denied"))
		return SW_SYSLOG_NOTICE;
	return SW_SYSLOG_INFO;
}

void sw_syslog_close(struct sw_syslog *s, int timeout_ms)
{
	uint64_t deadline = mono_ns() + (uint64_t)(timeout_ms > 0 ? timeout_ms : 0) * 1000000ULL;

	if (s->efd < 0)
		return;
	/* Only an established output gets the grace period: a dead collector gets none. */
	while (s->state == ST_UP && s->start < s->end && mono_ns() < deadline) {
		struct epoll_event ev;

		sw_syslog_poll(s, mono_ns());
		if (s->state != ST_UP || s->start == s->end)
			break;
		epoll_wait(s->efd, &ev, 1, 20);
	}
	s->dropped += s->buffered;
	if (s->fd >= 0)
		close(s->fd);
	close(s->efd);
	close(s->tfd);
	free(s->buf);
	s->buf = NULL;
	s->fd = s->efd = s->tfd = -1;
	s->cap = s->start = s->wr = s->end = 0;
	s->buffered = s->buffered_bytes = 0;
}
