/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* What the BPF packet tests and bench_tc share: network-order fields and the kernel counters. */
#ifndef SMTPWATCH_TESTS_PKT_UTIL_H
#define SMTPWATCH_TESTS_PKT_UTIL_H
#include <stdint.h>
#include <stdlib.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>

static inline void put16(uint8_t *p, uint16_t v)
{
	p[0] = v >> 8;
	p[1] = v;
}

static inline void put32(uint8_t *p, uint32_t v)
{
	p[0] = v >> 24;
	p[1] = v >> 16;
	p[2] = v >> 8;
	p[3] = v;
}

static inline uint16_t get16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

/* A per-CPU counter of the stats map, summed; 0 when it cannot be read. */
static inline uint64_t stat_sum_fd(int stats_fd, uint32_t idx)
{
	int ncpu = libbpf_num_possible_cpus();
	uint64_t *v, sum = 0;

	if (ncpu <= 0)
		return 0;
	v = calloc(ncpu, sizeof(*v));
	if (!v)
		return 0;
	if (!bpf_map_lookup_elem(stats_fd, &idx, v))
		for (int i = 0; i < ncpu; i++)
			sum += v[i];
	free(v);
	return sum;
}

#endif
