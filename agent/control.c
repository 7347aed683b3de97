// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <time.h>
#include <sys/epoll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>
#include "control.h"
#include "log.h"
#include "util.h"

static int fill_addr(struct sockaddr_un *sa, const char *path)
{
	memset(sa, 0, sizeof(*sa));
	sa->sun_family = AF_UNIX;
	if (strlen(path) >= sizeof(sa->sun_path))
		return -ENAMETOOLONG;
	strcpy(sa->sun_path, path);
	return 0;
}

static void mkdir_parent(const char *path)
{
	char dir[108];
	char *slash;

	snprintf(dir, sizeof(dir), "%s", path);
	slash = strrchr(dir, '/');
	if (slash && slash != dir) {
		*slash = 0;
		mkdir(dir, 0755);
	}
}

static int listen_on(const char *path, gid_t group)
{
	struct sockaddr_un sa;
	int fd, err;
	mode_t old;

	err = fill_addr(&sa, path);
	if (err)
		return err;
	mkdir_parent(path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	/* A socket file left by a crashed agent: remove it only if nobody answers. */
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0) {
		close(fd);
		return -EADDRINUSE;
	}
	unlink(path);
	old = umask(0177); /* created 0600: the agent's state is for root */
	err = bind(fd, (struct sockaddr *)&sa, sizeof(sa)) ? -errno : 0;
	umask(old);
	if (!err && group != (gid_t)-1 && (chown(path, 0, group) || chmod(path, 0660)))
		err = -errno;
	if (!err && listen(fd, 16))
		err = -errno;
	if (err) {
		close(fd);
		unlink(path);
		return err;
	}
	return fd;
}

int sw_control_open(struct sw_control *c, const char *path, gid_t group, int epfd,
		    sw_control_answer_fn answer, void *ctx)
{
	struct epoll_event ev = { .events = EPOLLIN, .data.u32 = SW_CTL_TAG };

	memset(c, 0, sizeof(*c));
	c->path = path;
	c->group = group;
	c->epfd = epfd;
	c->answer = answer;
	c->ctx = ctx;
	for (int i = 0; i < SW_CTL_CLIENTS; i++)
		c->cl[i].fd = -1;
	c->lfd = listen_on(path, group);
	if (c->lfd < 0)
		return c->lfd;
	if (epoll_ctl(epfd, EPOLL_CTL_ADD, c->lfd, &ev)) {
		int err = -errno;

		close(c->lfd);
		c->lfd = -1;
		return err;
	}
	return 0;
}

static void client_drop(struct sw_control *c, struct sw_ctl_client *k)
{
	epoll_ctl(c->epfd, EPOLL_CTL_DEL, k->fd, NULL);
	close(k->fd);
	free(k->out);
	memset(k, 0, sizeof(*k));
	k->fd = -1;
}

/* Root, or a member of the configured group. */
static int peer_allowed(struct sw_control *c, int fd)
{
	struct ucred cred;
	socklen_t len = sizeof(cred);
	gid_t groups[64];
	int n = 64;
	struct passwd pw, *res = NULL;
	char buf[1024];

	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len))
		return 0;
	if (cred.uid == 0)
		return 1;
	if (c->group == (gid_t)-1)
		return 0;
	if (cred.gid == c->group)
		return 1;
	if (getpwuid_r(cred.uid, &pw, buf, sizeof(buf), &res) || !res ||
	    getgrouplist(pw.pw_name, pw.pw_gid, groups, &n) < 0)
		return 0;
	for (int i = 0; i < n; i++)
		if (groups[i] == c->group)
			return 1;
	return 0;
}

static void client_reply(struct sw_control *c, struct sw_ctl_client *k, cJSON *reply)
{
	struct epoll_event ev = { .events = EPOLLOUT };
	char *text = reply ? cJSON_PrintUnformatted(reply) : NULL;
	size_t n;

	cJSON_Delete(reply);
	if (!text) {
		client_drop(c, k);
		return;
	}
	n = strlen(text);
	k->out = realloc(text, n + 2);
	if (!k->out) {
		free(text);
		client_drop(c, k);
		return;
	}
	k->out[n] = '\n';
	k->outlen = n + 1;
	k->outoff = 0;
	ev.data.u32 = SW_CTL_TAG + 1 + (k - c->cl);
	epoll_ctl(c->epfd, EPOLL_CTL_MOD, k->fd, &ev);
}

static void client_error(struct sw_control *c, struct sw_ctl_client *k, const char *msg)
{
	cJSON *r = cJSON_CreateObject();

	cJSON_AddStringToObject(r, "error", msg);
	client_reply(c, k, r);
}

static void on_accept(struct sw_control *c)
{
	for (;;) {
		int fd = accept4(c->lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		struct epoll_event ev = { .events = EPOLLIN };
		struct sw_ctl_client *k = NULL;

		if (fd < 0)
			return;
		for (int i = 0; i < SW_CTL_CLIENTS && !k; i++)
			if (c->cl[i].fd < 0)
				k = &c->cl[i];
		if (!k) { /* all slots busy: refuse rather than queue */
			c->refused++;
			close(fd);
			continue;
		}
		k->fd = fd;
		k->deadline_ns = sw_now_ns(CLOCK_MONOTONIC) + SW_CTL_TIMEOUT_MS * 1000000ULL;
		ev.data.u32 = SW_CTL_TAG + 1 + (k - c->cl);
		if (epoll_ctl(c->epfd, EPOLL_CTL_ADD, fd, &ev)) {
			close(fd);
			k->fd = -1;
			continue;
		}
		if (!peer_allowed(c, fd))
			client_error(c, k, "permission denied: the control socket is for root");
	}
}

static void on_readable(struct sw_control *c, struct sw_ctl_client *k)
{
	char cmd[64] = "";
	cJSON *req;
	ssize_t n;

	if (k->out)
		return;
	n = recv(k->fd, k->in + k->inlen, sizeof(k->in) - 1 - k->inlen, 0);
	if (n <= 0) {
		if (n == 0 || (errno != EAGAIN && errno != EINTR))
			client_drop(c, k);
		return;
	}
	k->inlen += n;
	k->in[k->inlen] = 0;
	if (!memchr(k->in, '\n', k->inlen)) {
		if (k->inlen >= sizeof(k->in) - 1)
			client_error(c, k, "request too long: one JSON line of at most 1 KiB");
		return;
	}
	req = cJSON_Parse(k->in);
	if (req && cJSON_IsString(cJSON_GetObjectItem(req, "cmd")))
		snprintf(cmd, sizeof(cmd), "%s", cJSON_GetObjectItem(req, "cmd")->valuestring);
	if (!cmd[0])
		client_error(c, k, "bad request: send one line {\"cmd\": \"status\"}");
	else
		client_reply(c, k, c->answer(cmd, req, c->ctx));
	cJSON_Delete(req);
}

static void on_writable(struct sw_control *c, struct sw_ctl_client *k)
{
	while (k->out && k->outoff < k->outlen) {
		ssize_t n = send(k->fd, k->out + k->outoff, k->outlen - k->outoff,
				 MSG_NOSIGNAL | MSG_DONTWAIT);

		if (n < 0) {
			if (errno == EAGAIN || errno == EINTR)
				return; /* the client reads slowly: wait for EPOLLOUT again */
			break;
		}
		k->outoff += n;
	}
	client_drop(c, k);
}

void sw_control_event(struct sw_control *c, uint32_t tag, uint32_t events)
{
	struct sw_ctl_client *k;

	if (tag == SW_CTL_TAG) {
		on_accept(c);
		return;
	}
	if (tag <= SW_CTL_TAG || tag > SW_CTL_TAG + SW_CTL_CLIENTS)
		return;
	k = &c->cl[tag - SW_CTL_TAG - 1];
	if (k->fd < 0)
		return;
	if (events & (EPOLLERR | EPOLLHUP) && !(events & EPOLLIN)) {
		client_drop(c, k);
		return;
	}
	if (events & EPOLLIN)
		on_readable(c, k);
	if (k->fd >= 0 && (events & EPOLLOUT))
		on_writable(c, k);
}

int sw_control_expire(struct sw_control *c, uint64_t now_ns)
{
	int n = 0;

	for (int i = 0; i < SW_CTL_CLIENTS; i++) {
		if (c->cl[i].fd < 0)
			continue;
		if (now_ns >= c->cl[i].deadline_ns) {
			c->dropped++;
			client_drop(c, &c->cl[i]);
			continue;
		}
		n++;
	}
	return n;
}

void sw_control_close(struct sw_control *c)
{
	for (int i = 0; i < SW_CTL_CLIENTS; i++)
		if (c->cl[i].fd >= 0)
			client_drop(c, &c->cl[i]);
	if (c->lfd >= 0) {
		close(c->lfd);
		unlink(c->path);
	}
	c->lfd = -1;
}

cJSON *sw_control_request(const char *path, const char *cmd)
{
	struct sockaddr_un sa;
	size_t cap = 1 << 16, got = 0;
	char *buf = NULL, *line = NULL;
	cJSON *req, *reply = NULL;
	int fd = -1, err;

	err = fill_addr(&sa, path);
	if (err) {
		errno = -err;
		return NULL;
	}
	req = cJSON_CreateObject();
	cJSON_AddStringToObject(req, "cmd", cmd);
	line = cJSON_PrintUnformatted(req);
	cJSON_Delete(req);
	buf = malloc(cap);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (!line || !buf || fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)))
		goto out;
	/* One send: the agent may answer and close as soon as it has the line. */
	snprintf(buf, cap, "%s\n", line);
	/* A refusing agent may answer and close before reading: its reply is still
	 * queued, so a failed send is not the end. */
	if (send(fd, buf, strlen(buf), MSG_NOSIGNAL) < 0 && errno != EPIPE && errno != ECONNRESET)
		goto out;
	for (;;) {
		ssize_t n;

		if (got + 1 >= cap) {
			char *bigger = cap < (64u << 20) ? realloc(buf, cap * 2) : NULL;

			if (!bigger)
				break;
			buf = bigger;
			cap *= 2;
		}
		n = recv(fd, buf + got, cap - 1 - got, 0);
		if (n <= 0)
			break;
		got += n;
	}
	buf[got] = 0;
	reply = cJSON_Parse(buf);
	if (!reply)
		errno = got ? EPROTO : ECONNRESET;
out:
	err = errno;
	if (fd >= 0)
		close(fd);
	free(line);
	free(buf);
	errno = err;
	return reply;
}
