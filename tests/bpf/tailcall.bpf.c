// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* Tail calls through a prog array, driven by BPF_PROG_RUN on an XDP program. */
#include <pyprobe/common.h>

char LICENSE[] SEC("license") = "Dual BSD/GPL";

struct {
    __uint(type, BPF_MAP_TYPE_PROG_ARRAY);
    __uint(max_entries, 4);
    __type(key, __u32);
    __type(value, __u32);
} jump SEC(".maps");

SEC("xdp")
int entry(struct xdp_md *ctx)
{
    void *data = (void *)(long)ctx->data, *end = (void *)(long)ctx->data_end;
    __u8 slot;

    if (data + 1 > end)
        return XDP_ABORTED;
    slot = *(__u8 *)data;
    bpf_tail_call(ctx, &jump, slot & 3);
    return 100; /* no program in that slot */
}

SEC("xdp")
int target_one(struct xdp_md *ctx)
{
    return 101;
}

SEC("xdp")
int target_two(struct xdp_md *ctx)
{
    return 102;
}
