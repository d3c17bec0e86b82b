// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* tailcall: an XDP program that hands each packet to a per-protocol program through a prog array.
 *
 * classify() reads the Ethernet type and bpf_tail_call()s the program in the
 * matching slot of `handlers`; a tail call replaces the running program (it does
 * not return), so the code after it runs only when the slot is empty. User space
 * fills the slots (`skel.maps.handlers[SLOT_IPV4] = skel.progs.handle_ipv4`) and
 * can swap them while the entry program stays attached.
 */
#include <pyprobe/common.h>
#include <bpf/bpf_endian.h>
#include "tailcall.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

#define ETH_P_IP 0x0800
#define ETH_P_IPV6 0x86DD
#define ETH_P_ARP 0x0806

struct {
    __uint(type, BPF_MAP_TYPE_PROG_ARRAY);
    __uint(max_entries, SLOTS);
    __type(key, __u32);
    __type(value, __u32);
} handlers SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_ARRAY);
    __uint(max_entries, SLOTS);
    __type(key, __u32);   /* enum slot */
    __type(value, __u64); /* packets */
} packets SEC(".maps");

static __always_inline void count(__u32 slot)
{
    __u64 *n = bpf_map_lookup_elem(&packets, &slot);

    if (n)
        __sync_fetch_and_add(n, 1);
}

SEC("xdp")
int classify(struct xdp_md *ctx)
{
    void *data = (void *)(long)ctx->data, *end = (void *)(long)ctx->data_end;
    struct ethhdr *eth = data;
    __u32 slot;

    if ((void *)(eth + 1) > end)
        return XDP_DROP;
    switch (bpf_ntohs(eth->h_proto)) {
    case ETH_P_IP: slot = SLOT_IPV4; break;
    case ETH_P_IPV6: slot = SLOT_IPV6; break;
    case ETH_P_ARP: slot = SLOT_ARP; break;
    default: return XDP_PASS;
    }
    bpf_tail_call(ctx, &handlers, slot);
    count(SLOT_UNHANDLED); /* reached only when the slot is empty */
    return XDP_PASS;
}

SEC("xdp")
int handle_ipv4(struct xdp_md *ctx)
{
    count(SLOT_IPV4);
    return XDP_PASS;
}

SEC("xdp")
int handle_ipv6(struct xdp_md *ctx)
{
    count(SLOT_IPV6);
    return XDP_DROP; /* this host takes no IPv6 */
}

SEC("xdp")
int handle_arp(struct xdp_md *ctx)
{
    count(SLOT_ARP);
    return XDP_TX;
}
