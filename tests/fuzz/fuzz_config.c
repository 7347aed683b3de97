// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * libFuzzer harness for the configuration loader: any bytes as the file. It must
 * either load or fail with a message that names the file, never crash or leak.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char path[] = "/tmp/smtpwatch-fuzz-config-XXXXXX", err[512];
	struct sw_run_opts o = { 0 };
	int fd = mkstemp(path);

	if (fd < 0)
		return 0;
	if (write(fd, data, size) != (ssize_t)size) {
		close(fd);
		unlink(path);
		return 0;
	}
	close(fd);
	sw_evidence_cfg_default(&o.evidence);
	sw_config_defaults(&o);
	if (sw_config_load(path, &o, err, sizeof(err)) && !strstr(err, path))
		__builtin_trap();
	sw_opts_free(&o);
	unlink(path);
	return 0;
}
