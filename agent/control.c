// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>
#include "control.h"
#include "log.h"

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

int sw_control_listen(const char *path)
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
	old = umask(0077); /* created 0600: status is for root */
	err = bind(fd, (struct sockaddr *)&sa, sizeof(sa)) ? -errno : 0;
	umask(old);
	if (!err && listen(fd, 16))
		err = -errno;
	if (err) {
		close(fd);
		return err;
	}
	return fd;
}

void sw_control_serve(int listen_fd, cJSON *(*answer)(const char *cmd, void *ctx), void *ctx)
{
	struct pollfd pfd;
	struct ucred cred;
	socklen_t clen = sizeof(cred);
	char req[1024], cmd[64] = "";
	cJSON *reply = NULL, *j;
	char *out = NULL;
	ssize_t n;
	int fd;

	fd = accept4(listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
	if (fd < 0)
		return;
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &clen) || cred.uid != 0) {
		reply = cJSON_CreateObject();
		cJSON_AddStringToObject(reply, "error", "permission denied: the control socket is for root");
		goto send;
	}
	/* A short wait for the request line, so a silent client cannot hold the loop. */
	pfd.fd = fd;
	pfd.events = POLLIN;
	if (poll(&pfd, 1, 100) <= 0)
		goto done;
	n = recv(fd, req, sizeof(req) - 1, 0);
	if (n <= 0)
		goto done;
	req[n] = 0;
	j = cJSON_Parse(req);
	if (j && cJSON_IsString(cJSON_GetObjectItem(j, "cmd")))
		snprintf(cmd, sizeof(cmd), "%s", cJSON_GetObjectItem(j, "cmd")->valuestring);
	cJSON_Delete(j);
	reply = answer(cmd, ctx);
send:
	if (reply)
		out = cJSON_PrintUnformatted(reply);
	if (out) {
		size_t len = strlen(out);

		out[len] = '\n';
		if (send(fd, out, len + 1, MSG_NOSIGNAL) < 0)
			pr_debug("control reply not sent: %s\n", strerror(errno));
	}
done:
	free(out);
	cJSON_Delete(reply);
	close(fd);
}

void sw_control_close(int fd, const char *path)
{
	if (fd >= 0) {
		close(fd);
		unlink(path);
	}
}

cJSON *sw_control_request(const char *path, const char *cmd)
{
	struct sockaddr_un sa;
	char buf[65536];
	size_t got = 0;
	cJSON *req, *reply;
	char *line;
	int fd, err;

	err = fill_addr(&sa, path);
	if (err) {
		errno = -err;
		return NULL;
	}
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return NULL;
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa))) {
		err = errno;
		close(fd);
		errno = err;
		return NULL;
	}
	req = cJSON_CreateObject();
	cJSON_AddStringToObject(req, "cmd", cmd);
	line = cJSON_PrintUnformatted(req);
	cJSON_Delete(req);
	/* One send: the agent may answer and close as soon as it has the object. */
	if (!line || snprintf(buf, sizeof(buf), "%s\n", line) >= (int)sizeof(buf) ||
	    send(fd, buf, strlen(buf), MSG_NOSIGNAL) < 0) {
		err = errno;
		free(line);
		close(fd);
		errno = err;
		return NULL;
	}
	free(line);
	for (;;) {
		ssize_t n = recv(fd, buf + got, sizeof(buf) - 1 - got, 0);

		if (n <= 0 || (got += n) >= sizeof(buf) - 1)
			break;
	}
	close(fd);
	buf[got] = 0;
	reply = cJSON_Parse(buf);
	if (!reply)
		errno = EPROTO;
	return reply;
}
