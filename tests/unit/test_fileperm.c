// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* The rules for who may write the configuration and the journal (agent/fileperm.c). */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>

#include "check.h"
#include "fileperm.h"

static char top[64], why[1024];

static char *at(const char *name)
{
	static char buf[4][256];
	static int i;

	i = (i + 1) % 4;
	snprintf(buf[i], sizeof(buf[i]), "%s/%s", top, name);
	return buf[i];
}

static void make_file(const char *path, mode_t mode)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);

	if (fd >= 0) {
		if (write(fd, "{}\n", 3) != 3)
			check_case_failed = 1;
		close(fd);
	}
	chmod(path, mode);
}

static int try_open(const char *path, unsigned flags)
{
	int fd;

	why[0] = 0;
	fd = sw_fileperm_open(path, O_RDONLY, 0, "configuration file", flags, why, sizeof(why));
	if (fd >= 0)
		close(fd);
	return fd < 0 ? fd : 0;
}

static void test_safe_file(void)
{
	make_file(at("ok.json"), 0644);
	CHECK(try_open(at("ok.json"), 0) == 0);
	make_file(at("private.json"), 0600);
	CHECK(try_open(at("private.json"), 0) == 0);
}

static void test_writable_by_others(void)
{
	make_file(at("o.json"), 0666);
	CHECK(try_open(at("o.json"), 0) == -EPERM);
	CHECK(strstr(why, at("o.json")) && strstr(why, "writable by group or others") &&
	      strstr(why, "0666") && strstr(why, "chmod go-w"));
	make_file(at("g.json"), 0664);
	CHECK(try_open(at("g.json"), 0) == -EPERM);
	CHECK(strstr(why, "0664") != NULL);
	CHECK(!strchr(why, '\n'));
}

static void test_owner(void)
{
	if (geteuid() != 0) {
		printf("  (not root: the owner case is not checked)\n");
		return;
	}
	make_file(at("nobody.json"), 0644);
	CHECK(chown(at("nobody.json"), 65534, 65534) == 0);
	CHECK(try_open(at("nobody.json"), 0) == -EPERM);
	CHECK(strstr(why, "owned by uid 65534") != NULL);
}

static void test_symlink_and_kinds(void)
{
	make_file(at("real.json"), 0644);
	CHECK(symlink(at("real.json"), at("link.json")) == 0);
	CHECK(try_open(at("link.json"), 0) == -ELOOP);
	CHECK(strstr(why, "symbolic link") != NULL);
	/* A directory and a FIFO are not configurations; the FIFO must not hang. */
	CHECK(mkdir(at("d.json"), 0755) == 0);
	CHECK(try_open(at("d.json"), 0) == -EPERM);
	CHECK(strstr(why, "not a regular file") != NULL);
	CHECK(mkfifo(at("fifo.json"), 0600) == 0);
	CHECK(try_open(at("fifo.json"), 0) == -EPERM);
	/* /dev/null as a journal, with the device flag only. */
	CHECK(try_open("/dev/null", SW_PERM_DEVICE_OK) == 0);
	CHECK(try_open("/dev/null", 0) == -EPERM);
	CHECK(try_open(at("missing.json"), 0) == -ENOENT);
	CHECK(strstr(why, "No such file") != NULL);
}

static void test_directories(void)
{
	/* A world-writable directory without the sticky bit: anyone could swap the file. */
	CHECK(mkdir(at("open"), 0755) == 0);
	make_file(at("open/c.json"), 0644);
	CHECK(chmod(at("open"), 0777) == 0);
	CHECK(try_open(at("open/c.json"), 0) == -EPERM);
	CHECK(strstr(why, "the directory") && strstr(why, "0777"));
	/* Sticky (like /tmp): others cannot rename our file; allowed, but not for a
	 * rotated journal, whose directory must be private. */
	CHECK(chmod(at("open"), 01777) == 0);
	CHECK(try_open(at("open/c.json"), 0) == 0);
	CHECK(try_open(at("open/c.json"), SW_PERM_DIR_PRIVATE) == -EPERM);
	CHECK(sw_fileperm_dirs(at("open/c.json"), "journal", SW_PERM_DIR_PRIVATE, why,
			       sizeof(why)) == -EPERM);
	CHECK(strstr(why, "journal") != NULL);
	/* An ancestor writable by others fails the file below it too. */
	CHECK(mkdir(at("open/sub"), 0755) == 0);
	make_file(at("open/sub/c.json"), 0644);
	CHECK(chmod(at("open"), 0777) == 0);
	CHECK(try_open(at("open/sub/c.json"), 0) == -EPERM);
	CHECK(chmod(at("open"), 0755) == 0);
	CHECK(try_open(at("open/sub/c.json"), 0) == 0);
	if (geteuid() == 0) {
		CHECK(chown(at("open/sub"), 65534, 65534) == 0);
		CHECK(try_open(at("open/sub/c.json"), 0) == -EPERM);
		CHECK(strstr(why, "owned by uid 65534") != NULL);
	}
	/* A relative path is checked from the working directory up. */
	CHECK(chdir(top) == 0);
	CHECK(try_open("ok.json", 0) == 0);
}

int main(void)
{
	snprintf(top, sizeof(top), "/tmp/sw-fileperm-XXXXXX");
	if (!mkdtemp(top)) {
		printf("FAIL setup: mkdtemp: %s\n", strerror(errno));
		return 1;
	}
	umask(022);
	RUN(test_safe_file);
	RUN(test_writable_by_others);
	RUN(test_owner);
	RUN(test_symlink_and_kinds);
	RUN(test_directories);
	{
		char cmd[128];

		snprintf(cmd, sizeof(cmd), "rm -rf %s", top);
		if (system(cmd))
			printf("  (could not remove %s)\n", top);
	}
	CHECK_EXIT();
}
