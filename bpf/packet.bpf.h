/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * TCP/IP header parsing shared by the cgroup_skb and tc programs. Helper-free
 * except for bpf_skb_load_bytes, so it is exercised on crafted packets with
 * BPF_PROG_TEST_RUN. Offsets are from the start of the network header (nh).
 */
#ifndef SMTPWATCH_PACKET_BPF_H
#define SMTPWATCH_PACKET_BPF_H

#define ETH_P_IP 0x0800
#define ETH_P_IPV6 0x86DD
#define AF_INET 2
#define AF_INET6 10
#define IPPROTO_TCP 6
#define TCP_FIN 0x01
#define TCP_SYN 0x02
#define TCP_RST 0x04
#define TCP_ACK 0x10
#define IPV6_MAX_EXT 4

struct sw_pkt {
	__u8 saddr[16];
	__u8 daddr[16];
	__u16 sport; /* network order */
	__u16 dport;
	__u32 seq;   /* host order */
	__u32 payload_off; /* from nh */
	__u32 payload_len;
	__u8 family;
	__u8 flags; /* TCP flags byte */
};

/* Parse IPv4/IPv6 + TCP at nh. Returns 0 for a TCP segment, -1 otherwise. */
static __always_inline int sw_parse_tcp(struct __sk_buff *skb, __u32 nh, struct sw_pkt *p)
{
	__u8 vbyte, nexthdr;
	__u32 l4, end = 0, len = skb->len;
	struct tcphdr th;

	if (bpf_skb_load_bytes(skb, nh, &vbyte, 1))
		return -1;
	if ((vbyte >> 4) == 4) {
		struct iphdr ip;

		if (bpf_skb_load_bytes(skb, nh, &ip, sizeof(ip)))
			return -1;
		if (ip.protocol != IPPROTO_TCP || ip.ihl < 5)
			return -1;
		/* Only the first fragment carries the TCP header. */
		if (ip.frag_off & bpf_htons(0x1fff))
			return -1;
		p->family = AF_INET;
		__builtin_memset(p->saddr, 0, sizeof(p->saddr));
		__builtin_memset(p->daddr, 0, sizeof(p->daddr));
		__builtin_memcpy(p->saddr, &ip.saddr, 4);
		__builtin_memcpy(p->daddr, &ip.daddr, 4);
		l4 = nh + ip.ihl * 4;
		/* tot_len, not skb->len: Ethernet padding is still there at tc ingress. */
		if (ip.tot_len)
			end = nh + bpf_ntohs(ip.tot_len);
	} else if ((vbyte >> 4) == 6) {
		struct ipv6hdr ip6;
		int i;

		if (bpf_skb_load_bytes(skb, nh, &ip6, sizeof(ip6)))
			return -1;
		p->family = AF_INET6;
		__builtin_memcpy(p->saddr, &ip6.saddr, 16);
		__builtin_memcpy(p->daddr, &ip6.daddr, 16);
		nexthdr = ip6.nexthdr;
		l4 = nh + sizeof(ip6);
		if (ip6.payload_len)
			end = l4 + bpf_ntohs(ip6.payload_len);
		/* Extension headers: hop-by-hop, routing, destination options, fragment. */
		for (i = 0; i < IPV6_MAX_EXT; i++) {
			__u8 ext[2];

			if (nexthdr == IPPROTO_TCP)
				break;
			if (nexthdr == 44) { /* fragment: fixed 8 bytes; only offset 0 has TCP */
				__be16 fo;

				if (bpf_skb_load_bytes(skb, l4, ext, 2) ||
				    bpf_skb_load_bytes(skb, l4 + 2, &fo, 2))
					return -1;
				if (fo & bpf_htons(0xfff8))
					return -1;
				nexthdr = ext[0];
				l4 += 8;
				continue;
			}
			if (nexthdr != 0 && nexthdr != 43 && nexthdr != 60)
				return -1;
			if (bpf_skb_load_bytes(skb, l4, ext, 2))
				return -1;
			nexthdr = ext[0];
			l4 += (ext[1] + 1) * 8;
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
	p->sport = th.source;
	p->dport = th.dest;
	p->seq = bpf_ntohl(th.seq);
	p->flags = ((__u8 *)&th)[13];
	p->payload_off = l4 + th.doff * 4;
	/* skb->len counts from the data pointer (nh bytes of L2 header come first);
	 * a zero IP length (BIG TCP) leaves it as the only bound. */
	if (!end || end > len)
		end = len;
	p->payload_len = end > p->payload_off ? end - p->payload_off : 0;
	return 0;
}

#endif
