// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * The tc wire-view programs against a million random, crafted and truncated
 * frames, through BPF_PROG_TEST_RUN. A small reference parser and a model of
 * the wire-flow state written here, independently of bpf/, say which records
 * each frame must produce (WIRE, DATA, CLOSE) and with which fields; the test
 * compares them with what the programs put in the ring buffer and in the stats
 * map, and checks that every frame is handed on (TC_ACT_UNSPEC: tcx's TCX_NEXT).
 *
 * The frames come from a seeded PRNG: the seed is printed, and
 * SMTPWATCH_FUZZ_SEED=<seed> replays a run; SMTPWATCH_FUZZ_PACKETS=<n> changes
 * the count (default 1000000). test_run never transmits a frame.
 *
 * The record layout is read from include/smtpwatch/events.h at build time
 * (struct fields, sizeof, offsetof): a record is accepted with any size from
 * offsetof(data) + len up to sizeof(struct sw_data).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/socket.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "check.h"
#include "smtpwatch/events.h"
#include "smtpwatch.skel.h"
#include "pkt_util.h"

#define TC_ACT_UNSPEC ((uint32_t)-1)
#define SK_PASS 1
#define F_FIN 0x01
#define F_SYN 0x02
#define F_RST 0x04
#define F_PSH 0x08
#define F_ACK 0x10
#define ETH_HLEN 14
#define IFINDEX_LO 1 /* test_run's default device */
#define FRAME_MAX 3200 /* test_run takes a linear skb of less than a page */

static const uint16_t watched[] = { 25, 587, 2525 };

/* ---- PRNG: splitmix64, so a seed replays the same frames ------------------------ */

static uint64_t rng_state;

static uint64_t rnd(void)
{
	uint64_t z = (rng_state += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

static uint32_t below(uint32_t n) /* [0, n) */
{
	return n ? (uint32_t)(rnd() % n) : 0;
}

static bool chance(uint32_t percent)
{
	return below(100) < percent;
}

static void rnd_bytes(uint8_t *p, size_t n)
{
	while (n) {
		uint64_t v = rnd();
		size_t k = n < 8 ? n : 8;

		memcpy(p, &v, k);
		p += k;
		n -= k;
	}
}

static uint32_t get32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static bool is_watched(uint16_t port)
{
	for (size_t i = 0; i < sizeof(watched) / sizeof(watched[0]); i++)
		if (watched[i] == port)
			return true;
	return false;
}

/* ---- reference parser ------------------------------------------------------------ */

/* What a TCP segment in an Ethernet frame says; all in host order. */
struct seg {
	int family;
	uint8_t src[16], dst[16];
	uint16_t sport, dport;
	uint32_t seq;
	uint8_t flags;
	uint32_t payload_off; /* from the start of the frame */
	uint32_t payload_len;
};

/*
 * The rules, written from RFC 791/8200/9293 and what the kernel's receive path
 * accepts, not from bpf/packet.bpf.h:
 * - the EtherType says IPv4 or IPv6, and the version nibble must agree;
 * - IPv4: ihl >= 5, protocol TCP, fragment offset 0 (the first fragment holds
 *   the TCP header); the payload ends at tot_len (Ethernet padding is not data),
 *   at the frame's end when tot_len is 0 (TSO/BIG TCP) or larger than the frame
 *   (a truncated copy: the bytes present are real);
 * - IPv6: up to 8 extension headers among hop-by-hop (0), routing (43),
 *   destination options (60), fragment (44, offset 0 only) and AH (51, its length
 *   in 4-byte units minus 2), each wholly in the frame; payload_len bounds the
 *   payload as tot_len does;
 * - TCP: the 20-byte header in the frame, doff >= 5; options may run past the
 *   frame's end (then there is no payload, but the flags count).
 * A declared IP length shorter than the headers it carries is a frame no stack
 * would accept; its flags and ports still count (a close, a SYN) but it has no
 * payload. Such frames are counted (*lenient) for the summary.
 */
static int ref_parse(const uint8_t *f, uint32_t len, struct seg *s, bool *lenient)
{
	uint32_t nh = ETH_HLEN, l4, end, ipend;
	uint16_t et;

	*lenient = false;
	memset(s, 0, sizeof(*s));
	if (len < ETH_HLEN)
		return -1;
	et = get16(f + 12);
	if (et == 0x0800) {
		uint32_t ihl, tot;

		if (len < nh + 20 || f[nh] >> 4 != 4)
			return -1;
		ihl = f[nh] & 15;
		if (ihl < 5 || f[nh + 9] != 6)
			return -1;
		if (get16(f + nh + 6) & 0x1fff)
			return -1;
		s->family = AF_INET;
		memcpy(s->src, f + nh + 12, 4);
		memcpy(s->dst, f + nh + 16, 4);
		l4 = nh + ihl * 4;
		tot = get16(f + nh + 2);
		ipend = tot ? nh + tot : 0;
	} else if (et == 0x86dd) {
		uint32_t plen;
		uint8_t next;
		int i;

		if (len < nh + 40 || f[nh] >> 4 != 6)
			return -1;
		s->family = AF_INET6;
		memcpy(s->src, f + nh + 8, 16);
		memcpy(s->dst, f + nh + 24, 16);
		next = f[nh + 6];
		plen = get16(f + nh + 4);
		l4 = nh + 40;
		ipend = plen ? l4 + plen : 0;
		for (i = 0; i < 8 && next != 6; i++) {
			uint32_t hl;

			if (next == 44) {
				if (l4 + 8 > len || (get16(f + l4 + 2) & 0xfff8))
					return -1;
				hl = 8;
			} else if (next == 0 || next == 43 || next == 60 || next == 51) {
				if (l4 + 2 > len)
					return -1;
				hl = next == 51 ? (f[l4 + 1] + 2) * 4 : (f[l4 + 1] + 1) * 8;
				if (l4 + hl > len)
					return -1;
			} else {
				return -1;
			}
			next = f[l4];
			l4 += hl;
		}
		if (next != 6)
			return -1;
	} else {
		return -1;
	}
	if (l4 + 20 > len || f[l4 + 12] >> 4 < 5)
		return -1;
	s->sport = get16(f + l4);
	s->dport = get16(f + l4 + 2);
	s->seq = get32(f + l4 + 4);
	s->flags = f[l4 + 13];
	s->payload_off = l4 + (f[l4 + 12] >> 4) * 4;
	end = ipend && ipend < len ? ipend : len;
	if (ipend && ipend < s->payload_off)
		*lenient = true;
	s->payload_len = end > s->payload_off ? end - s->payload_off : 0;
	return 0;
}

/* ---- model of the wire-flow state ------------------------------------------------ */

struct mflow {
	bool used;
	int family;
	uint8_t src[16], dst[16]; /* client, server */
	uint16_t sport, dport;
	uint64_t id;
	uint32_t client_isn, server_isn;
	bool have_server_isn;
	uint32_t closed;
};

#define MFLOWS 4096 /* open addressing; reset every epoch, well below */
#define EPOCH 2048  /* frames between resets of the model and of wire_flows */
static struct mflow mflows[MFLOWS];
static int n_mflows;

static uint32_t key_hash(int family, const uint8_t *src, const uint8_t *dst, uint16_t sp,
			 uint16_t dp)
{
	uint32_t h = 2166136261u ^ family;

	for (int i = 0; i < 16; i++)
		h = (h ^ src[i]) * 16777619u, h = (h ^ dst[i]) * 16777619u;
	h = (h ^ sp) * 16777619u;
	h = (h ^ dp) * 16777619u;
	return h;
}

static struct mflow *mflow_find(int family, const uint8_t *src, const uint8_t *dst, uint16_t sp,
				uint16_t dp, bool create)
{
	uint32_t h = key_hash(family, src, dst, sp, dp);

	for (uint32_t i = 0; i < MFLOWS; i++) {
		struct mflow *m = &mflows[(h + i) % MFLOWS];

		if (!m->used) {
			if (!create)
				return NULL;
			memset(m, 0, sizeof(*m));
			m->used = true;
			m->family = family;
			memcpy(m->src, src, 16);
			memcpy(m->dst, dst, 16);
			m->sport = sp;
			m->dport = dp;
			n_mflows++;
			return m;
		}
		if (m->family == family && m->sport == sp && m->dport == dp &&
		    !memcmp(m->src, src, 16) && !memcmp(m->dst, dst, 16))
			return m;
	}
	return NULL;
}

/* ---- expected and received records ------------------------------------------------ */

struct exp {
	uint16_t type;
	struct mflow *flow; /* WIRE: the new flow, its id still unknown */
	uint8_t dir;
	uint32_t offset, len, src_off; /* DATA: bytes at src_off in the frame */
	uint32_t reason;	       /* CLOSE */
};

#define MAX_EXP 16
#define REC_MAX 4096
static struct exp exps[MAX_EXP];
static int nexp;

struct rec {
	size_t size;
	union {
		struct sw_hdr hdr;
		struct sw_flow flow;
		struct sw_data data;
		struct sw_close close;
		unsigned char raw[REC_MAX];
	};
};

#define MAX_RECS 32
static struct rec recs[MAX_RECS];
static int nrec, ring_overflow;

static int on_record(void *ctx, void *data, size_t size)
{
	(void)ctx;
	if (nrec >= MAX_RECS || size > REC_MAX) {
		ring_overflow = 1;
		return 0;
	}
	recs[nrec].size = size;
	memcpy(recs[nrec].raw, data, size);
	nrec++;
	return 0;
}

static struct {
	uint64_t wire, data, trunc, close;
} expect_stats;

/* The program's emit_data as a spec: bytes inside the capture bound, in chunks. */
static void expect_data(const struct seg *s, uint8_t dir, uint32_t isn, uint32_t cap,
			uint64_t id)
{
	uint32_t off = s->seq - isn - 1, len = s->payload_len;

	(void)id;
	if (!len)
		return;
	if (off >= cap) {
		expect_stats.trunc++;
		return;
	}
	if (len > cap - off) {
		len = cap - off;
		expect_stats.trunc++;
	}
	for (uint32_t done = 0; done < len && nexp < MAX_EXP;) {
		uint32_t n = len - done < SW_DATA_MAX ? len - done : SW_DATA_MAX;

		exps[nexp++] = (struct exp){ .type = SW_EV_DATA, .dir = dir, .offset = off + done,
					     .len = n, .src_off = s->payload_off + done };
		expect_stats.data++;
		done += n;
	}
}

/* Which records the frame must produce, and the model's next state. */
static struct mflow *model(const struct seg *s, bool egress)
{
	struct mflow *m;
	uint8_t dir = egress ? SW_DIR_CLIENT : SW_DIR_SERVER;
	uint32_t bits = 0;

	nexp = 0;
	if (!is_watched(egress ? s->dport : s->sport))
		return NULL;
	if (egress && (s->flags & (F_SYN | F_ACK)) == F_SYN) {
		if (mflow_find(s->family, s->src, s->dst, s->sport, s->dport, false))
			return NULL; /* a retransmitted SYN */
		m = mflow_find(s->family, s->src, s->dst, s->sport, s->dport, true);
		m->client_isn = s->seq;
		exps[nexp++] = (struct exp){ .type = SW_EV_WIRE, .flow = m };
		expect_stats.wire++;
		return m;
	}
	if (egress)
		m = mflow_find(s->family, s->src, s->dst, s->sport, s->dport, false);
	else
		m = mflow_find(s->family, s->dst, s->src, s->dport, s->sport, false);
	if (!m)
		return NULL;
	if (!egress && (s->flags & (F_SYN | F_ACK)) == (F_SYN | F_ACK)) {
		m->server_isn = s->seq;
		m->have_server_isn = true;
	} else if (egress || m->have_server_isn) {
		expect_data(s, dir, egress ? m->client_isn : m->server_isn,
			    egress ? SW_CAPTURE_CLIENT : SW_CAPTURE_SERVER, m->id);
	}
	if (s->flags & F_RST)
		bits |= SW_CLOSE_RST;
	if (s->flags & F_FIN)
		bits |= egress ? SW_CLOSE_FIN_CLIENT : SW_CLOSE_FIN_SERVER;
	if (bits & ~m->closed) {
		m->closed |= bits;
		exps[nexp++] = (struct exp){ .type = SW_EV_CLOSE, .reason = m->closed };
		expect_stats.close++;
	}
	return m;
}

/* ---- frame generators --------------------------------------------------------------- */

struct gen {
	uint8_t frame[FRAME_MAX];
	uint32_t len;
	bool egress;
	const char *kind;
	/* For frames built whole and unmutated: what the reference parser must say. */
	bool intact;
	bool want_tcp;
	struct seg want;
	uint32_t bounds[16]; /* layer boundaries, for truncations */
	int nbounds;
};

/* The flows that crafted frames belong to: a handful, so that SYNs, replies,
 * data and closes meet; renewed every epoch. */
struct pflow {
	int family;
	uint8_t cli[16], srv[16];
	uint16_t cport, sport;
	uint32_t cisn, sisn;
};

#define POOL 48
static struct pflow pool[POOL];

static void rnd_addr(int family, uint8_t a[16])
{
	memset(a, 0, 16);
	rnd_bytes(a, family == AF_INET ? 4 : 16);
}

static void new_pool(void)
{
	for (int i = 0; i < POOL; i++) {
		struct pflow *p = &pool[i];

		p->family = chance(50) ? AF_INET : AF_INET6;
		rnd_addr(p->family, p->cli);
		rnd_addr(p->family, p->srv);
		p->cport = 1024 + below(64000);
		if (chance(80))
			p->sport = watched[below(3)];
		else if (chance(50))
			p->sport = below(65536);
		else /* this host is the server: its client's port is a watched one */
			p->sport = 40000 + below(1000), p->cport = watched[below(3)];
		p->cisn = chance(10) ? 0xffffffffu - below(3000) : (uint32_t)rnd();
		p->sisn = chance(10) ? 0xffffffffu - below(5000) : (uint32_t)rnd();
	}
}

static uint32_t rnd_payload_len(void)
{
	uint32_t r = below(100);

	if (r < 30)
		return 0;
	if (r < 70)
		return 1 + below(100);
	if (r < 95)
		return 100 + below(1360);
	return 1460 + below(1500);
}

static void add_bound(struct gen *g, uint32_t b)
{
	if (g->nbounds < (int)(sizeof(g->bounds) / sizeof(g->bounds[0])))
		g->bounds[g->nbounds++] = b;
}

/* A whole Ethernet/IP/TCP frame of a pool flow, with random fields; sometimes
 * mutated (then not "intact"). */
static void gen_crafted(struct gen *g)
{
	struct pflow *p = &pool[below(POOL)];
	uint8_t *f = g->frame, *ip = f + ETH_HLEN, *l4;
	uint32_t iplen, doff, plen, pos, seq, off;
	uint8_t flags, proto = 6;
	bool accept = true;

	memset(f, 0, 128);
	g->kind = "crafted";
	g->nbounds = 0;
	g->egress = chance(50);
	rnd_bytes(f, 12);
	put16(f + 12, p->family == AF_INET ? 0x0800 : 0x86dd);
	add_bound(g, ETH_HLEN);

	if (g->egress) {
		uint32_t r = below(100);

		flags = r < 15 ? F_SYN : r < 65 ? F_ACK | (chance(50) ? F_PSH : 0) : r < 75 ? F_ACK
			: r < 85 ? F_FIN | F_ACK : r < 90 ? F_RST : (uint8_t)rnd();
		seq = (flags & (F_SYN | F_ACK)) == F_SYN ? (chance(90) ? p->cisn : (uint32_t)rnd())
							 : p->cisn + 1;
		off = chance(85) ? below(2600) : (uint32_t)rnd();
	} else {
		uint32_t r = below(100);

		flags = r < 20 ? F_SYN | F_ACK : r < 70 ? F_ACK | F_PSH : r < 80 ? F_FIN | F_ACK
			: r < 85 ? F_RST : (uint8_t)rnd();
		seq = (flags & (F_SYN | F_ACK)) == (F_SYN | F_ACK) ? p->sisn : p->sisn + 1;
		off = chance(85) ? below(4700) : (uint32_t)rnd();
	}
	if (!(flags & F_SYN))
		seq += off;
	plen = rnd_payload_len();

	if (p->family == AF_INET) {
		uint32_t words = chance(20) ? below(11) : 0;
		uint16_t frag = 0;

		iplen = 20 + words * 4;
		ip[0] = 0x40 | (5 + words);
		put16(ip + 4, (uint16_t)rnd());
		if (chance(10)) {
			frag = (uint16_t)rnd() & 0xbfff;
			if (chance(50))
				frag &= 0xe000; /* offset 0: a first fragment */
		} else if (chance(50)) {
			frag = 0x4000; /* DF */
		}
		put16(ip + 6, frag);
		if (frag & 0x1fff)
			accept = false;
		ip[8] = 64;
		if (chance(3))
			proto = (uint8_t)rnd();
		ip[9] = proto;
		rnd_bytes(ip + 10, 2);
		memcpy(ip + 12, g->egress ? p->cli : p->srv, 4);
		memcpy(ip + 16, g->egress ? p->srv : p->cli, 4);
		rnd_bytes(ip + 20, words * 4);
		add_bound(g, ETH_HLEN + 20);
	} else {
		uint8_t *next = ip + 6;
		int n = chance(20) ? 1 + below(9) : 0;

		iplen = 40;
		ip[0] = 0x60 | (uint8_t)below(16);
		rnd_bytes(ip + 1, 3);
		ip[7] = 64;
		memcpy(ip + 8, g->egress ? p->cli : p->srv, 16);
		memcpy(ip + 24, g->egress ? p->srv : p->cli, 16);
		add_bound(g, ETH_HLEN + 40);
		if (n > 8)
			accept = false; /* more extension headers than any parser walks */
		for (int i = 0; i < n; i++) {
			static const uint8_t kinds[] = { 0, 43, 60, 44, 44, 51, 50, 59 };
			uint8_t k = kinds[below(sizeof(kinds))];
			uint8_t *h = ip + iplen;
			uint32_t hl;

			*next = k;
			next = h;
			if (k == 44) {
				hl = 8;
				rnd_bytes(h + 1, 7);
				if (chance(60))
					h[2] = 0, h[3] &= 0x07; /* offset 0 */
				if (get16(h + 2) & 0xfff8)
					accept = false;
			} else {
				hl = 8 * (1 + below(3));
				h[1] = k == 51 ? hl / 4 - 2 : hl / 8 - 1;
				rnd_bytes(h + 2, hl - 2);
				if (k != 0 && k != 43 && k != 60 && k != 51)
					accept = false;
			}
			iplen += hl;
			add_bound(g, ETH_HLEN + iplen);
		}
		/* Not a header the parsers walk: the TCP header would be read as one,
		 * and what follows it as TCP (the intent is "no TCP here"). */
		if (chance(3))
			do
				proto = (uint8_t)rnd();
			while (proto == 0 || proto == 43 || proto == 60 || proto == 44 || proto == 51);
		*next = proto;
	}
	if (proto != 6)
		accept = false;

	l4 = ip + iplen;
	doff = 5 + (chance(25) ? below(11) : 0);
	put16(l4, g->egress ? p->cport : p->sport);
	put16(l4 + 2, g->egress ? p->sport : p->cport);
	put32(l4 + 4, seq);
	put32(l4 + 8, (uint32_t)rnd());
	l4[12] = doff << 4;
	l4[13] = flags;
	rnd_bytes(l4 + 14, 6);
	rnd_bytes(l4 + 20, (doff - 5) * 4);
	add_bound(g, ETH_HLEN + iplen + 20);
	pos = ETH_HLEN + iplen + doff * 4;
	add_bound(g, pos);
	if (pos + plen > FRAME_MAX - 64)
		plen = FRAME_MAX - 64 - pos;
	rnd_bytes(f + pos, plen);
	if (p->family == AF_INET)
		put16(ip + 2, iplen + doff * 4 + plen);
	else
		put16(ip + 4, iplen - 40 + doff * 4 + plen);
	g->len = pos + plen;
	add_bound(g, g->len);
	/* Ethernet padding that is not zero, so that copying it would show. */
	if (chance(20)) {
		uint32_t to = chance(50) ? 60 : g->len + 1 + below(60);

		for (; g->len < to; g->len++)
			f[g->len] = 0xee;
	}

	g->intact = true;
	g->want_tcp = accept;
	memset(&g->want, 0, sizeof(g->want));
	g->want.family = p->family;
	memcpy(g->want.src, g->egress ? p->cli : p->srv, 16);
	memcpy(g->want.dst, g->egress ? p->srv : p->cli, 16);
	g->want.sport = g->egress ? p->cport : p->sport;
	g->want.dport = g->egress ? p->sport : p->cport;
	g->want.seq = seq;
	g->want.flags = flags;
	g->want.payload_off = pos;
	g->want.payload_len = plen;

	/* Mutations of one header field: no longer checked against the intent. */
	if (chance(15)) {
		g->intact = false;
		g->kind = "mutated";
		switch (below(8)) {
		case 0: /* IP length */
			if (p->family == AF_INET)
				put16(ip + 2, chance(30) ? 0 : (uint16_t)rnd());
			else
				put16(ip + 4, chance(30) ? 0 : (uint16_t)rnd());
			break;
		case 1: /* IP length off by a little */
			if (p->family == AF_INET)
				put16(ip + 2, get16(ip + 2) + (int)below(9) - 4);
			else
				put16(ip + 4, get16(ip + 4) + (int)below(9) - 4);
			break;
		case 2: /* version/ihl byte */
			ip[0] = (uint8_t)rnd();
			break;
		case 3: /* version swapped: an IPv6 nibble in an IPv4 frame and back */
			ip[0] = (ip[0] & 0x0f) | (p->family == AF_INET ? 0x60 : 0x40);
			break;
		case 4: /* data offset */
			l4[12] = (uint8_t)rnd();
			break;
		case 5: /* EtherType */
			put16(f + 12, chance(50) ? (p->family == AF_INET ? 0x86dd : 0x0800)
						 : (uint16_t)rnd());
			break;
		case 6: /* protocol / next header */
			if (p->family == AF_INET)
				ip[9] = (uint8_t)rnd();
			else
				ip[6] = (uint8_t)rnd();
			break;
		default: /* one random byte anywhere in the headers */
			f[below(pos)] = (uint8_t)rnd();
			break;
		}
	}
}

/* A crafted frame cut at a layer boundary (give or take a few bytes) or anywhere. */
static void gen_truncated(struct gen *g)
{
	uint32_t cut;

	gen_crafted(g);
	g->kind = "truncated";
	g->intact = false;
	if (chance(70) && g->nbounds) {
		int d = (int)below(9) - 4;

		cut = g->bounds[below(g->nbounds)];
		cut = (int)cut + d < 0 ? 0 : cut + d;
	} else {
		cut = below(g->len + 1);
	}
	if (cut < g->len)
		g->len = cut;
}

/* Random bytes, sometimes with an IP EtherType, version and TCP protocol set so
 * that they get past the first tests. */
static void gen_random(struct gen *g)
{
	uint8_t *f = g->frame;

	g->kind = "random";
	g->intact = false;
	g->egress = chance(50);
	g->len = chance(5) ? below(ETH_HLEN + 1) : below(400);
	rnd_bytes(f, g->len + 64);
	if (g->len >= ETH_HLEN && chance(60)) {
		bool v6 = chance(50);

		put16(f + 12, v6 ? 0x86dd : 0x0800);
		if (chance(70) && g->len > ETH_HLEN + 9) {
			f[ETH_HLEN] = v6 ? 0x60 | (f[ETH_HLEN] & 15) : 0x45 + below(3) * chance(30);
			if (v6)
				f[ETH_HLEN + 6] = chance(80) ? 6 : f[ETH_HLEN + 6];
			else
				f[ETH_HLEN + 9] = chance(80) ? 6 : f[ETH_HLEN + 9];
			if (!v6 && chance(70))
				f[ETH_HLEN + 6] &= 0xe0;
		}
		/* A watched port where the TCP header would start, now and then. */
		if (chance(50)) {
			uint32_t l4 = ETH_HLEN + (v6 ? 40 : (f[ETH_HLEN] & 15) * 4);

			if (l4 + 4 <= g->len)
				put16(f + l4 + (g->egress ? 2 : 0), watched[below(3)]);
			if (l4 + 14 <= g->len && chance(50))
				f[l4 + 13] = g->egress ? F_SYN : F_SYN | F_ACK;
		}
	}
}

/* ---- running ------------------------------------------------------------------------- */

static struct smtpwatch_bpf *skel;
static struct ring_buffer *rb;
static const char *skip_reason;
static uint64_t last_wire_id;
static long mismatches, lenient_frames, einval_frames, cgskb_frames;
static long n_by_kind[4];

static void hexdump(const uint8_t *p, uint32_t n)
{
	printf("    frame (%u bytes):", n);
	for (uint32_t i = 0; i < n && i < 96; i++)
		printf("%s%02x", i % 32 ? "" : "\n      ", p[i]);
	printf("%s\n", n > 96 ? " ..." : "");
}

static bool resync;

/* One mismatch is reported once: the flows are reset after it, so that a state
 * the model and the program disagree on does not repeat it frame after frame. */
static void mismatch(long i, const struct gen *g, const char *why)
{
	resync = true;
	if (++mismatches <= 10) {
		printf("  mismatch at frame %ld (%s, %s): %s\n", i, g->kind,
		       g->egress ? "egress" : "ingress", why);
		hexdump(g->frame, g->len);
	}
}

static bool addr_is(const struct sw_addr *a, int family, const uint8_t *addr, uint16_t port)
{
	static const uint8_t zero[16];
	size_t n = family == AF_INET ? 4 : 16;

	return a->family == family && a->port == port && !memcmp(a->addr, addr, n) &&
	       !memcmp(a->addr + n, zero, 16 - n);
}

/* Compare the records the frame produced with the expected ones. */
static void compare(long i, const struct gen *g, const struct seg *s)
{
	char why[160];

	if (ring_overflow) {
		mismatch(i, g, "more records than the test can hold");
		return;
	}
	if (nrec != nexp) {
		snprintf(why, sizeof(why), "%d records, expected %d", nrec, nexp);
		mismatch(i, g, why);
		return;
	}
	for (int k = 0; k < nrec; k++) {
		const struct rec *r = &recs[k];
		const struct exp *e = &exps[k];
		const char *bad = NULL;

		if (r->size < sizeof(struct sw_hdr) || r->hdr.size != r->size)
			bad = "record size differs from its header's";
		else if (r->hdr.type != e->type)
			bad = "record type";
		else if (e->type == SW_EV_WIRE) {
			if (r->size != sizeof(struct sw_flow))
				bad = "WIRE size";
			else if (!(r->hdr.id & SW_WIRE_ID_BIT) || r->hdr.id <= last_wire_id)
				bad = "WIRE id not new";
			else if (!addr_is(&r->flow.src, s->family, s->src, s->sport) ||
				 !addr_is(&r->flow.dst, s->family, s->dst, s->dport))
				bad = "WIRE addresses or ports";
			else if (r->flow.ifindex != IFINDEX_LO)
				bad = "WIRE ifindex";
			else
				e->flow->id = last_wire_id = r->hdr.id;
		} else if (e->type == SW_EV_DATA) {
			if (r->size < offsetof(struct sw_data, data) + r->data.len ||
			    r->size > sizeof(struct sw_data))
				bad = "DATA size";
			else if (r->data.dir != e->dir)
				bad = "DATA direction";
			else if (r->data.offset != e->offset)
				bad = "DATA stream offset";
			else if (r->data.len != e->len)
				bad = "DATA length";
			else if (memcmp(r->data.data, g->frame + e->src_off, e->len))
				bad = "DATA bytes";
		} else if (e->type == SW_EV_CLOSE) {
			if (r->size != sizeof(struct sw_close))
				bad = "CLOSE size";
			else if (r->close.reason != e->reason)
				bad = "CLOSE reason";
		}
		if (!bad && e->type != SW_EV_WIRE) {
			/* DATA and CLOSE name the flow the frame belongs to. */
			struct mflow *m = g->egress ? mflow_find(s->family, s->src, s->dst, s->sport,
								 s->dport, false)
						    : mflow_find(s->family, s->dst, s->src, s->dport,
								 s->sport, false);
			if (!m || r->hdr.id != m->id)
				bad = "record id is not its flow's";
		}
		if (bad) {
			snprintf(why, sizeof(why), "record %d: %s", k, bad);
			mismatch(i, g, why);
			return;
		}
	}
}

static int test_run(struct bpf_program *prog, const void *frame, uint32_t len, uint32_t *retval)
{
	LIBBPF_OPTS(bpf_test_run_opts, o, .data_in = frame, .data_size_in = len, .repeat = 1);
	int err = bpf_prog_test_run_opts(bpf_program__fd(prog), &o);

	*retval = o.retval;
	return err ? -errno : 0;
}

/* A frame test_run may refuse: shorter than the headers its EtherType names. */
static bool may_refuse(const uint8_t *f, uint32_t len)
{
	uint16_t et;

	if (len < ETH_HLEN)
		return true;
	et = get16(f + 12);
	return (et == 0x0800 && len < ETH_HLEN + 20) || (et == 0x86dd && len < ETH_HLEN + 40);
}

static uint64_t stat_sum(uint32_t idx)
{
	return stat_sum_fd(bpf_map__fd(skel->maps.stats), idx);
}

/* Empty the wire_flows map and the model together. */
static void reset_flows(void)
{
	int fd = bpf_map__fd(skel->maps.wire_flows);
	struct sw_wire_key k, next;
	bool first = true;

	while (!bpf_map_get_next_key(fd, first ? NULL : &k, &next)) {
		bpf_map_delete_elem(fd, &next);
		first = true;
	}
	memset(mflows, 0, sizeof(mflows));
	n_mflows = 0;
	new_pool();
}

static bool seg_equal(const struct seg *a, const struct seg *b)
{
	return a->family == b->family && !memcmp(a->src, b->src, 16) &&
	       !memcmp(a->dst, b->dst, 16) && a->sport == b->sport && a->dport == b->dport &&
	       a->seq == b->seq && a->flags == b->flags && a->payload_off == b->payload_off &&
	       a->payload_len == b->payload_len;
}

static long n_frames(void)
{
	const char *s = getenv("SMTPWATCH_FUZZ_PACKETS");
	long n = s ? strtol(s, NULL, 0) : 1000000;

	return n > 0 ? n : 1000000;
}

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void test_random_frames(void)
{
	enum { S_RING, S_WIRE_FULL, S_WIRE, S_DATA, S_TRUNC, S_N };
	static const uint32_t ids[S_N] = { SW_STAT_RING_FULL, SW_STAT_WIRE_FULL,
					   SW_STAT_WIRE_FLOWS, SW_STAT_DATA, SW_STAT_TRUNCATED };
	static struct gen g;
	uint64_t before[S_N], seed;
	const char *env = getenv("SMTPWATCH_FUZZ_SEED");
	long n = n_frames(), intent_bad = 0, bad_rc = 0, compared = 0;
	double t0;

	seed = env ? strtoull(env, NULL, 0) : ((uint64_t)time(NULL) << 20 ^ (uint64_t)getpid());
	printf("  seed %" PRIu64 " (replay: SMTPWATCH_FUZZ_SEED=%" PRIu64 "), %ld frames\n", seed,
	       seed, n);
	rng_state = seed;
	for (int k = 0; k < S_N; k++)
		before[k] = stat_sum(ids[k]);
	reset_flows();
	t0 = now();

	for (long i = 0; i < n; i++) {
		uint32_t r = below(100), retval = 0;
		struct seg s;
		bool lenient, tcp;
		int err;

		if ((i && i % EPOCH == 0) || resync)
			reset_flows(), resync = false;
		if (r < 25)
			gen_random(&g), n_by_kind[0]++;
		else if (r < 70)
			gen_crafted(&g), n_by_kind[g.intact ? 1 : 2]++;
		else
			gen_truncated(&g), n_by_kind[3]++;

		tcp = ref_parse(g.frame, g.len, &s, &lenient) == 0;
		if (g.intact && (tcp != g.want_tcp || (tcp && !seg_equal(&s, &g.want)))) {
			/* The reference parser disagrees with the frame's construction. */
			if (++intent_bad <= 5) {
				char why[160];

				snprintf(why, sizeof(why),
					 "reference parser differs from the built frame: TCP %d/%d, "
					 "ports %u>%u / %u>%u, payload %u+%u / %u+%u",
					 tcp, g.want_tcp, s.sport, s.dport, g.want.sport, g.want.dport,
					 s.payload_off, s.payload_len, g.want.payload_off,
					 g.want.payload_len);
				mismatch(i, &g, why);
			}
			continue;
		}

		/* Now and then the cgroup_skb programs, on the frame without its L2
		 * header: test_run gives them no socket, so they must pass it untouched. */
		if (chance(3) && g.len > ETH_HLEN) {
			struct bpf_program *p = g.egress ? skel->progs.sw_skb_egress
							 : skel->progs.sw_skb_ingress;

			cgskb_frames++;
			nrec = ring_overflow = 0;
			err = test_run(p, g.frame + ETH_HLEN, g.len - ETH_HLEN, &retval);
			ring_buffer__consume(rb);
			if ((err && err != -EINVAL) || (!err && retval != SK_PASS) || nrec)
				mismatch(i, &g, "cgroup_skb program: error, verdict or record");
			continue;
		}

		nexp = 0;
		if (tcp)
			model(&s, g.egress);
		nrec = ring_overflow = 0;
		err = test_run(g.egress ? skel->progs.sw_tc_egress : skel->progs.sw_tc_ingress,
			       g.frame, g.len, &retval);
		ring_buffer__consume(rb);
		if (err == -EINVAL && may_refuse(g.frame, g.len)) {
			einval_frames++;
			if (nrec)
				mismatch(i, &g, "records from a frame test_run refused");
			if (nexp)
				mismatch(i, &g, "test_run refused a frame that should count");
			continue;
		}
		if (err) {
			char why[64];

			snprintf(why, sizeof(why), "test_run: %s", strerror(-err));
			mismatch(i, &g, why);
			continue;
		}
		if (retval != TC_ACT_UNSPEC) {
			bad_rc++;
			mismatch(i, &g, "verdict is not TC_ACT_UNSPEC");
			continue;
		}
		if (tcp && lenient)
			lenient_frames++;
		compared += nrec;
		compare(i, &g, &s);
	}

	{
		double dt = now() - t0;
		uint64_t after[S_N];

		for (int k = 0; k < S_N; k++)
			after[k] = stat_sum(ids[k]);
		printf("  %ld frames in %.2f s (%.0f frames/s): %ld random, %ld crafted, %ld mutated, "
		       "%ld truncated; %ld through cgroup_skb, %ld refused by test_run\n",
		       n, dt, n / dt, n_by_kind[0], n_by_kind[1], n_by_kind[2], n_by_kind[3],
		       cgskb_frames, einval_frames);
		printf("  expected %" PRIu64 " wire flows, %" PRIu64 " data records, %" PRIu64
		       " closes, %" PRIu64 " truncations; %ld records compared; %ld frames with "
		       "headers past their IP length (no payload)\n",
		       expect_stats.wire, expect_stats.data, expect_stats.close, expect_stats.trunc,
		       compared, lenient_frames);
		printf("  %ld mismatches, %ld bad verdicts\n", mismatches, bad_rc);
		CHECK(intent_bad == 0);
		CHECK(mismatches == 0);
		CHECK(bad_rc == 0);
		CHECK(after[S_RING] == before[S_RING]);
		CHECK(after[S_WIRE_FULL] == before[S_WIRE_FULL]);
		CHECK(after[S_WIRE] - before[S_WIRE] == expect_stats.wire);
		CHECK(after[S_DATA] - before[S_DATA] == expect_stats.data);
		CHECK(after[S_TRUNC] - before[S_TRUNC] == expect_stats.trunc);
		CHECK(expect_stats.wire > 0 && expect_stats.data > 0 && expect_stats.close > 0);
	}
}

/* ---- setup ----------------------------------------------------------------------------- */

/* full: the frames the linear parser takes go through the full one instead. */
static int setup(bool full)
{
	uint8_t buf[64] = { 0 };
	uint32_t retval;
	int err;

	if (geteuid() != 0) {
		skip_reason = "needs root (BPF_PROG_TEST_RUN on tc programs)";
		return 0;
	}
	skel = smtpwatch_bpf__open();
	if (!skel) {
		printf("FAIL setup: cannot open the BPF object: %s\n", strerror(errno));
		return -1;
	}
	for (size_t i = 0; i < sizeof(watched) / sizeof(watched[0]); i++)
		skel->rodata->port_bits[watched[i] >> 6] |= 1ULL << (watched[i] & 63);
	skel->rodata->full_parse = full;
	/* A new object numbers its wire flows from 0 again; the counts start over. */
	last_wire_id = 0;
	memset(&expect_stats, 0, sizeof(expect_stats));
	memset(n_by_kind, 0, sizeof(n_by_kind));
	mismatches = lenient_frames = einval_frames = cgskb_frames = 0;
	resync = false;
	err = smtpwatch_bpf__load(skel);
	if (err == -EPERM) {
		skip_reason = "the kernel refuses BPF programs here (EPERM)";
		return 0;
	}
	if (err) {
		printf("FAIL setup: the BPF programs did not load: %s\n", strerror(-err));
		return -1;
	}
	rb = ring_buffer__new(bpf_map__fd(skel->maps.events), on_record, NULL, NULL);
	if (!rb) {
		printf("FAIL setup: ring_buffer__new: %s\n", strerror(errno));
		return -1;
	}
	put16(buf + 12, 0x0800);
	buf[ETH_HLEN] = 0x45;
	err = test_run(skel->progs.sw_tc_egress, buf, sizeof(buf), &retval);
	if (err == -ENOTSUP || err == -EOPNOTSUPP || err == -EINVAL) {
		skip_reason = "BPF_PROG_TEST_RUN is not available for tc programs";
		return 0;
	}
	if (err) {
		printf("FAIL setup: BPF_PROG_TEST_RUN: %s\n", strerror(-err));
		return -1;
	}
	return 0;
}

/* The same frames through sw_parse_tcp, which live traffic reaches only when
 * headers lie past the linear data (test_run skbs are always linear). */
static void test_random_frames_full_parser(void)
{
	test_random_frames();
}

int main(void)
{
	int err = 0;

	setvbuf(stdout, NULL, _IOLBF, 0);
	for (int full = 0; full < 2 && !err; full++) {
		err = setup(full);
		if (!err) {
			if (skip_reason)
				printf("SKIP test_random_frames%s: %s\n", full ? "_full_parser" : "",
				       skip_reason);
			else if (full)
				RUN(test_random_frames_full_parser);
			else
				RUN(test_random_frames);
		}
		ring_buffer__free(rb);
		smtpwatch_bpf__destroy(skel);
		rb = NULL;
		skel = NULL;
	}
	if (err)
		return 1;
	CHECK_EXIT();
}
