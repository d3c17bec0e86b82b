// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* Network programs the tests drive with real frames: tc/tcx filters that count and drop UDP to one
 * port, two tcx programs that record their order, a netfilter hook, XDP redirects through a devmap
 * and a cpumap, and an XDP counter at the far end of a redirect. */
#include <pyprobe/common.h>
#include <bpf/bpf_endian.h>

char LICENSE[] SEC("license") = "Dual BSD/GPL";

#define ETH_P_IP 0x0800
#define IPPROTO_UDP_ 17
#define NF_DROP 0
#define NF_ACCEPT 1

enum {
    TC_DROPPED,     /* UDP to drop_port seen and dropped by the tc/tcx filters */
    TC_PASSED,      /* UDP to pass_port seen and passed */
    NF_DROPPED,
    NF_PASSED,
    XDP_REDIRECTED, /* UDP to redirect_port sent on through tx_ports */
    XDP_ARRIVED,    /* ... and seen by the program at the far end */
    CPU_REDIRECTED,
    NETKIT_DROPPED,
    ORDER_SEQ,
    ORDER_FIRST,    /* the sequence number order_a / order_b got on their first packet */
    ORDER_SECOND,
    LPM_DROPPED,    /* frames from a source in the blocked LPM trie */
    DEVMAP_PROG,    /* frames the devmap's own program saw */
    NSLOTS,
};

struct {
    __uint(type, BPF_MAP_TYPE_ARRAY);
    __uint(max_entries, NSLOTS);
    __type(key, __u32);
    __type(value, __u64);
} counts SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_DEVMAP);
    __uint(max_entries, 4);
    __type(key, __u32);
    __type(value, struct bpf_devmap_val); /* an ifindex and a program to run there (Linux 5.8) */
} tx_ports SEC(".maps");

struct ipv4_prefix {
    __u32 prefixlen;
    __u32 addr; /* network byte order */
};

struct {
    __uint(type, BPF_MAP_TYPE_LPM_TRIE);
    __uint(max_entries, 16);
    __uint(map_flags, BPF_F_NO_PREALLOC);
    __type(key, struct ipv4_prefix);
    __type(value, __u32);
} blocked SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_CPUMAP);
    __uint(max_entries, 2);
    __type(key, __u32);
    __type(value, __u32);
} cpus SEC(".maps");

const volatile __u16 drop_port = 0;
const volatile __u16 pass_port = 0;
const volatile __u16 redirect_port = 0;

static __always_inline __u64 *slot(__u32 key)
{
    return bpf_map_lookup_elem(&counts, &key);
}

static __always_inline void add(__u32 key)
{
    __u64 *c = slot(key);

    if (c)
        __sync_fetch_and_add(c, 1);
}

/* The destination port (host order) of an Ethernet + IPv4 + UDP frame, or 0. */
static __always_inline __u16 udp_dport(void *data, void *data_end)
{
    struct ethhdr *eth = data;
    struct iphdr *ip = data + sizeof(*eth);
    struct udphdr *udp;

    if ((void *)(ip + 1) > data_end || eth->h_proto != bpf_htons(ETH_P_IP) || ip->protocol != IPPROTO_UDP_)
        return 0;
    udp = (void *)ip + ip->ihl * 4;
    if ((void *)(udp + 1) > data_end)
        return 0;
    return bpf_ntohs(udp->dest);
}

static __always_inline int filter(struct __sk_buff *skb)
{
    __u16 port = udp_dport((void *)(long)skb->data, (void *)(long)skb->data_end);

    if (port && port == drop_port) {
        add(TC_DROPPED);
        return TCX_DROP; /* TC_ACT_SHOT */
    }
    if (port && port == pass_port)
        add(TC_PASSED);
    return TCX_PASS; /* TC_ACT_OK */
}

SEC("tcx/ingress")
int tcx_in(struct __sk_buff *skb)
{
    return filter(skb);
}

SEC("tc")
int tc_any(struct __sk_buff *skb)
{
    return filter(skb);
}

/* Drops IPv4 frames whose source lies in a prefix of `blocked` (the kernel's longest-prefix match). */
SEC("tc")
int tc_blocklist(struct __sk_buff *skb)
{
    void *data = (void *)(long)skb->data, *data_end = (void *)(long)skb->data_end;
    struct ethhdr *eth = data;
    struct iphdr *ip = data + sizeof(*eth);
    struct ipv4_prefix key = {.prefixlen = 32};

    if ((void *)(ip + 1) > data_end || eth->h_proto != bpf_htons(ETH_P_IP))
        return TCX_PASS;
    key.addr = ip->saddr;
    if (!bpf_map_lookup_elem(&blocked, &key))
        return TCX_PASS;
    add(LPM_DROPPED);
    return TCX_DROP;
}

static __always_inline int order(struct __sk_buff *skb, __u32 which)
{
    __u16 port = udp_dport((void *)(long)skb->data, (void *)(long)skb->data_end);
    __u64 *seq = slot(ORDER_SEQ), *mine = slot(which);

    if (port && port == pass_port && seq && mine && *mine == 0)
        *mine = __sync_fetch_and_add(seq, 1) + 1;
    return TCX_NEXT;
}

SEC("tcx/ingress")
int order_a(struct __sk_buff *skb)
{
    return order(skb, ORDER_FIRST);
}

SEC("tcx/ingress")
int order_b(struct __sk_buff *skb)
{
    return order(skb, ORDER_SECOND);
}

SEC("netkit/peer")
int netkit_filter(struct __sk_buff *skb)
{
    __u16 port = udp_dport((void *)(long)skb->data, (void *)(long)skb->data_end);

    if (port && port == drop_port) {
        add(NETKIT_DROPPED);
        return TCX_DROP;
    }
    return TCX_NEXT;
}

SEC("netfilter")
int nf_filter(struct bpf_nf_ctx *ctx)
{
    struct sk_buff *skb = ctx->skb;
    unsigned char *head = BPF_CORE_READ(skb, head);
    __u16 nh = BPF_CORE_READ(skb, network_header);
    struct iphdr ip;
    struct udphdr udp;
    __u16 port;

    if (bpf_probe_read_kernel(&ip, sizeof(ip), head + nh) || ip.version != 4 || ip.protocol != IPPROTO_UDP_)
        return NF_ACCEPT;
    if (bpf_probe_read_kernel(&udp, sizeof(udp), head + nh + ip.ihl * 4))
        return NF_ACCEPT;
    port = bpf_ntohs(udp.dest);
    if (port == drop_port) {
        add(NF_DROPPED);
        return NF_DROP;
    }
    if (port == pass_port)
        add(NF_PASSED);
    return NF_ACCEPT;
}

SEC("xdp")
int xdp_redirect_dev(struct xdp_md *ctx)
{
    __u16 port = udp_dport((void *)(long)ctx->data, (void *)(long)ctx->data_end);

    if (!port || port != redirect_port)
        return XDP_PASS;
    add(XDP_REDIRECTED);
    return bpf_redirect_map(&tx_ports, 0, XDP_DROP);
}

SEC("xdp")
int xdp_redirect_cpu(struct xdp_md *ctx)
{
    __u16 port = udp_dport((void *)(long)ctx->data, (void *)(long)ctx->data_end);

    if (!port || port != redirect_port)
        return XDP_PASS;
    add(CPU_REDIRECTED);
    return bpf_redirect_map(&cpus, 0, XDP_DROP);
}

SEC("xdp/devmap")
int devmap_prog(struct xdp_md *ctx)
{
    add(DEVMAP_PROG);
    return XDP_PASS;
}

SEC("xdp")
int xdp_sink(struct xdp_md *ctx)
{
    __u16 port = udp_dport((void *)(long)ctx->data, (void *)(long)ctx->data_end);

    if (port && port == redirect_port) {
        add(XDP_ARRIVED);
        return XDP_DROP;
    }
    return XDP_PASS;
}
