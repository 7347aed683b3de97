// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * `make bench`, figure 1: what the per-packet programs cost, by
 * BPF_PROG_TEST_RUN, as the difference from an empty program of the same type
 * run on the same kind of frame in the same round. test_run's own floor is
 * ~40 ns here, so only differences mean anything.
 *
 * Every round runs every case once (--repeat runs, in calls of 1/10 of that, or
 * of --batch for the capture case), in an order rotated by the round. A round's
 * figure for a case is the median over its calls, and the result is the median
 * over rounds of the per-round difference from the baseline (paired, so a slow
 * round shifts both sides). Times are wall-clock around the syscall, divided by
 * the runs: the kernel's own figure (reported alongside) is an integer number
 * of ns per call, too coarse for a 3 ns budget.
 *
 * The SMTP case is a payload segment of a wire flow whose SYN was seen: each
 * run copies the payload into the ring buffer. Runs go in batches that fit
 * under the ring's wakeup threshold, and the ring is drained between batches
 * (not timed), as a live consumer keeps it nearly empty. Its empty baseline
 * uses the same batches, so the per-call cost cancels.
 *
 * test_run never transmits: the documentation-range addresses below see no
 * traffic. Prints one JSON document on stdout; exit 1 on any failure.
 */
#include <errno.h>
#include <getopt.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <sys/resource.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "smtpwatch/events.h"
#include "smtpwatch.skel.h"
#include "../bpf/pkt_util.h"

#define ETH_HLEN 14
#define MAX_ROUNDS 50
#define MAX_CASES 16
#define F_PSH 0x08
#define F_ACK 0x10
#define F_SYN 0x02
#define TC_NEXT ((uint32_t)-1) /* TC_ACT_UNSPEC, what the tc programs return */

/* The agent's default watched ports (agent/config.c, --ports). */
static const uint16_t watched[] = { 25, 465, 587, 2525 };

struct frame {
	uint8_t buf[256];
	uint32_t len;
};

struct bench_case {
	const char *name;
	const char *what;
	int prog_fd;
	const struct frame *frame;
	uint32_t batch;		/* runs per syscall */
	uint32_t records;	/* ring records each run must produce */
	uint32_t retval;	/* what the program must return */
	const char *baseline;	/* case this one is compared with, or NULL */
	double wall[MAX_ROUNDS]; /* ns per run */
	double kern[MAX_ROUNDS];
};

static struct smtpwatch_bpf *skel;
static struct ring_buffer *rb;
static uint64_t drained;
static struct bench_case cases[MAX_CASES];
static int ncases;

/* Ethernet + IPv4 + TCP (proto 6) or UDP (proto 17) with a payload. */
static void frame4(struct frame *f, uint8_t proto, const char *src, uint16_t sport,
		   const char *dst, uint16_t dport, uint8_t flags, uint32_t seq,
		   const void *payload, uint32_t plen)
{
	uint32_t l4len = (proto == 17 ? 8 : 20) + plen;
	uint8_t *ip = f->buf + ETH_HLEN, *l4 = ip + 20;

	memset(f->buf, 0, sizeof(f->buf));
	memcpy(f->buf, "\x02\x00\x00\x00\x00\x02\x02\x00\x00\x00\x00\x01", 12);
	put16(f->buf + 12, 0x0800);
	ip[0] = 0x45;
	put16(ip + 2, 20 + l4len);
	put16(ip + 4, 0x4242);
	ip[8] = 64;
	ip[9] = proto;
	inet_pton(AF_INET, src, ip + 12);
	inet_pton(AF_INET, dst, ip + 16);
	put16(l4, sport);
	put16(l4 + 2, dport);
	if (proto == 17) {
		put16(l4 + 4, l4len);
	} else {
		put32(l4 + 4, seq);
		put32(l4 + 8, 1);
		l4[12] = 5 << 4;
		l4[13] = flags;
		put16(l4 + 14, 64240);
	}
	memcpy(l4 + (proto == 17 ? 8 : 20), payload, plen);
	f->len = ETH_HLEN + 20 + l4len;
}

/* Ethernet + IPv6 + TCP with a payload; with ext, hop-by-hop and destination
 * options headers (8 bytes of PadN each) come first, as sticky socket options
 * put them in every segment: the programs' full parser takes those. */
static void frame6(struct frame *f, const char *src, uint16_t sport, const char *dst,
		   uint16_t dport, uint8_t flags, uint32_t seq, bool ext, const void *payload,
		   uint32_t plen)
{
	uint8_t *ip = f->buf + ETH_HLEN, *l4;
	uint32_t xlen = ext ? 16 : 0;

	memset(f->buf, 0, sizeof(f->buf));
	memcpy(f->buf, "\x02\x00\x00\x00\x00\x02\x02\x00\x00\x00\x00\x01", 12);
	put16(f->buf + 12, 0x86dd);
	ip[0] = 0x60;
	put16(ip + 4, xlen + 20 + plen);
	ip[6] = ext ? 0 : 6;
	ip[7] = 64;
	inet_pton(AF_INET6, src, ip + 8);
	inet_pton(AF_INET6, dst, ip + 24);
	if (ext) {
		memcpy(ip + 40, "\x3c\x00\x01\x04\x00\x00\x00\x00", 8);
		memcpy(ip + 48, "\x06\x00\x01\x04\x00\x00\x00\x00", 8);
	}
	l4 = ip + 40 + xlen;
	put16(l4, sport);
	put16(l4 + 2, dport);
	put32(l4 + 4, seq);
	put32(l4 + 8, 1);
	l4[12] = 5 << 4;
	l4[13] = flags;
	put16(l4 + 14, 64240);
	memcpy(l4 + 20, payload, plen);
	f->len = ETH_HLEN + 40 + xlen + 20 + plen;
}

static double now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e9 + ts.tv_nsec;
}

static int on_record(void *ctx, void *data, size_t size)
{
	(void)ctx;
	(void)data;
	(void)size;
	drained++;
	return 0;
}

static int drain(uint64_t *n)
{
	int err;

	drained = 0;
	err = ring_buffer__consume(rb);
	*n = drained;
	return err < 0 ? err : 0;
}

static int read_sysctl(const char *path)
{
	FILE *f = fopen(path, "r");
	int v = -1;

	if (!f)
		return -1;
	if (fscanf(f, "%d", &v) != 1)
		v = -1;
	fclose(f);
	return v;
}

static int cmp_double(const void *a, const void *b);
static double median(const double *v, int n);

/*
 * One round of one case: `repeat` runs in calls of c->batch. The round's figure
 * is the median over its calls, so a call that was interrupted (other work on a
 * 2-CPU machine) does not move it; the kernel's figure is the plain mean.
 */
static int run_case(struct bench_case *c, uint32_t repeat, int round)
{
	uint32_t calls = repeat / c->batch;
	double kern = 0, *per_call;
	uint64_t n;
	int err = 0;

	per_call = calloc(calls, sizeof(*per_call));
	if (!per_call)
		return -ENOMEM;
	if (drain(&n)) {
		err = -EIO;
		goto out;
	}
	for (uint32_t i = 0; i < calls; i++) {
		LIBBPF_OPTS(bpf_test_run_opts, o, .data_in = c->frame->buf,
			    .data_size_in = c->frame->len, .repeat = c->batch);
		double t0 = now_ns();

		err = bpf_prog_test_run_opts(c->prog_fd, &o);
		per_call[i] = (now_ns() - t0) / c->batch;
		if (err) {
			fprintf(stderr, "bench_tc: test_run of %s: %s\n", c->name, strerror(-err));
			goto out;
		}
		if (o.retval != c->retval) {
			fprintf(stderr, "bench_tc: %s returned %u, expected %u\n", c->name,
				o.retval, c->retval);
			err = -EINVAL;
			goto out;
		}
		kern += (double)o.duration * c->batch;
		if (drain(&n)) {
			err = -EIO;
			goto out;
		}
		/* Proof that the case did what it is named after, every call. */
		if (n != (uint64_t)c->records * c->batch) {
			fprintf(stderr, "bench_tc: %s produced %llu ring records in a batch of %u, expected %u each\n",
				c->name, (unsigned long long)n, c->batch, c->records);
			err = -EINVAL;
			goto out;
		}
	}
	c->wall[round] = median(per_call, calls);
	c->kern[round] = kern / ((double)calls * c->batch);
out:
	free(per_call);
	return err;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static double median(const double *v, int n)
{
	double *s = malloc(n * sizeof(*v)), m;

	if (!s)
		return v[0];
	memcpy(s, v, n * sizeof(*v));
	qsort(s, n, sizeof(*s), cmp_double);
	m = n % 2 ? s[n / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
	free(s);
	return m;
}

static struct bench_case *find_case(const char *name)
{
	for (int i = 0; i < ncases; i++)
		if (!strcmp(cases[i].name, name))
			return &cases[i];
	return NULL;
}

static void add_case(const char *name, const char *what, int fd, const struct frame *f,
		     uint32_t batch, uint32_t records, uint32_t retval, const char *baseline)
{
	cases[ncases++] = (struct bench_case){ .name = name, .what = what, .prog_fd = fd,
					       .frame = f, .batch = batch, .records = records,
					       .retval = retval, .baseline = baseline };
}

/* An empty cgroup_skb program (r0 = 1, exit), the floor for the cgroup_skb hooks. */
static int load_empty_cgroup_skb(void)
{
	struct bpf_insn insns[] = {
		{ .code = BPF_ALU64 | BPF_MOV | BPF_K, .dst_reg = BPF_REG_0, .imm = 1 },
		{ .code = BPF_JMP | BPF_EXIT },
	};
	LIBBPF_OPTS(bpf_prog_load_opts, o, .expected_attach_type = BPF_CGROUP_INET_EGRESS);
	int fd = bpf_prog_load(BPF_PROG_TYPE_CGROUP_SKB, "sw_bench_empty", "Dual BSD/GPL", insns,
			       2, &o);

	return fd < 0 ? -errno : fd;
}

static void usage(FILE *f)
{
	fprintf(f, "Usage: bench_tc [--repeat N] [--rounds N] [--batch N]\n"
		   "Cost per packet of smtpwatch's tc and cgroup_skb programs minus an empty\n"
		   "program, by BPF_PROG_TEST_RUN; one JSON document on stdout. Needs root and\n"
		   "kernel.bpf_stats_enabled=0.\n");
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "repeat", required_argument, NULL, 'r' },
		{ "rounds", required_argument, NULL, 'n' },
		{ "batch", required_argument, NULL, 'b' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	struct rlimit rl = { RLIM_INFINITY, RLIM_INFINITY };
	static const char helo[] = "EHLO DESKTOP-4F2K9QX\r\n";
	static const char reply[] = "250 mx.example.net Hello\r\n";
	static uint8_t junk[64];
	struct frame tcp_other, udp, smtp_syn, smtp_data, smtp_unknown, smtp_synack, smtp_reply;
	struct frame syn6, data6, syn6x, data6x;
	uint32_t repeat = 1000000, batch = 400, chunk;
	int rounds = 10, cg_empty = -1, err, opt, stats;
	uint64_t n;

	while ((opt = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		switch (opt) {
		case 'r':
			repeat = strtoul(optarg, NULL, 10);
			break;
		case 'n':
			rounds = atoi(optarg);
			break;
		case 'b':
			batch = strtoul(optarg, NULL, 10);
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 64;
		}
	}
	if (rounds < 1 || rounds > MAX_ROUNDS || batch < 1 || repeat < batch) {
		fprintf(stderr, "bench_tc: need 1 <= rounds <= %d and 1 <= batch <= repeat\n", MAX_ROUNDS);
		return 64;
	}
	repeat -= repeat % batch; /* whole batches, the same count for every case */
	chunk = repeat % 10 ? repeat : repeat / 10; /* calls per round for the unbatched cases */
	stats = read_sysctl("/proc/sys/kernel/bpf_stats_enabled");
	if (stats != 0) {
		fprintf(stderr, "bench_tc: kernel.bpf_stats_enabled is %d: bpf_stats adds its own cost to every run; set it to 0 for this measurement\n",
			stats);
		return 1;
	}
	setrlimit(RLIMIT_MEMLOCK, &rl);

	skel = smtpwatch_bpf__open();
	if (!skel) {
		fprintf(stderr, "bench_tc: cannot open the BPF object: %s\n", strerror(errno));
		return 1;
	}
	/* As agent/loader.c configures it, plus the empty yardstick the agent skips. */
	for (size_t i = 0; i < sizeof(watched) / sizeof(watched[0]); i++)
		skel->rodata->port_bits[watched[i] >> 6] |= 1ULL << (watched[i] & 63);
	bpf_program__set_autoload(skel->progs.sw_tc_empty, true);
	err = smtpwatch_bpf__load(skel);
	if (err) {
		fprintf(stderr, "bench_tc: the BPF programs did not load: %s\n", strerror(-err));
		goto cleanup;
	}
	rb = ring_buffer__new(bpf_map__fd(skel->maps.events), on_record, NULL, NULL);
	if (!rb) {
		err = -errno;
		fprintf(stderr, "bench_tc: ring_buffer__new: %s\n", strerror(-err));
		goto cleanup;
	}
	cg_empty = load_empty_cgroup_skb();
	if (cg_empty < 0) {
		err = cg_empty;
		fprintf(stderr, "bench_tc: cannot load an empty cgroup_skb program: %s\n", strerror(-err));
		goto cleanup;
	}

	for (size_t i = 0; i < sizeof(junk); i++)
		junk[i] = 'a' + i % 26;
	frame4(&tcp_other, 6, "192.0.2.10", 40000, "198.51.100.80", 443, F_ACK | F_PSH, 1000,
	       junk, sizeof(junk));
	frame4(&udp, 17, "192.0.2.10", 40000, "198.51.100.53", 53, 0, 0, junk, 40);
	frame4(&smtp_syn, 6, "192.0.2.10", 40001, "198.51.100.25", 25, F_SYN, 7000, NULL, 0);
	frame4(&smtp_data, 6, "192.0.2.10", 40001, "198.51.100.25", 25, F_ACK | F_PSH, 7001,
	       helo, sizeof(helo) - 1);
	/* The same segment on a flow whose SYN was never seen: parse and lookup, no copy. */
	frame4(&smtp_unknown, 6, "192.0.2.10", 40002, "198.51.100.25", 25, F_ACK | F_PSH, 7001,
	       helo, sizeof(helo) - 1);

	/* The server's side of the first flow, at ingress: its SYN-ACK, then a reply. */
	frame4(&smtp_synack, 6, "198.51.100.25", 25, "192.0.2.10", 40001, F_SYN | F_ACK, 90000,
	       NULL, 0);
	frame4(&smtp_reply, 6, "198.51.100.25", 25, "192.0.2.10", 40001, F_ACK | F_PSH, 90001,
	       reply, sizeof(reply) - 1);
	frame6(&syn6, "2001:db8::10", 40003, "2001:db8:ffff::25", 25, F_SYN, 7000, false, NULL, 0);
	frame6(&data6, "2001:db8::10", 40003, "2001:db8:ffff::25", 25, F_ACK | F_PSH, 7001, false,
	       helo, sizeof(helo) - 1);
	frame6(&syn6x, "2001:db8::10", 40004, "2001:db8:ffff::25", 25, F_SYN, 7000, true, NULL, 0);
	frame6(&data6x, "2001:db8::10", 40004, "2001:db8:ffff::25", 25, F_ACK | F_PSH, 7001, true,
	       helo, sizeof(helo) - 1);

	/* The SYNs make the flows tracked wire flows (test_run skbs have no socket);
	 * the SYN-ACK gives the first one its server side. */
	{
		const struct {
			struct frame *f;
			bool ingress;
			uint32_t records;
		} setup[] = { { &smtp_syn, false, 1 }, { &smtp_synack, true, 0 },
			      { &syn6, false, 1 }, { &syn6x, false, 1 } };

		for (size_t i = 0; i < sizeof(setup) / sizeof(setup[0]); i++) {
			struct bpf_program *prog = setup[i].ingress ? skel->progs.sw_tc_ingress
								    : skel->progs.sw_tc_egress;
			LIBBPF_OPTS(bpf_test_run_opts, o, .data_in = setup[i].f->buf,
				    .data_size_in = setup[i].f->len, .repeat = 1);

			err = bpf_prog_test_run_opts(bpf_program__fd(prog), &o);
			if (!err && (drain(&n) || n != setup[i].records))
				err = -EINVAL;
			if (err) {
				fprintf(stderr, "bench_tc: setup frame %zu failed or gave %s\n", i,
					err == -EINVAL ? "the wrong records" : strerror(-err));
				goto cleanup;
			}
		}
	}

	{
		int tc_empty = bpf_program__fd(skel->progs.sw_tc_empty);
		int tc_egress = bpf_program__fd(skel->progs.sw_tc_egress);
		int tc_ingress = bpf_program__fd(skel->progs.sw_tc_ingress);
		int skb_egress = bpf_program__fd(skel->progs.sw_skb_egress);

		add_case("tc_empty", "sw_tc_empty, TCP frame", tc_empty, &tcp_other, chunk, 0,
			 TC_NEXT, NULL);
		add_case("tc_tcp_other", "sw_tc_egress, TCP ACK+64 B to :443", tc_egress, &tcp_other,
			 chunk, 0, TC_NEXT, "tc_empty");
		add_case("tc_udp", "sw_tc_egress, UDP 40 B to :53", tc_egress, &udp, chunk, 0, TC_NEXT,
			 "tc_empty");
		add_case("tc_empty_batched", "sw_tc_empty, SMTP frame, batched", tc_empty, &smtp_data,
			 batch, 0, TC_NEXT, NULL);
		add_case("tc_smtp_capture", "sw_tc_egress, EHLO segment of a tracked wire flow to :25",
			 tc_egress, &smtp_data, batch, 1, TC_NEXT, "tc_empty_batched");
		add_case("tc_smtp_untracked", "sw_tc_egress, the same segment, flow not tracked",
			 tc_egress, &smtp_unknown, chunk, 0, TC_NEXT, "tc_empty");
		add_case("tc_smtp_reply", "sw_tc_ingress, 250 reply of the tracked wire flow",
			 tc_ingress, &smtp_reply, batch, 1, TC_NEXT, "tc_empty_batched");
		add_case("tc_smtp_capture_v6", "sw_tc_egress, EHLO segment of a tracked IPv6 flow",
			 tc_egress, &data6, batch, 1, TC_NEXT, "tc_empty_batched");
		add_case("tc_smtp_capture_v6_ext",
			 "sw_tc_egress, the same with hop-by-hop and destination options headers",
			 tc_egress, &data6x, batch, 1, TC_NEXT, "tc_empty_batched");
		add_case("cgroup_skb_empty", "empty cgroup_skb, TCP frame", cg_empty, &tcp_other,
			 chunk, 0, 1, NULL);
		add_case("cgroup_skb_tcp_other", "sw_skb_egress, TCP ACK+64 B to :443", skb_egress,
			 &tcp_other, chunk, 0, 1, "cgroup_skb_empty");
		add_case("cgroup_skb_udp", "sw_skb_egress, UDP 40 B to :53", skb_egress, &udp,
			 chunk, 0, 1, "cgroup_skb_empty");
	}
	for (int r = 0; r < rounds; r++) {
		for (int k = 0; k < ncases; k++) {
			err = run_case(&cases[(k + r) % ncases], repeat, r);
			if (err)
				goto cleanup;
		}
	}
	if (read_sysctl("/proc/sys/kernel/bpf_stats_enabled") != 0) {
		fprintf(stderr, "bench_tc: kernel.bpf_stats_enabled changed during the measurement\n");
		err = -EAGAIN;
		goto cleanup;
	}

	printf("{\"repeat\":%u,\"rounds\":%d,\"batch\":%u,\"cases\":[", repeat, rounds, batch);
	for (int i = 0; i < ncases; i++) {
		struct bench_case *c = &cases[i], *b = c->baseline ? find_case(c->baseline) : NULL;

		printf("%s\n{\"name\":\"%s\",\"what\":\"%s\",\"batch\":%u,\"median_ns\":%.3f,\"median_kernel_ns\":%.3f",
		       i ? "," : "", c->name, c->what, c->batch, median(c->wall, rounds),
		       median(c->kern, rounds));
		printf(",\"rounds_ns\":[");
		for (int r = 0; r < rounds; r++)
			printf("%s%.3f", r ? "," : "", c->wall[r]);
		printf("]");
		if (b) {
			double d[MAX_ROUNDS], dk[MAX_ROUNDS], md, mk;

			for (int r = 0; r < rounds; r++) {
				d[r] = c->wall[r] - b->wall[r];
				dk[r] = c->kern[r] - b->kern[r];
			}
			md = median(d, rounds);
			mk = median(dk, rounds);
			qsort(d, rounds, sizeof(*d), cmp_double);
			printf(",\"baseline\":\"%s\",\"delta_ns\":%.3f,\"delta_kernel_ns\":%.3f,\"delta_min_ns\":%.3f,\"delta_max_ns\":%.3f",
			       b->name, md, mk, d[0], d[rounds - 1]);
		}
		printf("}");
	}
	printf("]}\n");
	err = 0;
cleanup:
	if (cg_empty >= 0)
		close(cg_empty);
	ring_buffer__free(rb);
	smtpwatch_bpf__destroy(skel);
	return err ? 1 : 0;
}
