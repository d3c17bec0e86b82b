// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* One program per socket attach kind: a socket filter, a SO_REUSEPORT selector, sk_lookup, sk_msg and
 * sk_skb redirects through a sockhash and a sockmap, and a flow dissector. Each counts its runs in a
 * global the tests read; the tests set the targets (ports, map keys) between open and load or in .bss. */
#include <pyprobe/common.h>
#include <bpf/bpf_endian.h>

char LICENSE[] SEC("license") = "Dual BSD/GPL";

#define ETH_P_IP 0x0800
#define IPPROTO_UDP_ 17
#define IPPROTO_TCP_ 6

__u64 filter_seen, filter_kept;
__u64 reuseport_seen;
__u32 reuseport_target;
__u64 lookup_steered;
__u16 lookup_port;
__u64 msg_seen, skb_seen;
__u64 dissected;
long dbg_err; __u32 dbg_ihl;

/* Socket filter: keeps the UDP datagrams whose payload starts with 'K' (the socket's data starts at
 * the UDP header), drops the rest. */
SEC("socket")
int keep_k(struct __sk_buff *skb)
{
    char first = 0;

    __sync_fetch_and_add(&filter_seen, 1);
    if (bpf_skb_load_bytes(skb, 8, &first, 1) || first != 'K')
        return 0;
    __sync_fetch_and_add(&filter_kept, 1);
    return skb->len;
}

/* SO_REUSEPORT: every datagram or connection of the group goes to the socket at reuseport_target. */
struct {
    __uint(type, BPF_MAP_TYPE_REUSEPORT_SOCKARRAY);
    __uint(max_entries, 4);
    __type(key, __u32);
    __type(value, __u64);
} reuseport_socks SEC(".maps");

SEC("sk_reuseport")
int pick_socket(struct sk_reuseport_md *md)
{
    __u32 key = reuseport_target;

    __sync_fetch_and_add(&reuseport_seen, 1);
    if (bpf_sk_select_reuseport(md, &reuseport_socks, &key, 0))
        return SK_DROP;
    return SK_PASS;
}

/* sk_lookup: a connection to lookup_port, where nobody listens, goes to the socket at key 0. */
struct {
    __uint(type, BPF_MAP_TYPE_SOCKMAP);
    __uint(max_entries, 2);
    __type(key, __u32);
    __type(value, __u64);
} lookup_socks SEC(".maps");

SEC("sk_lookup")
int steer(struct bpf_sk_lookup *ctx)
{
    __u32 key = 0;
    struct bpf_sock *sk;
    long err;

    if (ctx->local_port != lookup_port)
        return SK_PASS;
    sk = bpf_map_lookup_elem(&lookup_socks, &key);
    if (!sk)
        return SK_PASS;
    err = bpf_sk_assign(ctx, sk, 0);
    bpf_sk_release(sk);
    if (!err)
        __sync_fetch_and_add(&lookup_steered, 1);
    return err ? SK_DROP : SK_PASS;
}

/* sk_msg: what a socket of the hash sends arrives in the receive queue of the socket at key 1. */
struct {
    __uint(type, BPF_MAP_TYPE_SOCKHASH);
    __uint(max_entries, 4);
    __type(key, __u32);
    __type(value, __u64);
} msg_socks SEC(".maps");

SEC("sk_msg")
int msg_redirect(struct sk_msg_md *msg)
{
    __u32 key = 1;

    __sync_fetch_and_add(&msg_seen, 1);
    return bpf_msg_redirect_hash(msg, &msg_socks, &key, BPF_F_INGRESS);
}

/* sk_skb: what a socket of the map receives goes to the receive queue of the socket at key 1. */
struct {
    __uint(type, BPF_MAP_TYPE_SOCKMAP);
    __uint(max_entries, 2);
    __type(key, __u32);
    __type(value, __u64);
} skb_socks SEC(".maps");

SEC("sk_skb/stream_parser")
int skb_parser(struct __sk_buff *skb)
{
    return skb->len;
}

SEC("sk_skb/stream_verdict")
int skb_verdict(struct __sk_buff *skb)
{
    __sync_fetch_and_add(&skb_seen, 1);
    return bpf_sk_redirect_map(skb, &skb_socks, 1, BPF_F_INGRESS);
}

/* Flow dissector: IPv4 with TCP or UDP ports; anything else is left to the kernel's own dissector.
 * Headers are read in place (BPF_PROG_RUN gives no skb, so bpf_skb_load_bytes cannot read there) and
 * copied with bpf_skb_load_bytes when they are not in the linear data. */
static __always_inline void *header(struct __sk_buff *skb, __u16 off, __u16 size, void *buf)
{
    void *data = (void *)(long)skb->data;
    void *data_end = (void *)(long)skb->data_end;

    if (data + off + size <= data_end)
        return data + off;
    if (bpf_skb_load_bytes(skb, off, buf, size))
        return NULL;
    return buf;
}

SEC("flow_dissector")
int dissect(struct __sk_buff *skb)
{
    struct bpf_flow_keys *keys = skb->flow_keys;
    struct iphdr iph_buf, *iph;
    __be16 ports_buf[2], *ports;
    __u16 nhoff = keys->nhoff, thoff;

    __sync_fetch_and_add(&dissected, 1);
    if (keys->n_proto != bpf_htons(ETH_P_IP))
        return BPF_FLOW_DISSECTOR_CONTINUE;
    if (nhoff > 512)
        return BPF_DROP;
    iph = header(skb, nhoff, sizeof(*iph), &iph_buf);
    if (!iph || iph->ihl < 5)
        return BPF_DROP;
    thoff = nhoff + iph->ihl * 4;
    keys->addr_proto = ETH_P_IP;
    keys->ipv4_src = iph->saddr;
    keys->ipv4_dst = iph->daddr;
    keys->ip_proto = iph->protocol;
    keys->is_frag = 0;
    keys->thoff = thoff;
    if (iph->protocol == IPPROTO_UDP_ || iph->protocol == IPPROTO_TCP_) {
        ports = header(skb, thoff, sizeof(ports_buf), ports_buf);
        if (!ports)
            return BPF_DROP;
        keys->sport = ports[0];
        keys->dport = ports[1];
    }
    return BPF_OK;
}
