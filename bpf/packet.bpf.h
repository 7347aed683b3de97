/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * TCP/IP header parsing shared by the cgroup_skb and tc programs: the headers
 * in the linear data by direct packet access, the rest by bpf_skb_load_bytes; no
 * other helper, so it is exercised on crafted packets with BPF_PROG_TEST_RUN.
 * Offsets are from skb->data; the network header is at nh.
 */
#ifndef SMTPWATCH_PACKET_BPF_H
#define SMTPWATCH_PACKET_BPF_H

#include "smtpwatch/events.h"

#define ETH_P_IP 0x0800
#define ETH_P_IPV6 0x86DD
#define AF_INET 2
#define AF_INET6 10
#define IPPROTO_TCP 6
#define TCP_FIN 0x01
#define TCP_SYN 0x02
#define TCP_RST 0x04
#define TCP_ACK 0x10

/* IPv6 extension headers the parsers walk to reach TCP (RFC 8200 section 4). */
#define IPV6_HOPOPTS 0
#define IPV6_ROUTING 43
#define IPV6_FRAGMENT 44
#define IPV6_AUTH 51 /* AH: TCP follows in clear (transport mode) */
#define IPV6_DSTOPTS 60
/* Sticky socket options alone put four in a TCP segment (hop-by-hop, destination
 * options, routing, destination options); AH and a fragment header add two. */
#define IPV6_MAX_EXT 8

struct sw_pkt {
	/*
	 * Addresses, ports and family in the packet's own direction, laid out as
	 * the wire_flows key and written as whole 8-byte words: a key assembled
	 * from narrower stores stalls the wider loads that hash and compare it
	 * (no store-to-load forwarding across stores).
	 */
	union {
		struct sw_wire_key key; /* ports in network order */
		__u64 kw[5];
	};
	__u32 seq; /* host order */
	__u32 payload_off; /* from skb->data, like nh */
	__u32 payload_len;
	__u8 flags; /* TCP flags byte */
};
_Static_assert(sizeof(struct sw_wire_key) == 5 * 8, "sw_pkt key words");
_Static_assert(__builtin_offsetof(struct sw_wire_key, sport) == 32, "ports in word 4");
_Static_assert(__builtin_offsetof(struct sw_wire_key, family) == 36, "family in word 4");

/* The key word whose first four bytes in memory are v (v as loaded from memory). */
static __always_inline __u64 sw_word4(__u32 v)
{
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
	return v;
#else
	return (__u64)v << 32;
#endif
}

/* The key word of two 4-byte words as loaded from memory, in memory order. */
static __always_inline __u64 sw_word8(__u32 first, __u32 second)
{
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
	return first | (__u64)second << 32;
#else
	return (__u64)first << 32 | second;
#endif
}

/* Key word 4: both ports as the TCP header has them, then the family. */
static __always_inline __u64 sw_port_word(__u32 ports, __u8 family)
{
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
	return ports | (__u64)family << 32;
#else
	return (__u64)ports << 32 | (__u64)family << 24;
#endif
}

/* Word 4 with source and destination port exchanged: the reply's. */
static __always_inline __u64 sw_port_word_swap(__u64 w)
{
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
	return (w & ~0xffffffffULL) | (w >> 16 & 0xffff) | (w & 0xffff) << 16;
#else
	return (w & 0xffffffffULL) | (w >> 16 & 0xffff00000000ULL) | (w & 0xffff00000000ULL) << 16;
#endif
}

/* The same flow seen from the other end. */
static __always_inline void sw_key_reverse(struct sw_pkt *r, const struct sw_pkt *p)
{
	r->kw[0] = p->kw[2];
	r->kw[1] = p->kw[3];
	r->kw[2] = p->kw[0];
	r->kw[3] = p->kw[1];
	r->kw[4] = sw_port_word_swap(p->kw[4]);
}

static __always_inline bool sw_ipv6_ext(__u8 nexthdr)
{
	return nexthdr == IPV6_HOPOPTS || nexthdr == IPV6_ROUTING || nexthdr == IPV6_FRAGMENT ||
	       nexthdr == IPV6_AUTH || nexthdr == IPV6_DSTOPTS;
}

/* The addresses, from where the IP header holds them (4 or 16 bytes each). */
static __always_inline void sw_addrs4(struct sw_pkt *p, const __u32 *saddr, const __u32 *daddr)
{
	p->kw[0] = sw_word4(*saddr);
	p->kw[1] = 0;
	p->kw[2] = sw_word4(*daddr);
	p->kw[3] = 0;
}

/* 4-byte loads (an IPv6 header is 4-aligned at best), 8-byte stores. */
static __always_inline void sw_addrs6(struct sw_pkt *p, const __u32 *saddr, const __u32 *daddr)
{
	p->kw[0] = sw_word8(saddr[0], saddr[1]);
	p->kw[1] = sw_word8(saddr[2], saddr[3]);
	p->kw[2] = sw_word8(daddr[0], daddr[1]);
	p->kw[3] = sw_word8(daddr[2], daddr[3]);
}

static __always_inline void sw_tcp_fields(struct sw_pkt *p, const struct tcphdr *th, __u8 family)
{
	p->kw[4] = sw_port_word(*(const __u32 *)th, family);
	p->seq = bpf_ntohl(th->seq);
	p->flags = ((const __u8 *)th)[13];
}

/* Payload bounds: tot_len (or payload_len), not skb->len, which still counts
 * Ethernet padding at tc ingress; a zero IP length (BIG TCP) leaves skb->len
 * (counted from the data pointer, so the nh bytes of L2 header included). */
static __always_inline void sw_payload(struct sw_pkt *p, __u32 off, __u32 end, __u32 len)
{
	p->payload_off = off;
	if (!end || end > len)
		end = len;
	p->payload_len = end > off ? end - off : 0;
}

/*
 * The full parser, for what the linear one below cannot see: IPv6 extension
 * headers, headers past the linear data. Parses IPv4/IPv6 + TCP at nh by
 * bpf_skb_load_bytes. The IP version must agree with skb->protocol (the stack
 * drops a frame where they differ). Returns 0 for a TCP segment (p filled), -1
 * otherwise.
 */
static __always_inline int sw_parse_tcp(struct __sk_buff *skb, __u32 nh, struct sw_pkt *p)
{
	__u8 vbyte, nexthdr, family;
	__u32 l4, end = 0;
	struct tcphdr th;

	if (bpf_skb_load_bytes(skb, nh, &vbyte, 1))
		return -1;
	if (skb->protocol == bpf_htons(ETH_P_IP) && (vbyte >> 4) == 4) {
		struct iphdr ip;

		if (bpf_skb_load_bytes(skb, nh, &ip, sizeof(ip)))
			return -1;
		if (ip.protocol != IPPROTO_TCP || ip.ihl < 5)
			return -1;
		/* Only the first fragment carries the TCP header. */
		if (ip.frag_off & bpf_htons(0x1fff))
			return -1;
		family = AF_INET;
		sw_addrs4(p, &ip.saddr, &ip.daddr);
		l4 = nh + ip.ihl * 4;
		if (ip.tot_len)
			end = nh + bpf_ntohs(ip.tot_len);
	} else if (skb->protocol == bpf_htons(ETH_P_IPV6) && (vbyte >> 4) == 6) {
		struct ipv6hdr ip6;
		int i;

		if (bpf_skb_load_bytes(skb, nh, &ip6, sizeof(ip6)))
			return -1;
		family = AF_INET6;
		sw_addrs6(p, ip6.saddr.in6_u.u6_addr32, ip6.daddr.in6_u.u6_addr32);
		nexthdr = ip6.nexthdr;
		l4 = nh + sizeof(ip6);
		if (ip6.payload_len)
			end = l4 + bpf_ntohs(ip6.payload_len);
		for (i = 0; i < IPV6_MAX_EXT; i++) {
			__u8 ext[4];

			if (nexthdr == IPPROTO_TCP || !sw_ipv6_ext(nexthdr))
				break;
			if (bpf_skb_load_bytes(skb, l4, ext, sizeof(ext)))
				return -1;
			if (nexthdr == IPV6_FRAGMENT) {
				/* Fixed 8 bytes; at a non-zero offset, no TCP header. */
				if ((ext[2] << 8 | ext[3]) & 0xfff8)
					return -1;
				l4 += 8;
			} else if (nexthdr == IPV6_AUTH) {
				l4 += (ext[1] + 2) * 4; /* in 4-byte units, minus 2 */
			} else {
				l4 += (ext[1] + 1) * 8;
			}
			nexthdr = ext[0];
		}
		if (nexthdr != IPPROTO_TCP)
			return -1;
	} else {
		return -1;
	}

	if (bpf_skb_load_bytes(skb, l4, &th, sizeof(th)))
		return -1;
	if (th.doff < 5)
		return -1;
	sw_tcp_fields(p, &th, family);
	sw_payload(p, l4 + th.doff * 4, end, skb->len);
	return 0;
}

/* The IP and TCP headers of a segment, inside the linear data. */
struct sw_linear {
	void *l3;
	struct tcphdr *th;
	__u32 l4; /* offset of th from skb->data */
	__u8 family;
};

enum {
	SW_LIN_OTHER = 0, /* not a TCP segment */
	SW_LIN_TCP = 1,	  /* l3 and the fixed TCP header are readable */
	SW_LIN_SLOW = 2,  /* only sw_parse_tcp can tell */
};

/*
 * IPv6 extension headers in the linear data, by the rules of sw_parse_tcp:
 * *l4 comes in at the first one (next is its type) and goes out at the TCP
 * header. Headers that reach past the linear data (or past 4 KiB, a bound for
 * the verifier) are left to sw_parse_tcp.
 */
static __always_inline int sw_linear_ext(void *data, void *data_end, __u8 next, __u32 *l4)
{
	__u32 off = *l4;
	int i;

	for (i = 0; i < IPV6_MAX_EXT; i++) {
		__u8 *ext;

		if (!sw_ipv6_ext(next))
			return SW_LIN_OTHER;
		if (off > 4096)
			return SW_LIN_SLOW;
		ext = data + off;
		if ((void *)(ext + 4) > data_end)
			return SW_LIN_SLOW;
		if (next == IPV6_FRAGMENT) {
			if ((ext[2] << 8 | ext[3]) & 0xfff8)
				return SW_LIN_OTHER;
			off += 8;
		} else if (next == IPV6_AUTH) {
			off += (ext[1] + 2) * 4;
		} else {
			off += (ext[1] + 1) * 8;
		}
		next = ext[0];
		if (next == IPPROTO_TCP) {
			*l4 = off;
			return SW_LIN_TCP;
		}
	}
	return SW_LIN_OTHER;
}

/*
 * Where the TCP header is, by direct packet access and no helper call: every
 * packet of the hook comes here, and most leave after the port test that
 * follows. Goes by skb->protocol; headers that reach past the linear data are
 * left to sw_parse_tcp.
 */
static __always_inline int sw_linear_tcp(struct __sk_buff *skb, __u32 nh, struct sw_linear *h)
{
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	__u32 l4;

	if (skb->protocol == bpf_htons(ETH_P_IP)) {
		struct iphdr *ip = data + nh;

		if ((void *)(ip + 1) > data_end)
			return SW_LIN_SLOW;
		if (ip->protocol != IPPROTO_TCP)
			return SW_LIN_OTHER;
		l4 = (ip->ihl & 0xf) * 4;
		if (l4 < sizeof(*ip))
			return SW_LIN_OTHER;
		h->family = AF_INET;
		h->l3 = ip;
		h->th = (void *)ip + l4;
		h->l4 = nh + l4;
	} else if (skb->protocol == bpf_htons(ETH_P_IPV6)) {
		struct ipv6hdr *ip6 = data + nh;

		if ((void *)(ip6 + 1) > data_end)
			return SW_LIN_SLOW;
		l4 = nh + sizeof(*ip6);
		if (ip6->nexthdr != IPPROTO_TCP) {
			int r = sw_linear_ext(data, data_end, ip6->nexthdr, &l4);

			if (r != SW_LIN_TCP)
				return r;
		}
		h->family = AF_INET6;
		h->l3 = ip6;
		h->th = data + l4;
		h->l4 = l4;
	} else {
		return SW_LIN_OTHER;
	}
	if ((void *)(h->th + 1) > data_end)
		return SW_LIN_SLOW;
	return SW_LIN_TCP;
}

/*
 * The rest of the parse for a segment sw_linear_tcp located. The version must
 * agree with skb->protocol: sw_parse_tcp goes by the version, and the stack drops
 * a frame where the two differ. Returns 0 for a TCP segment (p filled), -1 otherwise.
 */
static __always_inline int sw_linear_fill(struct __sk_buff *skb, __u32 nh,
					  const struct sw_linear *h, struct sw_pkt *p)
{
	const struct tcphdr *th = h->th;
	__u32 end;

	if (th->doff < 5)
		return -1;
	/* h->family, not skb->protocol again: the verifier knows the first from
	 * the branch that checked the header's length. */
	if (h->family == AF_INET) {
		const struct iphdr *ip = h->l3;

		if (ip->version != 4 || (ip->frag_off & bpf_htons(0x1fff)))
			return -1;
		sw_addrs4(p, &ip->saddr, &ip->daddr);
		end = bpf_ntohs(ip->tot_len);
		end = end ? nh + end : 0;
	} else {
		const struct ipv6hdr *ip6 = h->l3;

		if (ip6->version != 6)
			return -1;
		sw_addrs6(p, ip6->saddr.in6_u.u6_addr32, ip6->daddr.in6_u.u6_addr32);
		end = bpf_ntohs(ip6->payload_len);
		end = end ? nh + sizeof(*ip6) + end : 0;
	}
	sw_tcp_fields(p, th, h->family);
	sw_payload(p, h->l4 + th->doff * 4, end, skb->len);
	return 0;
}

#endif
