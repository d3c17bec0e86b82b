// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* funclatency: a log2 histogram of each traced function's latency, kept in a
 * BPF map (one struct fl_hist per function, indexed by the attach cookie).
 * Entry times sit on a per-thread stack so nested and recursive calls pair
 * with their own return. Nothing crosses to user space per call. */
#include <pyprobe/common.h>
#include "funclatency.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

struct {
    __uint(type, BPF_MAP_TYPE_ARRAY);
    __uint(max_entries, FL_MAX_FUNCS);
    __type(key, __u32);
    __type(value, struct fl_hist);
} hists SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_HASH);
    __uint(max_entries, 16384);
    __type(key, __u32);
    __type(value, __u32);
} depths SEC(".maps");

/* (thread id << 32 | depth) -> entry time */
struct {
    __uint(type, BPF_MAP_TYPE_HASH);
    __uint(max_entries, 65536);
    __type(key, __u64);
    __type(value, __u64);
} starts SEC(".maps");

static __always_inline __u32 log2l(__u64 v)
{
    __u32 r = 0;

#pragma unroll
    for (int shift = 32; shift > 0; shift >>= 1) {
        if (v >= (1ull << shift)) {
            v >>= shift;
            r += shift;
        }
    }
    return r;
}

static __always_inline int on_entry(void)
{
    __u32 tid = (__u32)bpf_get_current_pid_tgid(), one = 1, d;
    __u32 *depth = bpf_map_lookup_elem(&depths, &tid);
    __u64 now = bpf_ktime_get_ns();

    if (!depth) {
        if (bpf_map_update_elem(&depths, &tid, &one, BPF_ANY))
            return 0;
        d = 0;
    } else {
        d = *depth;
        *depth = d + 1;  /* only this thread touches its entry */
    }
    if (d >= FL_MAX_DEPTH)
        return 0;
    __u64 key = (__u64)tid << 32 | d;

    bpf_map_update_elem(&starts, &key, &now, BPF_ANY);
    return 0;
}

static __always_inline int on_return(struct pt_regs *ctx)
{
    __u64 now = bpf_ktime_get_ns();
    __u32 tid = (__u32)bpf_get_current_pid_tgid();
    __u32 cookie = bpf_get_attach_cookie(ctx);
    __u32 *depth = bpf_map_lookup_elem(&depths, &tid);

    if (!depth || *depth == 0)
        return 0;
    __u32 d = *depth - 1;

        *depth = d;
    __u64 key = (__u64)tid << 32 | d;

    if (d == 0)
        bpf_map_delete_elem(&depths, &tid);
    if (d >= FL_MAX_DEPTH)
        return 0;
    __u64 *start = bpf_map_lookup_elem(&starts, &key);

    if (!start)
        return 0;
    __u64 delta = now - *start;

    bpf_map_delete_elem(&starts, &key);
    struct fl_hist *h = bpf_map_lookup_elem(&hists, &cookie);

    if (!h)
        return 0;
    __u32 slot = log2l(delta);

    if (slot >= FL_SLOTS)
        slot = FL_SLOTS - 1;
    __sync_fetch_and_add(&h->slots[slot], 1);
    __sync_fetch_and_add(&h->count, 1);
    __sync_fetch_and_add(&h->total_ns, delta);
    return 0;
}

SEC("uprobe")
int funclatency_entry(struct pt_regs *ctx)
{
    return on_entry();
}

SEC("uretprobe")
int funclatency_return(struct pt_regs *ctx)
{
    return on_return(ctx);
}

SEC("uprobe.multi")
int funclatency_entry_multi(struct pt_regs *ctx)
{
    return on_entry();
}

SEC("uretprobe.multi")
int funclatency_return_multi(struct pt_regs *ctx)
{
    return on_return(ctx);
}
