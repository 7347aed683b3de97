// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * An SMTP client that never calls connect(), send() or write() itself: the
 * socket (IORING_OP_SOCKET where the kernel has it), the connect, the reads and
 * the writes all go through io_uring, with raw syscalls (no liburing). With
 * --sqpoll a kernel thread of the process submits them, so not even
 * io_uring_enter() carries the work. The evasion test expects its HELO
 * attributed to this process anyway.
 *
 *   uring_smtp [--sqpoll] HOST PORT HELO
 *
 * Prints one JSON line {"pid":..,"sqpoll":..,"socket_op":..} and exits 0 after
 * QUIT, or prints why and exits 1. Used on loopback only.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <linux/io_uring.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

struct ring {
	int fd;
	bool sqpoll;
	unsigned *sq_head, *sq_tail, *sq_mask, *sq_flags, *sq_array;
	unsigned *cq_head, *cq_tail, *cq_mask;
	struct io_uring_sqe *sqes;
	struct io_uring_cqe *cqes;
};

static int ring_init(struct ring *r, bool sqpoll)
{
	struct io_uring_params p;
	size_t sq_len, cq_len;
	char *sq, *cq;

	memset(&p, 0, sizeof(p));
	memset(r, 0, sizeof(*r));
	if (sqpoll) {
		p.flags = IORING_SETUP_SQPOLL;
		p.sq_thread_idle = 1000;
	}
	r->fd = syscall(__NR_io_uring_setup, 8, &p);
	if (r->fd < 0)
		return -errno;
	r->sqpoll = sqpoll;
	sq_len = p.sq_off.array + p.sq_entries * sizeof(unsigned);
	cq_len = p.cq_off.cqes + p.cq_entries * sizeof(struct io_uring_cqe);
	if (p.features & IORING_FEAT_SINGLE_MMAP)
		sq_len = cq_len = sq_len > cq_len ? sq_len : cq_len;
	sq = mmap(NULL, sq_len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, r->fd,
		  IORING_OFF_SQ_RING);
	if (sq == MAP_FAILED)
		return -errno;
	cq = sq;
	if (!(p.features & IORING_FEAT_SINGLE_MMAP)) {
		cq = mmap(NULL, cq_len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, r->fd,
			  IORING_OFF_CQ_RING);
		if (cq == MAP_FAILED)
			return -errno;
	}
	r->sqes = mmap(NULL, p.sq_entries * sizeof(struct io_uring_sqe), PROT_READ | PROT_WRITE,
		       MAP_SHARED | MAP_POPULATE, r->fd, IORING_OFF_SQES);
	if (r->sqes == MAP_FAILED)
		return -errno;
	r->sq_head = (unsigned *)(sq + p.sq_off.head);
	r->sq_tail = (unsigned *)(sq + p.sq_off.tail);
	r->sq_mask = (unsigned *)(sq + p.sq_off.ring_mask);
	r->sq_flags = (unsigned *)(sq + p.sq_off.flags);
	r->sq_array = (unsigned *)(sq + p.sq_off.array);
	r->cq_head = (unsigned *)(cq + p.cq_off.head);
	r->cq_tail = (unsigned *)(cq + p.cq_off.tail);
	r->cq_mask = (unsigned *)(cq + p.cq_off.ring_mask);
	r->cqes = (struct io_uring_cqe *)(cq + p.cq_off.cqes);
	return 0;
}

/* Submit one operation and wait for its completion: its result (-errno on failure). */
static int ring_op(struct ring *r, const struct io_uring_sqe *op)
{
	unsigned tail = *r->sq_tail, idx = tail & *r->sq_mask, head, flags = IORING_ENTER_GETEVENTS;
	int res;

	r->sqes[idx] = *op;
	r->sq_array[idx] = idx;
	__atomic_store_n(r->sq_tail, tail + 1, __ATOMIC_RELEASE);
	if (r->sqpoll && (__atomic_load_n(r->sq_flags, __ATOMIC_ACQUIRE) & IORING_SQ_NEED_WAKEUP))
		flags |= IORING_ENTER_SQ_WAKEUP;
	for (;;) {
		/* Submitted yet? With SQPOLL the kernel thread submits: we only wait. */
		unsigned to_submit = !r->sqpoll && *r->sq_head != tail + 1;

		head = *r->cq_head;
		if (head != __atomic_load_n(r->cq_tail, __ATOMIC_ACQUIRE))
			break;
		if (syscall(__NR_io_uring_enter, r->fd, to_submit, 1, flags, NULL, 0) < 0 &&
		    errno != EINTR)
			return -errno;
		flags = IORING_ENTER_GETEVENTS;
	}
	res = r->cqes[head & *r->cq_mask].res;
	__atomic_store_n(r->cq_head, head + 1, __ATOMIC_RELEASE);
	return res;
}

static int uring_socket(struct ring *r, int family)
{
	struct io_uring_sqe op = { .opcode = IORING_OP_SOCKET, .fd = family, .off = SOCK_STREAM };

	return ring_op(r, &op);
}

static int uring_connect(struct ring *r, int fd, const struct sockaddr *sa, socklen_t len)
{
	struct io_uring_sqe op = { .opcode = IORING_OP_CONNECT, .fd = fd,
				   .addr = (unsigned long)sa, .off = len };

	return ring_op(r, &op);
}

static int uring_io(struct ring *r, int opcode, int fd, void *buf, unsigned len)
{
	struct io_uring_sqe op = { .opcode = opcode, .fd = fd, .addr = (unsigned long)buf,
				   .len = len };

	return ring_op(r, &op);
}

/* Read a reply until its last line ("NNN text\r\n"); 0 when it starts with want. */
static int reply(struct ring *r, int fd, const char *want)
{
	char buf[4096];
	size_t got = 0;

	for (;;) {
		int n = uring_io(r, IORING_OP_RECV, fd, buf + got, sizeof(buf) - 1 - got);
		char *last, *end;

		if (n <= 0)
			return -1;
		got += n;
		buf[got] = 0;
		end = strstr(buf, "\r\n");
		if (!end)
			continue;
		/* The last complete line decides: a space after the code ends a reply. */
		last = buf;
		for (char *p = buf; (p = strstr(p, "\r\n")) && p[2]; p += 2)
			last = p + 2;
		if (strlen(last) >= 4 && last[3] == ' ' && strstr(last, "\r\n"))
			return strncmp(buf, want, 3) ? -1 : 0;
		if (got >= sizeof(buf) - 1)
			return -1;
	}
}

static int say(struct ring *r, int fd, int opcode, const char *line)
{
	int len = strlen(line), n = uring_io(r, opcode, fd, (void *)line, len);

	return n == len ? 0 : -1;
}

int main(int argc, char **argv)
{
	struct sockaddr_storage ss;
	socklen_t sl;
	struct ring r;
	bool sqpoll = false, socket_op = true;
	char line[300];
	int i = 1, fd, err;

	if (argc > 1 && !strcmp(argv[1], "--sqpoll"))
		sqpoll = true, i++;
	if (argc - i != 3) {
		fprintf(stderr, "usage: uring_smtp [--sqpoll] HOST PORT HELO\n");
		return 64;
	}
	memset(&ss, 0, sizeof(ss));
	if (inet_pton(AF_INET, argv[i], &((struct sockaddr_in *)&ss)->sin_addr) == 1) {
		ss.ss_family = AF_INET;
		((struct sockaddr_in *)&ss)->sin_port = htons(atoi(argv[i + 1]));
		sl = sizeof(struct sockaddr_in);
	} else if (inet_pton(AF_INET6, argv[i], &((struct sockaddr_in6 *)&ss)->sin6_addr) == 1) {
		ss.ss_family = AF_INET6;
		((struct sockaddr_in6 *)&ss)->sin6_port = htons(atoi(argv[i + 1]));
		sl = sizeof(struct sockaddr_in6);
	} else {
		fprintf(stderr, "uring_smtp: not an address: %s\n", argv[i]);
		return 64;
	}
	err = ring_init(&r, sqpoll);
	if (err) {
		fprintf(stderr, "uring_smtp: io_uring_setup: %s\n", strerror(-err));
		return err == -ENOSYS || err == -EPERM ? 77 : 1;
	}
	fd = uring_socket(&r, ss.ss_family);
	if (fd == -EINVAL || fd == -EOPNOTSUPP) { /* before 5.19: no IORING_OP_SOCKET */
		socket_op = false;
		fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	}
	if (fd < 0) {
		fprintf(stderr, "uring_smtp: socket: %s\n", strerror(fd == -1 ? errno : -fd));
		return 1;
	}
	err = uring_connect(&r, fd, (struct sockaddr *)&ss, sl);
	if (err) {
		fprintf(stderr, "uring_smtp: IORING_OP_CONNECT: %s\n", strerror(-err));
		return 1;
	}
	printf("{\"pid\":%d,\"sqpoll\":%s,\"socket_op\":%s}\n", (int)getpid(),
	       sqpoll ? "true" : "false", socket_op ? "true" : "false");
	fflush(stdout);
	snprintf(line, sizeof(line), "EHLO %s\r\n", argv[i + 2]);
	if (reply(&r, fd, "220") || say(&r, fd, IORING_OP_SEND, line) || reply(&r, fd, "250") ||
	    say(&r, fd, IORING_OP_WRITE, "QUIT\r\n") || reply(&r, fd, "221")) {
		fprintf(stderr, "uring_smtp: the SMTP dialogue failed\n");
		return 1;
	}
	{
		struct io_uring_sqe op = { .opcode = IORING_OP_CLOSE, .fd = fd };

		if (ring_op(&r, &op) < 0)
			close(fd);
	}
	return 0;
}
