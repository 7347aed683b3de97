// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include "session.h"

static uint32_t hash_id(uint64_t id, uint32_t n)
{
	id ^= id >> 33;
	id *= 0xff51afd7ed558ccdULL;
	id ^= id >> 33;
	return id & (n - 1);
}

int sw_sessions_init(struct sw_sessions *t, uint32_t max)
{
	memset(t, 0, sizeof(*t));
	t->nbuckets = 1;
	while (t->nbuckets < max)
		t->nbuckets <<= 1;
	t->buckets = calloc(t->nbuckets, sizeof(*t->buckets));
	if (!t->buckets)
		return -ENOMEM;
	t->max = max;
	return 0;
}

void session_release(struct sw_session *s)
{
	for (int i = 0; i < 2; i++) {
		free(s->st[i].buf);
		free(s->st[i].have);
	}
	free(s->exe);
	free(s->args);
	free(s->proc_json);
	for (int i = 0; i < SW_MAX_ANCESTORS; i++)
		free(s->anc_exe[i]);
}

void sw_session_destroy(struct sw_session *s)
{
	session_release(s);
	free(s);
}

void sw_sessions_free(struct sw_sessions *t)
{
	while (t->oldest) {
		struct sw_session *s = t->oldest;

		sw_session_remove(t, s);
		sw_session_destroy(s);
	}
	free(t->buckets);
	t->buckets = NULL;
}

struct sw_session *sw_session_find(struct sw_sessions *t, uint64_t id)
{
	struct sw_session *s = t->buckets[hash_id(id, t->nbuckets)];

	while (s && s->id != id)
		s = s->hnext;
	return s;
}

void sw_session_remove(struct sw_sessions *t, struct sw_session *s)
{
	struct sw_session **pp = &t->buckets[hash_id(s->id, t->nbuckets)];

	while (*pp && *pp != s)
		pp = &(*pp)->hnext;
	if (*pp)
		*pp = s->hnext;
	if (s->prev)
		s->prev->next = s->next;
	else
		t->oldest = s->next;
	if (s->next)
		s->next->prev = s->prev;
	else
		t->newest = s->prev;
	s->prev = s->next = s->hnext = NULL;
	t->count--;
}

struct sw_session *sw_session_add(struct sw_sessions *t, uint64_t id, uint64_t now_ns,
				  struct sw_session **evicted)
{
	struct sw_session *s;
	uint32_t b;

	*evicted = NULL;
	if (t->count >= t->max && t->oldest) {
		*evicted = t->oldest;
		sw_session_remove(t, t->oldest);
		t->evicted++;
	}
	s = calloc(1, sizeof(*s));
	if (!s)
		return NULL;
	s->id = id;
	s->start_ns = s->last_ns = now_ns;
	b = hash_id(id, t->nbuckets);
	s->hnext = t->buckets[b];
	t->buckets[b] = s;
	s->prev = t->newest;
	if (t->newest)
		t->newest->next = s;
	else
		t->oldest = s;
	t->newest = s;
	t->count++;
	return s;
}

static int stream_grow(struct sw_stream *st, uint32_t need)
{
	uint32_t n = st->alloc ? st->alloc : 256;
	uint8_t *buf, *have;

	while (n < need)
		n *= 2;
	buf = realloc(st->buf, n);
	if (!buf)
		return -ENOMEM;
	st->buf = buf;
	have = realloc(st->have, n / 8);
	if (!have)
		return -ENOMEM;
	memset(have + st->alloc / 8, 0, (n - st->alloc) / 8);
	st->have = have;
	st->alloc = n;
	return 0;
}

int sw_stream_put(struct sw_stream *st, uint32_t off, const uint8_t *data, uint32_t len,
		  uint64_t ts_ns)
{
	uint32_t end;

	/* The kernel bounds offsets by its capture size; anything far beyond is corrupt. */
	if (!len || off > (1u << 20) || len > (1u << 16))
		return -EINVAL;
	end = off + len;
	if (end > st->alloc && stream_grow(st, end))
		return -ENOMEM;
	memcpy(st->buf + off, data, len);
	for (uint32_t i = off; i < end;) {
		if (i % 8 == 0 && i + 8 <= end) { /* a whole bitmap byte at once */
			st->have[i / 8] = 0xff;
			i += 8;
		} else {
			st->have[i / 8] |= 1u << (i % 8);
			i++;
		}
	}
	if (end > st->end)
		st->end = end;
	if (!st->first_ns || ts_ns < st->first_ns)
		st->first_ns = ts_ns;
	return 0;
}

uint32_t sw_stream_contiguous(const struct sw_stream *st)
{
	uint32_t i = 0;

	/* Whole bitmap bytes first: a stream without holes is the common case. */
	while (i + 8 <= st->end && st->have[i / 8] == 0xff)
		i += 8;
	while (i < st->end && (st->have[i / 8] & (1u << (i % 8))))
		i++;
	return i;
}
