// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <linux/magic.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <time.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include "smtpwatch.skel.h"
#include "behaviour.h"
#include "log.h"
#include "ifaces.h"
#include "persist.h"
#include "session.h"
#include "util.h"

#ifndef SW_ABI_HASH
#error "SW_ABI_HASH comes from the Makefile: a hash of include/smtpwatch/events.h"
#endif

#define META_MAGIC 0x534d545057415443ULL /* "SMTPWATC" */
#define STATE_MAGIC 0x5357535441544532ULL /* "SWSTATE2": bump when the file's layout changes */

int sw_persist_path(const struct sw_persist *p, const char *name, char *buf, size_t len)
{
	int n = snprintf(buf, len, "%s/%s", p->dir, name);

	return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

static bool on_bpffs(const char *path)
{
	struct statfs st;

	return !statfs(path, &st) && (unsigned long)st.f_type == BPF_FS_MAGIC;
}

/* Unlink every pinned object in the directory; returns how many went. */
static int unpin_all(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	int n = 0;

	if (!d)
		return 0;
	while ((e = readdir(d)))
		if (e->d_name[0] != '.' && !unlinkat(dirfd(d), e->d_name, 0))
			n++;
	closedir(d);
	return n;
}

/* The maps whose contents a new agent needs: queued records and flow state. */
static struct bpf_map *const *kept_maps(struct smtpwatch_bpf *s, int *n)
{
	static struct bpf_map *maps[6];

	maps[0] = s->maps.events;
	maps[1] = s->maps.stats;
	maps[2] = s->maps.flows;
	maps[3] = s->maps.syns;
	maps[4] = s->maps.wire_flows;
	maps[5] = s->maps.execs;
	*n = 6;
	return maps;
}

/* A pinned map can be reused only if it has exactly this build's shape. */
static bool map_matches(int fd, const struct bpf_map *m)
{
	struct bpf_map_info info = { 0 };
	__u32 len = sizeof(info);

	if (bpf_obj_get_info_by_fd(fd, &info, &len))
		return false;
	return info.type == bpf_map__type(m) && info.key_size == bpf_map__key_size(m) &&
	       info.value_size == bpf_map__value_size(m) &&
	       info.max_entries == bpf_map__max_entries(m) && info.map_flags == bpf_map__map_flags(m);
}

static int meta_map(struct sw_persist *p, bool *adopted)
{
	char path[320];
	struct bpf_map_info info = { 0 };
	__u32 len = sizeof(info);
	int fd;

	*adopted = false;
	if (sw_persist_path(p, "meta", path, sizeof(path)))
		return -ENAMETOOLONG;
	fd = bpf_obj_get(path);
	if (fd >= 0 && (bpf_obj_get_info_by_fd(fd, &info, &len) || info.type != BPF_MAP_TYPE_ARRAY ||
			info.value_size != sizeof(struct sw_meta) || info.max_entries != 1 ||
			!(info.map_flags & BPF_F_MMAPABLE))) {
		close(fd);
		fd = -1;
	}
	if (fd >= 0) {
		p->meta = mmap(NULL, sysconf(_SC_PAGESIZE), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
		if (p->meta == MAP_FAILED) {
			p->meta = NULL;
			close(fd);
			fd = -1;
		} else if (p->meta->magic == META_MAGIC && p->meta->abi == SW_ABI_HASH) {
			p->meta_fd = fd;
			*adopted = true;
			return 0;
		} else {
			pr_warn("the state pinned in %s is from an incompatible build: starting afresh, what it had queued is lost\n",
				p->dir);
			munmap(p->meta, sysconf(_SC_PAGESIZE));
			p->meta = NULL;
			close(fd);
			fd = -1;
		}
	}
	/* Nothing to adopt: whatever is left in the directory cannot be trusted. */
	p->fresh_maps += unpin_all(p->dir) > 0;
	{
		LIBBPF_OPTS(bpf_map_create_opts, mo, .map_flags = BPF_F_MMAPABLE);

		fd = bpf_map_create(BPF_MAP_TYPE_ARRAY, "sw_meta", 4, sizeof(struct sw_meta), 1, &mo);
	}
	if (fd < 0)
		return -errno;
	p->meta = mmap(NULL, sysconf(_SC_PAGESIZE), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (p->meta == MAP_FAILED) {
		int err = -errno;

		p->meta = NULL;
		close(fd);
		return err;
	}
	p->meta->magic = META_MAGIC;
	p->meta->abi = SW_ABI_HASH;
	if (getrandom(&p->meta->generation, sizeof(p->meta->generation), 0) !=
	    sizeof(p->meta->generation))
		p->meta->generation = (uint64_t)getpid() << 32 ^ (uint64_t)time(NULL);
	p->meta->clean = 1; /* nothing was open */
	if (bpf_obj_pin(fd, path)) {
		int err = -errno;

		munmap(p->meta, sysconf(_SC_PAGESIZE));
		p->meta = NULL;
		close(fd);
		return err;
	}
	p->meta_fd = fd;
	return 0;
}

static void persist_off(struct sw_persist *p, const char *fmt, const char *what)
{
	snprintf(p->error, sizeof(p->error), fmt, p->dir, what);
	pr_warn("%s: running without pinning, a restart loses what is queued\n", p->error);
	if (p->meta) {
		munmap(p->meta, sysconf(_SC_PAGESIZE));
		p->meta = NULL;
	}
	if (p->meta_fd >= 0)
		close(p->meta_fd);
	if (p->dir_fd >= 0)
		close(p->dir_fd);
	p->meta_fd = p->dir_fd = -1;
	p->active = false;
}

int sw_persist_open(struct sw_persist *p, const char *dir, bool keep, struct smtpwatch_bpf *skel)
{
	struct bpf_map *const *maps;
	struct stat st;
	bool adopted;
	int n, err;

	memset(p, 0, sizeof(*p));
	p->dir_fd = p->meta_fd = -1;
	p->keep = keep;
	if (snprintf(p->dir, sizeof(p->dir), "%s", dir) >= (int)sizeof(p->dir)) {
		persist_off(p, "the pin directory %s%s is too long", "");
		return 0;
	}
	if (stat(p->dir, &st)) {
		char parent[sizeof(p->dir)], *slash;

		if (!keep)
			return 0; /* nothing pinned, nothing asked */
		snprintf(parent, sizeof(parent), "%s", p->dir);
		slash = strrchr(parent, '/');
		if (slash && slash != parent)
			*slash = 0;
		/* Where systemd mounts it; hosts without systemd may not have it yet. */
		if (!on_bpffs(parent) && !strcmp(parent, "/sys/fs/bpf") &&
		    !mount("bpf", parent, "bpf", 0, "mode=0700"))
			pr_info("mounted the BPF filesystem on %s\n", parent);
		if (!on_bpffs(parent)) {
			persist_off(p, "cannot pin in %s: %s is not a mounted BPF filesystem (mount -t bpf bpf /sys/fs/bpf)",
				    parent);
			return 0;
		}
		if (mkdir(p->dir, 0700) && errno != EEXIST) {
			persist_off(p, "cannot create %s: %s", strerror(errno));
			return 0;
		}
	} else if (!on_bpffs(p->dir)) {
		persist_off(p, "cannot pin in %s%s: it is not on a BPF filesystem", "");
		return 0;
	}
	p->dir_fd = open(p->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (p->dir_fd < 0) {
		persist_off(p, "cannot open %s: %s", strerror(errno));
		return 0;
	}
	if (flock(p->dir_fd, LOCK_EX | LOCK_NB)) {
		pr_warn("another agent runs with the state pinned in %s: stop it first, or give this one --pin-dir\n",
			p->dir);
		close(p->dir_fd);
		p->dir_fd = -1;
		return EX_SW_UNAVAILABLE;
	}
	err = meta_map(p, &adopted);
	if (err) {
		persist_off(p, "cannot create the state map in %s: %s", strerror(-err));
		return 0;
	}
	p->active = true;
	if (adopted) {
		struct sw_meta *m = p->meta;

		p->resumed = true;
		p->was_clean = m->clean;
		p->prev_pid = m->pid;
		if (!m->clean) {
			p->lost_sessions = m->open_sessions;
			p->lost_lines = m->seq_assigned > m->seq_flushed ? m->seq_assigned - m->seq_flushed : 0;
		}
		m->seq_assigned = m->seq_flushed;
		m->restarts++;
	}
	p->meta->clean = 0;
	p->meta->pid = getpid();
	p->meta->open_sessions = 0;

	maps = kept_maps(skel, &n);
	for (int i = 0; i < n; i++) {
		char path[320];
		int fd;

		if (sw_persist_path(p, bpf_map__name(maps[i]), path, sizeof(path)))
			continue;
		fd = bpf_obj_get(path);
		if (fd >= 0) {
			if (!map_matches(fd, maps[i])) {
				pr_warn("the pinned map %s has another shape (an upgrade, or a new --ring-size): it starts empty\n",
					path);
				unlink(path);
				p->fresh_maps++;
			}
			close(fd);
		}
		/* libbpf reuses the pinned map at load, or creates and pins it. */
		bpf_map__set_pin_path(maps[i], path);
	}
	return 0;
}

void sw_persist_close(struct sw_persist *p, bool clean)
{
	if (!p->active)
		return;
	if (p->keep) {
		p->meta->clean = clean;
		p->meta->pid = 0;
	}
	munmap(p->meta, sysconf(_SC_PAGESIZE));
	close(p->meta_fd);
	if (!p->keep) {
		/* The hooks go with the agent: links and maps die with their pins. */
		unpin_all(p->dir);
		rmdir(p->dir);
	}
	close(p->dir_fd); /* and the lock */
	p->meta = NULL;
	p->meta_fd = p->dir_fd = -1;
	p->active = false;
}

int sw_persist_cleanup(const char *dir, const char *state_file, bool quiet)
{
	int fd, pins = 0, filters = -1;

	libbpf_set_print(NULL); /* "no such filter" on most interfaces is the normal case */

	fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd >= 0) {
		if (flock(fd, LOCK_EX | LOCK_NB)) {
			fprintf(stderr, "smtpwatch: an agent is running with the state pinned in %s: stop it first\n",
				dir);
			close(fd);
			return EX_SW_UNAVAILABLE;
		}
		/* clsact filters are not links: they stay until removed by handle; and the
		 * qdiscs the agent created are marked in the directory: before unpinning. */
		filters = sw_ifaces_remove_filters(dir);
		pins = unpin_all(dir);
		if (rmdir(dir) && errno != ENOENT) {
			fprintf(stderr, "smtpwatch: cannot remove %s: %s\n", dir, strerror(errno));
			close(fd);
			return EX_SW_UNAVAILABLE;
		}
		close(fd);
	} else if (errno != ENOENT) {
		fprintf(stderr, "smtpwatch: cannot open %s: %s\n", dir, strerror(errno));
		return errno == EACCES || errno == EPERM ? EX_SW_NOPERM : EX_SW_UNAVAILABLE;
	}
	if (filters < 0)
		filters = sw_ifaces_remove_filters(dir);
	if (state_file)
		unlink(state_file);
	if (!quiet)
		printf("removed %d pinned objects from %s and %d tc filters\n", pins, dir, filters);
	return 0;
}

/* ---- the state file ---- */

struct state_hdr {
	uint64_t magic;
	uint64_t abi;
	uint64_t generation;
	uint32_t conn_size;
	uint32_t count;
	uint32_t session_size; /* sizeof(struct sw_session): another agent build's file is not read */
	uint32_t pad;
};

static int put(FILE *f, const void *p, size_t n)
{
	return fwrite(p, 1, n, f) == n ? 0 : -EIO;
}

static int put_str(FILE *f, const char *s, size_t n)
{
	uint32_t len = s ? (uint32_t)n : UINT32_MAX;

	return put(f, &len, sizeof(len)) ?: (s ? put(f, s, n) : 0);
}

static int get(FILE *f, void *p, size_t n)
{
	return fread(p, 1, n, f) == n ? 0 : -EINVAL;
}

/* A string of at most max bytes, NUL-terminated on the heap; *out NULL if none was saved. */
static int get_str(FILE *f, char **out, size_t *n_out, size_t max)
{
	uint32_t len;

	*out = NULL;
	if (get(f, &len, sizeof(len)))
		return -EINVAL;
	if (len == UINT32_MAX)
		return 0;
	if (len > max)
		return -EINVAL;
	*out = malloc(len + 1);
	if (!*out)
		return -ENOMEM;
	if (get(f, *out, len)) {
		free(*out);
		*out = NULL;
		return -EINVAL;
	}
	(*out)[len] = 0;
	if (n_out)
		*n_out = len;
	return 0;
}

static int save_stream(FILE *f, const struct sw_stream *st)
{
	uint32_t end = st->buf ? st->end : 0;

	return put(f, &end, sizeof(end)) ?: put(f, &st->first_ns, sizeof(st->first_ns)) ?:
	       put(f, st->buf, end) ?: put(f, st->have, (end + 7) / 8);
}

static int save_one(FILE *f, const struct sw_session *s)
{
	uint8_t flags[4] = { s->wire, s->have_conn, s->have_src, s->closing };
	int err;

	err = put(f, &s->id, sizeof(s->id)) ?: put(f, flags, sizeof(flags)) ?:
	      put(f, &s->conn, sizeof(s->conn)) ?: put(f, &s->src, sizeof(s->src)) ?:
	      put(f, &s->dst, sizeof(s->dst)) ?: put(f, &s->ifindex, sizeof(s->ifindex)) ?:
	      put(f, &s->closed, sizeof(s->closed)) ?: put(f, &s->start_ns, sizeof(s->start_ns)) ?:
	      put(f, &s->last_ns, sizeof(s->last_ns)) ?: put(f, &s->close_ns, sizeof(s->close_ns)) ?:
	      put(f, &s->deadline_ns, sizeof(s->deadline_ns)) ?: save_stream(f, &s->st[0]) ?:
	      save_stream(f, &s->st[1]);
	if (err)
		return err;
	err = put_str(f, s->exe, s->exe ? strlen(s->exe) : 0) ?: put_str(f, s->args, s->args_len);
	if (err)
		return err;
	{
		uint8_t trunc = s->args_truncated;

		err = put(f, &trunc, 1) ?: put(f, s->cgroup, sizeof(s->cgroup)) ?:
		      put(f, s->container_id, sizeof(s->container_id)) ?: put(f, s->unit, sizeof(s->unit)) ?:
		      put(f, s->entity_id, sizeof(s->entity_id));
	}
	for (int i = 0; !err && i < SW_MAX_ANCESTORS; i++)
		err = put_str(f, s->anc_exe[i], s->anc_exe[i] ? strlen(s->anc_exe[i]) : 0);
	return err;
}

int sw_persist_save_sessions(const struct sw_persist *p, const struct sw_sessions *t,
			     const struct bhv_table *bhv, const char *path)
{
	struct state_hdr h = { STATE_MAGIC, SW_ABI_HASH, p->meta ? p->meta->generation : 0,
			       sizeof(struct sw_connect), t->count, sizeof(struct sw_session), 0 };
	char tmp[4096];
	FILE *f;
	int err, fd;

	if (!p->active || !p->keep)
		return 0;
	if (snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= (int)sizeof(tmp))
		return -ENAMETOOLONG;
	unlink(tmp);
	fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0)
		return -errno;
	f = fdopen(fd, "w");
	if (!f) {
		err = -errno;
		close(fd);
		unlink(tmp);
		return err;
	}
	err = put(f, &h, sizeof(h));
	for (const struct sw_session *s = t->oldest; s && !err; s = s->next)
		err = save_one(f, s);
	if (!err && bhv)
		err = bhv_save(bhv, f);
	if (fflush(f) || fsync(fileno(f)))
		err = err ?: -errno;
	if (fclose(f))
		err = err ?: -errno;
	if (!err && rename(tmp, path))
		err = -errno;
	if (err)
		unlink(tmp);
	return err;
}

static int load_stream(FILE *f, struct sw_stream *st)
{
	uint32_t end;
	uint64_t first;
	uint8_t *buf = NULL, *have = NULL;
	int err = 0;

	if (get(f, &end, sizeof(end)) || get(f, &first, sizeof(first)) || end > (64u << 20))
		return -EINVAL;
	if (!end)
		return 0;
	buf = malloc(end);
	have = malloc((end + 7) / 8);
	if (!buf || !have)
		err = -ENOMEM;
	else if (get(f, buf, end) || get(f, have, (end + 7) / 8))
		err = -EINVAL;
	/* Put back each run of received bytes: the holes stay holes. */
	for (uint32_t i = 0; !err && i < end;) {
		uint32_t j = i;

		if (!(have[i / 8] & (1u << (i % 8)))) {
			i++;
			continue;
		}
		while (j < end && (have[j / 8] & (1u << (j % 8))))
			j++;
		err = sw_stream_put(st, i, buf + i, j - i, first);
		i = j;
	}
	if (!err)
		st->first_ns = first;
	free(buf);
	free(have);
	return err;
}

static int load_one(FILE *f, struct sw_session *s)
{
	uint8_t flags[4], trunc;
	int err;

	err = get(f, flags, sizeof(flags)) ?: get(f, &s->conn, sizeof(s->conn)) ?:
	      get(f, &s->src, sizeof(s->src)) ?: get(f, &s->dst, sizeof(s->dst)) ?:
	      get(f, &s->ifindex, sizeof(s->ifindex)) ?: get(f, &s->closed, sizeof(s->closed)) ?:
	      get(f, &s->start_ns, sizeof(s->start_ns)) ?: get(f, &s->last_ns, sizeof(s->last_ns)) ?:
	      get(f, &s->close_ns, sizeof(s->close_ns)) ?:
	      get(f, &s->deadline_ns, sizeof(s->deadline_ns)) ?: load_stream(f, &s->st[0]) ?:
	      load_stream(f, &s->st[1]);
	if (err)
		return err;
	s->wire = flags[0];
	s->have_conn = flags[1];
	s->have_src = flags[2];
	s->closing = flags[3];
	err = get_str(f, &s->exe, NULL, 65536) ?: get_str(f, &s->args, &s->args_len, 1 << 20) ?:
	      get(f, &trunc, 1) ?: get(f, s->cgroup, sizeof(s->cgroup)) ?:
	      get(f, s->container_id, sizeof(s->container_id)) ?: get(f, s->unit, sizeof(s->unit)) ?:
	      get(f, s->entity_id, sizeof(s->entity_id));
	if (err)
		return err;
	s->args_truncated = trunc;
	s->cgroup[sizeof(s->cgroup) - 1] = 0;
	s->container_id[sizeof(s->container_id) - 1] = 0;
	s->unit[sizeof(s->unit) - 1] = 0;
	s->entity_id[sizeof(s->entity_id) - 1] = 0;
	for (int i = 0; !err && i < SW_MAX_ANCESTORS; i++)
		err = get_str(f, &s->anc_exe[i], NULL, 65536);
	return err;
}

long sw_persist_load_sessions(const struct sw_persist *p, struct sw_sessions *t,
			      struct bhv_table *bhv, const char *path, long *procs)
{
	struct state_hdr h;
	long n = 0;
	int err = 0;
	FILE *f;
	int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);

	*procs = 0;
	if (fd < 0)
		return errno == ENOENT ? 0 : -errno;
	/* Read once: whatever happens, the next agent must not take it back again. */
	unlink(path);
	f = fdopen(fd, "r");
	if (!f) {
		close(fd);
		return -ENOMEM;
	}
	if (get(f, &h, sizeof(h)) || h.magic != STATE_MAGIC || h.abi != SW_ABI_HASH ||
	    h.conn_size != sizeof(struct sw_connect) || h.session_size != sizeof(struct sw_session)) {
		fclose(f);
		return -EPROTO;
	}
	if (!p->active || !p->meta || h.generation != p->meta->generation) {
		fclose(f);
		return -ESTALE; /* written for other pinned maps: its flows are gone */
	}
	for (uint32_t i = 0; i < h.count && !err; i++) {
		uint64_t id;
		struct sw_session *s, *ev = NULL;

		if (get(f, &id, sizeof(id))) {
			err = -EINVAL;
			break;
		}
		s = sw_session_add(t, id, 0, &ev);
		if (ev)
			sw_session_destroy(ev);
		if (!s) {
			err = -ENOMEM;
			break;
		}
		err = load_one(f, s);
		if (err) {
			sw_session_remove(t, s);
			sw_session_destroy(s);
			break;
		}
		n++;
	}
	/* After the sessions, the evidence per process (absent in older files). */
	*procs = err ? err : bhv ? bhv_load(bhv, f) : 0;
	fclose(f);
	return err ? err : n;
}
