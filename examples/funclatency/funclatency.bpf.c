// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* funclatency: a log2 histogram of a user function's latency, from a uprobe and a uretprobe.
 *
 * The entry probe stores the time per thread, keyed by bpf_get_current_pid_tgid()
 * (tgid in the upper 32 bits, thread id in the lower: calls in different threads
 * do not mix). The return probe takes that time back and counts the duration in
 * slot log2(ns) of an array map that user space reads once at the end.
 */
#include <pyprobe/common.h>

char LICENSE[] SEC("license") = "Dual BSD/GPL";

#define SLOTS 64

struct {
    __uint(type, BPF_MAP_TYPE_HASH);
    __uint(max_entries, 10240);
    __type(key, __u64);   /* pid_tgid */
    __type(value, __u64); /* entry time, ns */
} starts SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_ARRAY);
    __uint(max_entries, SLOTS);
    __type(key, __u32);   /* slot: log2 of the latency in ns */
    __type(value, __u64); /* calls */
} hist SEC(".maps");

/* floor(log2(v)) for v > 0, without loops (the verifier prefers straight code). */
static __always_inline __u32 log2_u64(__u64 v)
{
    __u32 r = 0, shift;

    shift = (v > 0xFFFFFFFFULL) << 5; v >>= shift; r |= shift;
    shift = (v > 0xFFFF) << 4; v >>= shift; r |= shift;
    shift = (v > 0xFF) << 3; v >>= shift; r |= shift;
    shift = (v > 0xF) << 2; v >>= shift; r |= shift;
    shift = (v > 0x3) << 1; v >>= shift; r |= shift;
    return r | (__u32)(v >> 1);
}

SEC("uprobe")
int BPF_UPROBE(func_entry)
{
    __u64 id = bpf_get_current_pid_tgid(), now = bpf_ktime_get_ns();

    bpf_map_update_elem(&starts, &id, &now, BPF_ANY);
    return 0;
}

SEC("uretprobe")
int BPF_URETPROBE(func_return)
{
    __u64 id = bpf_get_current_pid_tgid(), *start, *count;
    __u32 slot;

    start = bpf_map_lookup_elem(&starts, &id);
    if (!start)
        return 0; /* entered before the probes were attached */
    slot = log2_u64(bpf_ktime_get_ns() - *start);
    bpf_map_delete_elem(&starts, &id);
    count = bpf_map_lookup_elem(&hist, &slot);
    if (count)
        __sync_fetch_and_add(count, 1);
    return 0;
}
