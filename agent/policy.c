// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include "smtpwatch.skel.h"
#include "loader.h"
#include "log.h"
#include "policy.h"

#define MAX_KEYS 4096

uint64_t sw_script_hash(const char *path)
{
	uint64_t h = 0xcbf29ce484222325ULL;

	for (size_t i = 0; path[i] && i < SW_EXE_LEN; i++) {
		h ^= (uint8_t)path[i];
		h *= 0x100000001b3ULL;
	}
	return h;
}

__attribute__((format(printf, 2, 0))) static void warn_once(struct sw_policy_state *st, const char *fmt, const char *what)
{
	if (!st->unresolved++)
		snprintf(st->warning, sizeof(st->warning), fmt, what);
	fputs("smtpwatch: ", stderr);
	fprintf(stderr, fmt, what);
	fputc('\n', stderr);
}

/* Replace a map's keys with want[]: insert all, then delete what is not wanted. */
static int map_replace(int fd, const void *want, int n, size_t ksize)
{
	uint8_t one = 1, key[64], next[64];
	void *stale = malloc(ksize * MAX_KEYS);
	int nstale = 0, err = 0;
	void *prev = NULL;

	if (!stale)
		return -ENOMEM;
	for (int i = 0; i < n; i++)
		if (bpf_map_update_elem(fd, (const uint8_t *)want + i * ksize, &one, BPF_ANY))
			err = -errno;
	while (nstale < MAX_KEYS && !bpf_map_get_next_key(fd, prev, next)) {
		int keep = 0;

		for (int i = 0; i < n && !keep; i++)
			keep = !memcmp(next, (const uint8_t *)want + i * ksize, ksize);
		if (!keep)
			memcpy((uint8_t *)stale + nstale++ * ksize, next, ksize);
		memcpy(key, next, ksize);
		prev = key;
	}
	for (int i = 0; i < nstale; i++)
		bpf_map_delete_elem(fd, (uint8_t *)stale + i * ksize);
	free(stale);
	return err;
}

/* Directories named `unit` below the cgroup root: a unit's cgroup, wherever its slice is. */
static int find_unit(const char *dir, const char *unit, int depth, uint64_t *ids, int *n, int max)
{
	DIR *d;
	struct dirent *e;
	int found = 0;

	if (depth > 6 || !(d = opendir(dir)))
		return 0;
	while ((e = readdir(d)) && *n < max) {
		char sub[4096];
		struct stat st;

		if (e->d_type != DT_DIR || e->d_name[0] == '.')
			continue;
		if (snprintf(sub, sizeof(sub), "%s/%s", dir, e->d_name) >= (int)sizeof(sub))
			continue;
		if (!strcmp(e->d_name, unit) && !stat(sub, &st)) {
			ids[(*n)++] = st.st_ino; /* a cgroup v2 directory's inode is its id */
			found++;
			continue;
		}
		found += find_unit(sub, unit, depth + 1, ids, n, max);
	}
	closedir(d);
	return found;
}

int sw_policy_apply(struct sw_loader *l, const struct sw_policy *p, const char *cgroup_root,
		    struct sw_policy_state *st)
{
	struct smtpwatch_bpf *s = l->skel;
	struct sw_exe_key *exes = calloc(p->n_executables + 1, sizeof(*exes));
	uint64_t *scripts = calloc(p->n_executables + 1, sizeof(*scripts));
	uint64_t *cgids = calloc(MAX_KEYS, sizeof(*cgids));
	struct sw_lpm4 *d4 = calloc(p->n_dests + 1, sizeof(*d4));
	struct sw_lpm6 *d6 = calloc(p->n_dests + 1, sizeof(*d6));
	struct sw_policy_cfg *cfg = calloc(1, sizeof(*cfg));
	int nexe = 0, nscr = 0, ncg = 0, n4 = 0, n6 = 0, err = 0;
	uint32_t zero = 0;

	memset(st, 0, sizeof(*st));
	if (!exes || !scripts || !cgids || !d4 || !d6 || !cfg) {
		err = -ENOMEM;
		goto out;
	}
	for (int i = 0; i < p->n_executables; i++) {
		struct stat sb;
		char head[2] = "";
		int fd = open(p->executables[i], O_RDONLY | O_CLOEXEC);

		if (fd < 0 || fstat(fd, &sb)) {
			if (fd >= 0)
				close(fd);
			warn_once(st, "allow.executables: %s does not exist here", p->executables[i]);
			continue;
		}
		/* A #! script is named by its path (docs/config.md); a binary by its inode. */
		if (read(fd, head, 2) == 2 && head[0] == '#' && head[1] == '!')
			scripts[nscr++] = sw_script_hash(p->executables[i]);
		else {
			exes[nexe].ino = sb.st_ino;
			/* The kernel's dev_t: major in the top 12 bits, minor in the low 20. */
			exes[nexe].dev = (major(sb.st_dev) << 20) | minor(sb.st_dev);
			nexe++;
		}
		close(fd);
	}
	for (int i = 0; i < p->n_units; i++)
		if (!find_unit(cgroup_root, p->units[i], 0, cgids, &ncg, MAX_KEYS))
			warn_once(st, "allow.units: %s has no cgroup (not running?)", p->units[i]);
	for (int i = 0; i < p->n_cgroups && ncg < MAX_KEYS; i++) {
		char path[4096];
		struct stat sb;

		snprintf(path, sizeof(path), "%s%s", cgroup_root, p->cgroups[i]);
		if (stat(path, &sb) || !S_ISDIR(sb.st_mode))
			warn_once(st, "allow.cgroups: %s is not a cgroup here", p->cgroups[i]);
		else
			cgids[ncg++] = sb.st_ino;
	}
	for (int i = 0; i < p->n_dests; i++) {
		if (p->dests[i].family == AF_INET) {
			d4[n4].prefixlen = p->dests[i].prefix;
			memcpy(d4[n4++].addr, p->dests[i].addr, 4);
		} else {
			d6[n6].prefixlen = p->dests[i].prefix;
			memcpy(d6[n6++].addr, p->dests[i].addr, 16);
		}
	}
	err = map_replace(bpf_map__fd(s->maps.allow_exes), exes, nexe, sizeof(*exes));
	err = err ?: map_replace(bpf_map__fd(s->maps.allow_scripts), scripts, nscr, sizeof(*scripts));
	err = err ?: map_replace(bpf_map__fd(s->maps.allow_cgroups), cgids, ncg, sizeof(*cgids));
	err = err ?: map_replace(bpf_map__fd(s->maps.allow_uids), p->uids, p->n_uids, sizeof(uint32_t));
	err = err ?: map_replace(bpf_map__fd(s->maps.allow_dst4), d4, n4, sizeof(*d4));
	err = err ?: map_replace(bpf_map__fd(s->maps.allow_dst6), d6, n6, sizeof(*d6));
	if (err)
		goto out;
	/* The switch last: the lists are in place before the mode takes effect. */
	cfg->mode = p->mode;
	for (int i = 0; i < p->nports; i++)
		cfg->port_bits[p->ports[i] >> 6] |= 1ULL << (p->ports[i] & 63);
	if (bpf_map_update_elem(bpf_map__fd(s->maps.policy_cfg), &zero, cfg, BPF_ANY))
		err = -errno;
out:
	free(exes);
	free(scripts);
	free(cgids);
	free(d4);
	free(d6);
	free(cfg);
	return err;
}
