// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * The tc wire-view programs on crafted Ethernet frames, run with
 * BPF_PROG_TEST_RUN: what they put in the ring buffer, in wire_flows and in
 * the stats map. test_run never transmits a packet, so the addresses below
 * (documentation ranges) never see traffic.
 *
 * test_run skbs carry no socket of ours (the flows map stays empty), so every
 * SYN to a watched port on egress becomes an unattributed wire flow.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <sys/socket.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "check.h"
#include "smtpwatch/events.h"
#include "smtpwatch.skel.h"
#include "pkt_util.h"

#define TC_ACT_UNSPEC ((uint32_t)-1) /* on to the next program (tcx's TCX_NEXT) */
#define F_FIN 0x01
#define F_SYN 0x02
#define F_RST 0x04
#define F_PSH 0x08
#define F_ACK 0x10
#define ETH_HLEN 14
#define IFINDEX_LO 1 /* test_run's default device */

#define MAX_RECS 64
#define REC_MAX 1024

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

static struct smtpwatch_bpf *skel;
static struct ring_buffer *rb;
static struct rec recs[MAX_RECS];
static int nrec;
static int ring_overflow;

struct flow {
	int family; /* AF_INET or AF_INET6 */
	uint8_t src[16];
	uint8_t dst[16];
	uint16_t sport; /* host order */
	uint16_t dport;
};

/* One segment; the fields after len are oddities, zero for a plain packet. */
struct seg {
	uint8_t flags;
	uint32_t seq;
	const void *data;
	uint32_t len;
	uint8_t ip_opt_words;  /* IPv4 options, 4-byte words */
	uint8_t tcp_opt_words; /* TCP options, 4-byte words */
	uint8_t ihl;	       /* if set, its low 4 bits replace the IPv4 header length */
	uint8_t doff;	       /* ... the TCP data offset (0x10 writes a 0) */
	uint8_t proto;	       /* L4 protocol, TCP when 0; 17 builds a UDP header */
	uint16_t frag;	       /* IPv4 frag_off, or the IPv6 fragment header's field */
	bool v6_frag;	       /* IPv6 fragment header before the L4 header */
	bool v6_opts;	       /* IPv6 hop-by-hop and destination options first */
	uint8_t v6_chain[10];  /* then these extension headers, in order (see build) */
	uint8_t v6_nchain;
	uint32_t pad_to;       /* Ethernet padding up to this frame size */
	uint32_t cut_to;       /* frame cut to this many bytes */
};

static void v4(uint8_t a[16], const char *s)
{
	memset(a, 0, 16);
	inet_pton(AF_INET, s, a);
}

static void v6(uint8_t a[16], const char *s)
{
	inet_pton(AF_INET6, s, a);
}

static struct flow flow4(const char *src, uint16_t sport, const char *dst, uint16_t dport)
{
	struct flow f = { .family = AF_INET, .sport = sport, .dport = dport };

	v4(f.src, src);
	v4(f.dst, dst);
	return f;
}

static struct flow flow6(const char *src, uint16_t sport, const char *dst, uint16_t dport)
{
	struct flow f = { .family = AF_INET6, .sport = sport, .dport = dport };

	v6(f.src, src);
	v6(f.dst, dst);
	return f;
}

/* The same flow seen from the other end: what the server sends back. */
static struct flow reverse(const struct flow *f)
{
	struct flow r = *f;

	memcpy(r.src, f->dst, 16);
	memcpy(r.dst, f->src, 16);
	r.sport = f->dport;
	r.dport = f->sport;
	return r;
}

/* Ethernet + IPv4/IPv6 + TCP (or UDP) frame into buf; returns its length. */
static uint32_t build(uint8_t *buf, size_t cap, const struct flow *f, const struct seg *s)
{
	uint8_t proto = s->proto ? s->proto : 6;
	uint32_t l4len, iplen, pos, n;
	uint8_t *ip, *l4;

	memset(buf, 0, cap);
	memcpy(buf, "\x02\x00\x00\x00\x00\x02\x02\x00\x00\x00\x00\x01", 12);
	put16(buf + 12, f->family == AF_INET ? 0x0800 : 0x86dd);
	ip = buf + ETH_HLEN;
	l4len = (proto == 17 ? 8 : 20 + s->tcp_opt_words * 4) + s->len;

	if (f->family == AF_INET) {
		uint32_t ihl = 5 + s->ip_opt_words;

		iplen = ihl * 4;
		ip[0] = 0x40 | ((s->ihl ? s->ihl : ihl) & 0xf);
		put16(ip + 2, iplen + l4len);
		put16(ip + 4, 0x1234);
		put16(ip + 6, s->frag);
		ip[8] = 64;
		ip[9] = proto;
		memcpy(ip + 12, f->src, 4);
		memcpy(ip + 16, f->dst, 4);
		memset(ip + 20, 0x01, s->ip_opt_words * 4); /* NOPs */
	} else {
		uint8_t *next = ip + 6;

		iplen = 40;
		ip[0] = 0x60;
		ip[7] = 64;
		memcpy(ip + 8, f->src, 16);
		memcpy(ip + 24, f->dst, 16);
		if (s->v6_opts) {
			/* Hop-by-hop, 8 bytes, with a PadN option. */
			*next = 0;
			next = ip + iplen;
			ip[iplen + 1] = 0;
			ip[iplen + 2] = 1;
			ip[iplen + 3] = 4;
			iplen += 8;
			/* Destination options, 16 bytes: the length field counts. */
			*next = 60;
			next = ip + iplen;
			ip[iplen + 1] = 1;
			ip[iplen + 2] = 1;
			ip[iplen + 3] = 12;
			iplen += 16;
		}
		for (int i = 0; i < s->v6_nchain; i++) {
			uint8_t t = s->v6_chain[i], *h = ip + iplen;
			uint32_t hl;

			*next = t;
			next = h;
			if (t == 44) { /* fragment: offset and M from s->frag */
				put16(h + 2, s->frag);
				put32(h + 4, 0x1234);
				hl = 8;
			} else if (t == 51) { /* AH, 16 bytes: length in 4-byte units minus 2 */
				h[1] = 16 / 4 - 2;
				put32(h + 4, 0x100); /* SPI */
				put32(h + 8, 1);     /* sequence */
				hl = 16;
			} else if (t == 43) { /* segment routing header, one segment */
				h[1] = 2;
				h[2] = 4;
				memcpy(h + 8, f->dst, 16);
				hl = 24;
			} else { /* hop-by-hop, destination options: 8 bytes of PadN */
				h[2] = 1;
				h[3] = 4;
				hl = 8;
			}
			iplen += hl;
		}
		if (s->v6_frag) {
			*next = 44;
			next = ip + iplen;
			put16(ip + iplen + 2, s->frag);
			put32(ip + iplen + 4, 0xabcd);
			iplen += 8;
		}
		*next = proto;
		put16(ip + 4, iplen - 40 + l4len);
	}

	l4 = ip + iplen;
	put16(l4, f->sport);
	put16(l4 + 2, f->dport);
	if (proto == 17) {
		put16(l4 + 4, l4len);
		pos = ETH_HLEN + iplen + 8;
	} else {
		uint32_t doff = 5 + s->tcp_opt_words;

		put32(l4 + 4, s->seq);
		put32(l4 + 8, s->flags & F_ACK ? 0x5000 : 0);
		l4[12] = ((s->doff ? s->doff : doff) & 0xf) << 4;
		l4[13] = s->flags;
		put16(l4 + 14, 64240);
		memset(l4 + 20, 0x01, s->tcp_opt_words * 4); /* NOPs */
		pos = ETH_HLEN + iplen + doff * 4;
	}
	if (s->len)
		memcpy(buf + pos, s->data, s->len);
	n = pos + s->len;
	/* Padding bytes that are not zero, so that copying them would show. */
	for (; n < s->pad_to && n < cap; n++)
		buf[n] = 0xee;
	if (s->cut_to && s->cut_to < n)
		n = s->cut_to;
	return n;
}

static int on_record(void *ctx, void *data, size_t size)
{
	(void)ctx;
	if (nrec >= MAX_RECS || size > REC_MAX) {
		ring_overflow = 1;
		return 0;
	}
	recs[nrec].size = size;
	memset(recs[nrec].raw, 0, REC_MAX);
	memcpy(recs[nrec].raw, data, size);
	nrec++;
	return 0;
}

/* Read whatever the programs produced since the last call. */
static int drain(void)
{
	nrec = 0;
	ring_overflow = 0;
	CHECK(ring_buffer__consume(rb) >= 0);
	CHECK(!ring_overflow);
	return nrec;
}

static int test_run(bool out, const void *frame, uint32_t len, uint32_t *retval)
{
	struct bpf_program *prog = out ? skel->progs.sw_tc_egress : skel->progs.sw_tc_ingress;
	LIBBPF_OPTS(bpf_test_run_opts, o, .data_in = frame, .data_size_in = len, .repeat = 1);
	int err = bpf_prog_test_run_opts(bpf_program__fd(prog), &o);

	*retval = o.retval;
	return err;
}

static void run_frame(bool out, const void *frame, uint32_t len)
{
	uint32_t retval;

	CHECK(test_run(out, frame, len, &retval) == 0);
	CHECK(retval == TC_ACT_UNSPEC); /* the programs only watch */
}

static void run_seg(bool out, const struct flow *f, const struct seg *s)
{
	uint8_t buf[2048];

	run_frame(out, buf, build(buf, sizeof(buf), f, s));
}

static void egress(const struct flow *f, uint8_t flags, uint32_t seq, const char *data)
{
	struct seg s = { .flags = flags, .seq = seq, .data = data, .len = data ? strlen(data) : 0 };

	run_seg(true, f, &s);
}

/* The server's segment of flow f, on ingress. */
static void ingress(const struct flow *f, uint8_t flags, uint32_t seq, const char *data)
{
	struct flow r = reverse(f);
	struct seg s = { .flags = flags, .seq = seq, .data = data, .len = data ? strlen(data) : 0 };

	run_seg(false, &r, &s);
}

static struct sw_wire_key wkey(const struct flow *f)
{
	struct sw_wire_key k;

	memset(&k, 0, sizeof(k));
	memcpy(k.saddr, f->src, 16);
	memcpy(k.daddr, f->dst, 16);
	k.sport = htons(f->sport);
	k.dport = htons(f->dport);
	k.family = f->family;
	return k;
}

/* 0 and the state when the flow is in wire_flows, -ENOENT when not. */
static int wire_state(const struct flow *f, struct sw_wire_state *ws)
{
	struct sw_wire_key k = wkey(f);

	memset(ws, 0, sizeof(*ws));
	if (bpf_map_lookup_elem(bpf_map__fd(skel->maps.wire_flows), &k, ws))
		return -errno;
	return 0;
}

static uint64_t stat_sum(uint32_t idx)
{
	return stat_sum_fd(bpf_map__fd(skel->maps.stats), idx);
}

static bool addr_is(const struct sw_addr *a, const struct flow *f, bool src)
{
	size_t n = f->family == AF_INET ? 4 : 16;
	static const uint8_t zero[16];

	return a->family == f->family && a->port == (src ? f->sport : f->dport) &&
	       !memcmp(a->addr, src ? f->src : f->dst, n) && !memcmp(a->addr + n, zero, 16 - n);
}

/* The one WIRE record that a new SYN of f must produce; returns its id. */
static uint64_t check_wire(const struct rec *r, const struct flow *f)
{
	CHECK(r->size == sizeof(struct sw_flow));
	CHECK(r->hdr.type == SW_EV_WIRE);
	CHECK(r->hdr.size == sizeof(struct sw_flow));
	CHECK(r->hdr.id & SW_WIRE_ID_BIT);
	CHECK(addr_is(&r->flow.src, f, true));
	CHECK(addr_is(&r->flow.dst, f, false));
	CHECK(r->flow.ifindex == IFINDEX_LO);
	return r->hdr.id;
}

/* A data record is small when its bytes fit the small one (events.h). */
static size_t data_rec_size(uint32_t len)
{
	return len <= SW_DATA_SMALL ? SW_DATA_REC_SMALL : sizeof(struct sw_data);
}

static void check_data(const struct rec *r, uint64_t id, uint8_t dir, uint32_t off,
		       const void *bytes, uint32_t len)
{
	CHECK(r->size == data_rec_size(len));
	CHECK(r->hdr.type == SW_EV_DATA);
	CHECK(r->hdr.size == data_rec_size(len));
	CHECK(r->hdr.id == id);
	CHECK(r->data.dir == dir);
	CHECK(r->data.offset == off);
	CHECK(r->data.len == len);
	CHECK(len <= SW_DATA_MAX && !memcmp(r->data.data, bytes, len));
}

/* A SYN of a new flow: exactly one WIRE record; returns the flow's id. */
static uint64_t open_flow(const struct flow *f, uint32_t isn)
{
	uint64_t id = 0;

	drain();
	egress(f, F_SYN, isn, NULL);
	CHECK(drain() == 1);
	if (nrec >= 1)
		id = check_wire(&recs[0], f);
	return id;
}

/* ---- cases ------------------------------------------------------------------- */

static void test_v4_syn_wire(void)
{
	struct flow f = flow4("192.0.2.10", 40001, "198.51.100.25", 25);
	uint64_t wires = stat_sum(SW_STAT_WIRE_FLOWS);
	uint64_t full = stat_sum(SW_STAT_WIRE_FULL);
	struct sw_wire_state ws;
	uint64_t id;

	id = open_flow(&f, 1000);
	CHECK(stat_sum(SW_STAT_WIRE_FLOWS) == wires + 1);
	CHECK(wire_state(&f, &ws) == 0);
	CHECK(ws.id == id && ws.client_isn == 1000 && !ws.have_server_isn && !ws.closed);

	/* A retransmitted SYN is the same flow, and no loss. */
	egress(&f, F_SYN, 1000, NULL);
	CHECK(drain() == 0);
	CHECK(stat_sum(SW_STAT_WIRE_FLOWS) == wires + 1);
	CHECK(stat_sum(SW_STAT_WIRE_FULL) == full);
	CHECK(wire_state(&f, &ws) == 0);
	CHECK(ws.id == id && ws.client_isn == 1000);
}

static void test_v4_client_data(void)
{
	struct flow f = flow4("192.0.2.10", 40002, "198.51.100.25", 25);
	uint32_t isn = 0xfffffff0; /* the stream crosses the sequence wrap */
	uint64_t id = open_flow(&f, isn);

	egress(&f, F_ACK | F_PSH, isn + 1, "EHLO x\r\n");
	CHECK(drain() == 1);
	if (nrec == 1)
		check_data(&recs[0], id, SW_DIR_CLIENT, 0, "EHLO x\r\n", 8);

	egress(&f, F_ACK | F_PSH, isn + 9, "MAIL FROM:<a@b>\r\n");
	CHECK(drain() == 1);
	if (nrec == 1)
		check_data(&recs[0], id, SW_DIR_CLIENT, 8, "MAIL FROM:<a@b>\r\n", 17);

	egress(&f, F_ACK | F_PSH, isn + 26, "RCPT TO:<c@d>\r\n");
	CHECK(drain() == 1);
	if (nrec == 1)
		check_data(&recs[0], id, SW_DIR_CLIENT, 25, "RCPT TO:<c@d>\r\n", 15);
}

static void test_v4_ip_options(void)
{
	struct flow f = flow4("192.0.2.11", 40003, "198.51.100.26", 2525);
	struct seg syn = { .flags = F_SYN, .seq = 7, .ip_opt_words = 3, .tcp_opt_words = 1 };
	struct seg data = { .flags = F_ACK | F_PSH, .seq = 8, .data = "HELO y\r\n", .len = 8,
			    .ip_opt_words = 3, .tcp_opt_words = 3 };
	uint64_t id = 0;

	drain();
	run_seg(true, &f, &syn);
	CHECK(drain() == 1);
	if (nrec == 1)
		id = check_wire(&recs[0], &f);
	run_seg(true, &f, &data);
	CHECK(drain() == 1);
	if (nrec == 1)
		check_data(&recs[0], id, SW_DIR_CLIENT, 0, "HELO y\r\n", 8);
}

static void test_v6_syn_data(void)
{
	struct flow f = flow6("2001:db8::10", 40004, "2001:db8:ffff::25", 25);
	uint64_t id = open_flow(&f, 555);

	egress(&f, F_ACK | F_PSH, 556, "EHLO x\r\n");
	CHECK(drain() == 1);
	if (nrec == 1)
		check_data(&recs[0], id, SW_DIR_CLIENT, 0, "EHLO x\r\n", 8);
}

static void test_v6_ext_headers(void)
{
	struct flow f = flow6("2001:db8::11", 40005, "2001:db8:ffff::26", 25);
	struct seg syn = { .flags = F_SYN, .seq = 90, .v6_opts = true };
	struct seg data = { .flags = F_ACK, .seq = 91, .data = "EHLO z\r\n", .len = 8,
			    .v6_opts = true, .tcp_opt_words = 3 };
	uint64_t id = 0;

	drain();
	run_seg(true, &f, &syn);
	CHECK(drain() == 1);
	if (nrec == 1)
		id = check_wire(&recs[0], &f);
	run_seg(true, &f, &data);
	CHECK(drain() == 1);
	if (nrec == 1)
		check_data(&recs[0], id, SW_DIR_CLIENT, 0, "EHLO z\r\n", 8);
}

/* A frame to ignore: no record and no wire flow in either orientation. */
static void check_ignored(bool out, const struct flow *f, const struct seg *s)
{
	struct flow r = reverse(f);
	struct sw_wire_state ws;

	drain();
	run_seg(out, f, s);
	CHECK(drain() == 0);
	CHECK(wire_state(f, &ws) == -ENOENT);
	CHECK(wire_state(&r, &ws) == -ENOENT);
}

/*
 * A frame shorter than its fixed IP header. Kernels with the 2026 test_run fix
 * ("skb_headlen < sizeof(struct iphdr)" -> -EINVAL) refuse to build the skb;
 * older ones run the program, which must then ignore it.
 */
static void check_short(const void *frame, uint32_t len)
{
	uint32_t retval = 0;
	int err;

	drain();
	err = test_run(true, frame, len, &retval);
	CHECK(err == 0 || err == -EINVAL);
	CHECK(err || retval == TC_ACT_UNSPEC);
	CHECK(drain() == 0);
}

static void check_short_seg(const struct flow *f, const struct seg *s)
{
	struct sw_wire_state ws;
	uint8_t buf[256];

	check_short(buf, build(buf, sizeof(buf), f, s));
	CHECK(wire_state(f, &ws) == -ENOENT);
}

static void test_truncated(void)
{
	struct flow f = flow4("192.0.2.12", 40006, "198.51.100.27", 25);
	struct flow g = flow6("2001:db8::12", 40006, "2001:db8:ffff::27", 25);
	uint8_t eth[ETH_HLEN] = { 2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, 0x08, 0x00 };

	/* Ethernet header alone, IPv4 header cut short, IPv6 header cut short. */
	check_short(eth, sizeof(eth));
	check_short_seg(&f, &(struct seg){ .flags = F_SYN, .cut_to = ETH_HLEN + 12 });
	check_short_seg(&g, &(struct seg){ .flags = F_SYN, .cut_to = ETH_HLEN + 30 });
	/* IPv4 options announced but cut off. */
	check_ignored(true, &f, &(struct seg){ .flags = F_SYN, .ip_opt_words = 10,
					       .cut_to = ETH_HLEN + 30 });
	/* TCP header cut short, ports still there. */
	check_ignored(true, &f, &(struct seg){ .flags = F_SYN, .cut_to = ETH_HLEN + 20 + 10 });
	/* ihl < 5. */
	check_ignored(true, &f, &(struct seg){ .flags = F_SYN, .ihl = 4 });
	check_ignored(true, &f, &(struct seg){ .flags = F_SYN, .ihl = 0x10 });
	/* doff < 5. */
	check_ignored(true, &f, &(struct seg){ .flags = F_SYN, .doff = 4 });
	check_ignored(true, &f, &(struct seg){ .flags = F_SYN, .doff = 0x10 });
	/* IPv6: TCP header cut short, extension header cut off, doff < 5. */
	check_ignored(true, &g, &(struct seg){ .flags = F_SYN, .cut_to = ETH_HLEN + 40 + 10 });
	check_ignored(true, &g, &(struct seg){ .flags = F_SYN, .v6_opts = true,
					       .cut_to = ETH_HLEN + 40 + 12 });
	check_ignored(true, &g, &(struct seg){ .flags = F_SYN, .doff = 3 });
}

static void test_not_smtp(void)
{
	struct flow web = flow4("192.0.2.13", 40007, "198.51.100.28", 80);
	struct flow tls = flow4("192.0.2.13", 40008, "198.51.100.28", 443);
	struct flow web6 = flow6("2001:db8::13", 40007, "2001:db8:ffff::28", 443);
	struct flow udp = flow4("192.0.2.13", 40009, "198.51.100.28", 25);
	/* This host is the server: its packets go out from :25. */
	struct flow mx = flow4("192.0.2.13", 25, "198.51.100.29", 40010);
	/* ... and its clients' packets come in to :25. */
	struct flow in = flow4("198.51.100.29", 40011, "192.0.2.13", 25);

	check_ignored(true, &web, &(struct seg){ .flags = F_SYN, .seq = 1 });
	check_ignored(true, &web, &(struct seg){ .flags = F_ACK, .seq = 2, .data = "GET /", .len = 5 });
	check_ignored(true, &tls, &(struct seg){ .flags = F_SYN, .seq = 1 });
	check_ignored(true, &web6, &(struct seg){ .flags = F_SYN, .seq = 1 });
	check_ignored(true, &udp, &(struct seg){ .proto = 17, .data = "EHLO x\r\n", .len = 8 });
	check_ignored(true, &mx, &(struct seg){ .flags = F_SYN | F_ACK, .seq = 1 });
	check_ignored(true, &mx, &(struct seg){ .flags = F_ACK, .seq = 2, .data = "220 mx\r\n",
						.len = 8 });
	check_ignored(true, &mx, &(struct seg){ .flags = F_SYN, .seq = 3 });
	check_ignored(false, &in, &(struct seg){ .flags = F_SYN, .seq = 1 });
	check_ignored(false, &in, &(struct seg){ .flags = F_ACK, .seq = 2, .data = "EHLO x\r\n",
						 .len = 8 });
}

/* The full parser, reached through extension headers, must apply the port test too. */
static void test_v6_ext_not_smtp(void)
{
	struct flow web6 = flow6("2001:db8::14", 40012, "2001:db8:ffff::29", 443);

	check_ignored(true, &web6, &(struct seg){ .flags = F_SYN, .seq = 1, .v6_opts = true });
}

static void test_pure_ack(void)
{
	struct flow f = flow4("192.0.2.15", 40013, "198.51.100.30", 25);
	struct flow late = flow4("192.0.2.15", 40014, "198.51.100.30", 25);

	open_flow(&f, 300);
	egress(&f, F_ACK, 301, NULL);
	CHECK(drain() == 0);
	/* A flow whose SYN was never seen (it predates the agent) stays unknown. */
	egress(&late, F_ACK | F_PSH, 301, "EHLO x\r\n");
	CHECK(drain() == 0);
	CHECK(wire_state(&late, &(struct sw_wire_state){ 0 }) == -ENOENT);
}

static void test_eth_padding(void)
{
	struct flow f = flow4("192.0.2.16", 40015, "198.51.100.31", 25);
	struct flow g = flow6("2001:db8::16", 40015, "2001:db8:ffff::31", 25);
	struct seg s4 = { .flags = F_ACK, .seq = 41, .data = "NOOP", .len = 4, .pad_to = 60 };
	struct seg s6 = { .flags = F_ACK, .seq = 61, .data = "RSET", .len = 4, .pad_to = 120 };
	uint64_t id;

	id = open_flow(&f, 40);
	run_seg(true, &f, &s4);
	CHECK(drain() == 1);
	if (nrec == 1)
		check_data(&recs[0], id, SW_DIR_CLIENT, 0, "NOOP", 4);

	id = open_flow(&g, 60);
	run_seg(true, &g, &s6);
	CHECK(drain() == 1);
	if (nrec == 1)
		check_data(&recs[0], id, SW_DIR_CLIENT, 0, "RSET", 4);
}

static void test_capture_bound(void)
{
	struct flow f = flow4("192.0.2.17", 40016, "198.51.100.32", 25);
	uint32_t isn = 5000;
	uint64_t trunc, id = open_flow(&f, isn);

	/* Straddling the bound: only the bytes before it; the cut is counted. */
	trunc = stat_sum(SW_STAT_TRUNCATED);
	egress(&f, F_ACK, isn + 1 + SW_CAPTURE_CLIENT - 8, "RCPT TO:<x@y>\r\n");
	CHECK(drain() == 1);
	if (nrec == 1)
		check_data(&recs[0], id, SW_DIR_CLIENT, SW_CAPTURE_CLIENT - 8, "RCPT TO:", 8);
	CHECK(stat_sum(SW_STAT_TRUNCATED) == trunc + 1);

	/* At and past the bound: nothing, counted. */
	egress(&f, F_ACK, isn + 1 + SW_CAPTURE_CLIENT, "DATA\r\n");
	CHECK(drain() == 0);
	CHECK(stat_sum(SW_STAT_TRUNCATED) == trunc + 2);
	egress(&f, F_ACK, isn + 1 + 100000, "QUIT\r\n");
	CHECK(drain() == 0);
	CHECK(stat_sum(SW_STAT_TRUNCATED) == trunc + 3);
}

static void test_server_reply(void)
{
	struct flow f = flow4("192.0.2.18", 40017, "198.51.100.33", 25);
	uint32_t sisn = 0x80000000;
	struct sw_wire_state ws;
	uint64_t id = open_flow(&f, 10);

	/* Before the SYN-ACK the server's offsets are unknown (not taken from ISN 0). */
	ingress(&f, F_ACK, 1, "220 hi\r\n");
	CHECK(drain() == 0);

	ingress(&f, F_SYN | F_ACK, sisn, NULL);
	CHECK(drain() == 0);
	CHECK(wire_state(&f, &ws) == 0);
	CHECK(ws.id == id && ws.have_server_isn && ws.server_isn == sisn && ws.client_isn == 10);

	ingress(&f, F_ACK | F_PSH, sisn + 1, "220 hi\r\n");
	CHECK(drain() == 1);
	if (nrec == 1)
		check_data(&recs[0], id, SW_DIR_SERVER, 0, "220 hi\r\n", 8);
	ingress(&f, F_ACK | F_PSH, sisn + 9, "250 ok\r\n");
	CHECK(drain() == 1);
	if (nrec == 1)
		check_data(&recs[0], id, SW_DIR_SERVER, 8, "250 ok\r\n", 8);
}

static void check_close(const struct rec *r, uint64_t id, uint32_t reason)
{
	CHECK(r->size == sizeof(struct sw_close));
	CHECK(r->hdr.type == SW_EV_CLOSE);
	CHECK(r->hdr.size == sizeof(struct sw_close));
	CHECK(r->hdr.id == id);
	CHECK(r->close.reason == reason);
}

static void test_fin_close(void)
{
	struct flow f = flow4("192.0.2.19", 40018, "198.51.100.34", 25);
	struct sw_wire_state ws;
	uint64_t id = open_flow(&f, 20);

	/* QUIT and FIN in one segment: the bytes, then the close. */
	egress(&f, F_FIN | F_ACK, 21, "QUIT\r\n");
	CHECK(drain() == 2);
	if (nrec == 2) {
		check_data(&recs[0], id, SW_DIR_CLIENT, 0, "QUIT\r\n", 6);
		check_close(&recs[1], id, SW_CLOSE_FIN_CLIENT);
	}
	CHECK(wire_state(&f, &ws) == 0);
	CHECK(ws.closed == SW_CLOSE_FIN_CLIENT);

	/* A retransmitted FIN says nothing new. */
	egress(&f, F_FIN | F_ACK, 27, NULL);
	CHECK(drain() == 0);

	ingress(&f, F_RST, 99, NULL);
	CHECK(drain() == 1);
	if (nrec == 1)
		check_close(&recs[0], id, SW_CLOSE_FIN_CLIENT | SW_CLOSE_RST);
}

static void test_v4_fragments(void)
{
	struct flow f = flow4("192.0.2.20", 40019, "198.51.100.35", 25);
	struct flow g = flow4("192.0.2.20", 40020, "198.51.100.35", 25);

	/* A later fragment whose bytes look like a SYN to :25 (offset 1480, MF). */
	check_ignored(true, &f, &(struct seg){ .flags = F_SYN, .seq = 1, .frag = 0x2000 | 185 });
	/* The last fragment (no MF). */
	check_ignored(true, &f, &(struct seg){ .flags = F_SYN, .seq = 1, .frag = 185 });

	/* The first fragment holds the TCP header: that SYN counts. */
	drain();
	run_seg(true, &g, &(struct seg){ .flags = F_SYN, .seq = 70, .frag = 0x2000 });
	CHECK(drain() == 1);
	if (nrec == 1)
		check_wire(&recs[0], &g);
	/* A later fragment of a known flow, shaped like its next segment. */
	run_seg(true, &g, &(struct seg){ .flags = F_ACK, .seq = 71, .data = "EHLO x\r\n", .len = 8,
					 .frag = 0x2000 | 3 });
	CHECK(drain() == 0);
}

static void test_v6_fragments(void)
{
	struct flow f = flow6("2001:db8::21", 40021, "2001:db8:ffff::36", 25);
	struct flow g = flow6("2001:db8::21", 40022, "2001:db8:ffff::36", 25);

	/* Fragment offset 1480 (in 8-byte units, above 3 flag bits), M set. */
	check_ignored(true, &f, &(struct seg){ .flags = F_SYN, .seq = 1, .v6_frag = true,
					       .frag = (185 << 3) | 1 });
	/* Offset 0 carries the TCP header. */
	drain();
	run_seg(true, &g, &(struct seg){ .flags = F_SYN, .seq = 1, .v6_frag = true, .frag = 1 });
	CHECK(drain() == 1);
	if (nrec == 1)
		check_wire(&recs[0], &g);
}

/*
 * A segment longer than one record, inside the capture bound (pipelined
 * commands, a GSO super-packet at tc egress): its bytes past SW_DATA_MAX must
 * reach the ring or be counted as lost, never vanish.
 */
static void test_segment_over_record(void)
{
	struct flow f = flow4("192.0.2.22", 40023, "198.51.100.37", 25);
	uint64_t trunc, id = open_flow(&f, 1);
	char big[700];
	uint32_t got = 0;

	for (size_t i = 0; i < sizeof(big); i++)
		big[i] = 'a' + i % 26;
	trunc = stat_sum(SW_STAT_TRUNCATED);
	run_seg(true, &f, &(struct seg){ .flags = F_ACK, .seq = 2, .data = big, .len = sizeof(big) });
	CHECK(drain() >= 1);
	if (nrec >= 1)
		check_data(&recs[0], id, SW_DIR_CLIENT, 0, big, SW_DATA_MAX);
	for (int i = 0; i < nrec; i++)
		got += recs[i].data.len;
	CHECK(got == sizeof(big) || stat_sum(SW_STAT_TRUNCATED) > trunc);
}

/* Records come in two sizes; the boundary and a segment split over both. */
static void test_data_record_sizes(void)
{
	struct flow f = flow4("192.0.2.23", 40024, "198.51.100.38", 25);
	uint64_t id = open_flow(&f, 100);
	uint32_t seq = 101, off = 0;
	static const uint32_t lens[] = { 1, SW_DATA_SMALL, SW_DATA_SMALL + 1, SW_DATA_MAX };
	char buf[SW_DATA_MAX + SW_DATA_SMALL];

	for (size_t i = 0; i < sizeof(buf); i++)
		buf[i] = 'A' + i % 23;
	for (size_t i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
		run_seg(true, &f, &(struct seg){ .flags = F_ACK, .seq = seq, .data = buf,
						 .len = lens[i] });
		CHECK(drain() == 1);
		if (nrec == 1)
			check_data(&recs[0], id, SW_DIR_CLIENT, off, buf, lens[i]);
		seq += lens[i];
		off += lens[i];
	}
	/* A full record, then the rest in a small one. */
	run_seg(true, &f, &(struct seg){ .flags = F_ACK, .seq = seq, .data = buf,
					 .len = sizeof(buf) });
	CHECK(drain() == 2);
	if (nrec == 2) {
		check_data(&recs[0], id, SW_DIR_CLIENT, off, buf, SW_DATA_MAX);
		check_data(&recs[1], id, SW_DIR_CLIENT, off + SW_DATA_MAX, buf + SW_DATA_MAX,
			   SW_DATA_SMALL);
	}
}

/* A SYN and a HELO of flow f with the given IPv6 extension headers: both seen. */
static void check_v6_chain(const struct flow *f, const uint8_t *chain, uint8_t n)
{
	struct seg syn = { .flags = F_SYN, .seq = 500, .v6_nchain = n };
	struct seg data = { .flags = F_ACK | F_PSH, .seq = 501, .data = "EHLO chain\r\n",
			    .len = 12, .v6_nchain = n };
	uint64_t id = 0;

	memcpy(syn.v6_chain, chain, n);
	memcpy(data.v6_chain, chain, n);
	drain();
	run_seg(true, f, &syn);
	CHECK(drain() == 1);
	if (nrec == 1)
		id = check_wire(&recs[0], f);
	run_seg(true, f, &data);
	CHECK(drain() == 1);
	if (nrec == 1)
		check_data(&recs[0], id, SW_DIR_CLIENT, 0, "EHLO chain\r\n", 12);
	/* The server's reply, through the same headers, on ingress. */
	{
		struct flow r = reverse(f);
		struct seg sa = { .flags = F_SYN | F_ACK, .seq = 9000, .v6_nchain = n };
		struct seg rep = { .flags = F_ACK, .seq = 9001, .data = "250 ok\r\n", .len = 8,
				   .v6_nchain = n };

		memcpy(sa.v6_chain, chain, n);
		memcpy(rep.v6_chain, chain, n);
		run_seg(false, &r, &sa);
		run_seg(false, &r, &rep);
		CHECK(drain() == 1);
		if (nrec == 1)
			check_data(&recs[0], id, SW_DIR_SERVER, 0, "250 ok\r\n", 8);
	}
}

/* What IPV6_HOPOPTS, IPV6_RTHDRDSTOPTS, IPV6_RTHDR and IPV6_DSTOPTS put in a segment. */
static void test_v6_sticky_chain(void)
{
	static const uint8_t chain[] = { 0, 60, 43, 60 };
	struct flow f = flow6("2001:db8::24", 40025, "2001:db8:ffff::39", 25);

	check_v6_chain(&f, chain, sizeof(chain));
}

/* An AH (IPsec transport mode) leaves TCP in clear; its length unit is 4 bytes. */
static void test_v6_auth_header(void)
{
	static const uint8_t chain[] = { 51 };
	static const uint8_t chain2[] = { 0, 51, 60 };
	struct flow f = flow6("2001:db8::25", 40026, "2001:db8:ffff::40", 25);
	struct flow g = flow6("2001:db8::25", 40027, "2001:db8:ffff::40", 25);

	check_v6_chain(&f, chain, sizeof(chain));
	check_v6_chain(&g, chain2, sizeof(chain2));
}

/* Eight extension headers are walked; a ninth is beyond the bound. */
static void test_v6_long_chain(void)
{
	static const uint8_t eight[] = { 0, 60, 43, 60, 60, 51, 60, 44 };
	static const uint8_t nine[] = { 0, 60, 43, 60, 60, 51, 60, 60, 60 };
	struct flow f = flow6("2001:db8::26", 40028, "2001:db8:ffff::41", 25);
	struct flow g = flow6("2001:db8::26", 40029, "2001:db8:ffff::41", 25);
	struct seg s = { .flags = F_SYN, .seq = 1, .v6_nchain = sizeof(nine) };

	check_v6_chain(&f, eight, sizeof(eight)); /* .frag 0: a whole datagram */
	memcpy(s.v6_chain, nine, sizeof(nine));
	check_ignored(true, &g, &s);
}

/* A fragment header deep in the chain: only offset 0 carries the TCP header. */
static void test_v6_fragment_in_chain(void)
{
	static const uint8_t chain[] = { 0, 60, 44 };
	struct flow f = flow6("2001:db8::27", 40030, "2001:db8:ffff::42", 25);
	struct flow g = flow6("2001:db8::27", 40031, "2001:db8:ffff::42", 25);
	struct seg later = { .flags = F_SYN, .seq = 1, .v6_nchain = 3, .frag = (185 << 3) | 1 };
	struct seg first = { .flags = F_SYN, .seq = 1, .v6_nchain = 3, .frag = 1 };

	memcpy(later.v6_chain, chain, 3);
	memcpy(first.v6_chain, chain, 3);
	check_ignored(true, &f, &later);
	drain();
	run_seg(true, &g, &first);
	CHECK(drain() == 1);
	if (nrec == 1)
		check_wire(&recs[0], &g);
}

/*
 * A valid IPv4 SYN in a frame that says IPv6: its byte 6 (frag_off, 0) reads as
 * a hop-by-hop header, which sends it to the full parser. The stack drops such a
 * frame (version 4 is not IPv6), so the parser must too.
 */
static void test_v6_ethertype_version_mismatch(void)
{
	struct flow f = flow4("192.0.2.28", 40032, "198.51.100.43", 25);
	uint8_t buf[256];
	uint32_t n = build(buf, sizeof(buf), &f, &(struct seg){ .flags = F_SYN, .seq = 1 });
	struct sw_wire_state ws;

	put16(buf + 12, 0x86dd);
	CHECK(buf[ETH_HLEN + 6] == 0);
	drain();
	run_frame(true, buf, n);
	CHECK(drain() == 0);
	CHECK(wire_state(&f, &ws) == -ENOENT);
}

/* ---- setup ------------------------------------------------------------------- */

static const char *skip_reason;

/* full: every segment the linear parser takes goes through the full one instead. */
static int setup(bool full)
{
	static const uint16_t ports[] = { 25, 2525 };
	uint8_t buf[128];
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
	for (size_t i = 0; i < sizeof(ports) / sizeof(ports[0]); i++)
		skel->rodata->port_bits[ports[i] >> 6] |= 1ULL << (ports[i] & 63);
	skel->rodata->full_parse = full;
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
	/* Probe: kernels without test_run for tc say so here, not in every case. */
	{
		struct flow f = flow4("192.0.2.1", 1, "192.0.2.2", 1);
		struct seg s = { .flags = F_ACK };
		LIBBPF_OPTS(bpf_test_run_opts, o, .data_in = buf, .repeat = 1);

		o.data_size_in = build(buf, sizeof(buf), &f, &s);
		err = bpf_prog_test_run_opts(bpf_program__fd(skel->progs.sw_tc_egress), &o);
		if (err == -ENOTSUP || err == -EOPNOTSUPP || err == -EINVAL) {
			skip_reason = "BPF_PROG_TEST_RUN is not available for tc programs";
			return 0;
		}
		if (err) {
			printf("FAIL setup: BPF_PROG_TEST_RUN: %s\n", strerror(-err));
			return -1;
		}
	}
	return 0;
}

/* Each case once per parser; the second pass's names say so. */
static const char *pass_name = "";

#define RUN_BPF(fn)                                                                        \
	do {                                                                               \
		if (skip_reason) {                                                         \
			printf("SKIP %s%s: %s\n", #fn, pass_name, skip_reason);            \
		} else {                                                                   \
			check_case_failed = 0;                                             \
			fn();                                                              \
			printf("%s %s%s\n", check_case_failed ? "FAIL" : "PASS", #fn, pass_name); \
			check_failed_cases += check_case_failed;                           \
		}                                                                          \
	} while (0)

int main(void)
{
	int err = 0;

	for (int full = 0; full < 2 && !err && !skip_reason; full++) {
		pass_name = full ? "_full_parser" : "";
		err = setup(full);
		if (err)
			break;
		RUN_BPF(test_v4_syn_wire);
		RUN_BPF(test_v4_client_data);
		RUN_BPF(test_v4_ip_options);
		RUN_BPF(test_v6_syn_data);
		RUN_BPF(test_v6_ext_headers);
		RUN_BPF(test_truncated);
		RUN_BPF(test_not_smtp);
		RUN_BPF(test_v6_ext_not_smtp);
		RUN_BPF(test_pure_ack);
		RUN_BPF(test_eth_padding);
		RUN_BPF(test_capture_bound);
		RUN_BPF(test_server_reply);
		RUN_BPF(test_fin_close);
		RUN_BPF(test_v4_fragments);
		RUN_BPF(test_v6_fragments);
		RUN_BPF(test_segment_over_record);
		RUN_BPF(test_data_record_sizes);
		RUN_BPF(test_v6_sticky_chain);
		RUN_BPF(test_v6_auth_header);
		RUN_BPF(test_v6_long_chain);
		RUN_BPF(test_v6_fragment_in_chain);
		RUN_BPF(test_v6_ethertype_version_mismatch);
		ring_buffer__free(rb);
		smtpwatch_bpf__destroy(skel);
		rb = NULL;
		skel = NULL;
	}
	ring_buffer__free(rb);
	smtpwatch_bpf__destroy(skel);
	if (err)
		return 1;
	CHECK_EXIT();
}
