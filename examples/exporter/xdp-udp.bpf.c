// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* xdp-udp: IPv4 UDP packets arriving on an interface, by destination port (xdp/IFACE section).
 *
 * ebpf_exporter's form: the section names the interface, the exporter attaches the
 * program there. XDP_IFACE is the interface (default lo; the build may set another).
 */
#include <pyprobe/common.h>
#include <bpf/bpf_endian.h>

#ifndef XDP_IFACE
#define XDP_IFACE "lo"
#endif
#define ETH_P_IP 0x0800
#define IPPROTO_UDP_NUM 17

char LICENSE[] SEC("license") = "Dual BSD/GPL";

struct port_key {
    u16 port;
    u16 pad;
};

struct {
    __uint(type, BPF_MAP_TYPE_HASH);
    __uint(max_entries, 1024);
    __type(key, struct port_key);
    __type(value, u64);
} udp_packets_total SEC(".maps");

SEC("xdp/" XDP_IFACE)
int count_udp(struct xdp_md *ctx)
{
    void *data = (void *)(long)ctx->data, *end = (void *)(long)ctx->data_end;
    struct ethhdr *eth = data;
    struct iphdr *ip = data + sizeof(*eth);
    struct udphdr *udp;
    struct port_key key = {};
    u64 one = 1, *count;

    if ((void *)(ip + 1) > end || eth->h_proto != bpf_htons(ETH_P_IP) || ip->protocol != IPPROTO_UDP_NUM)
        return XDP_PASS;
    udp = (void *)ip + ip->ihl * 4;
    if ((void *)(udp + 1) > end)
        return XDP_PASS;
    key.port = bpf_ntohs(udp->dest);
    count = bpf_map_lookup_elem(&udp_packets_total, &key);
    if (count)
        __sync_fetch_and_add(count, 1);
    else
        bpf_map_update_elem(&udp_packets_total, &key, &one, BPF_NOEXIST);
    return XDP_PASS;
}
