// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* utest-latency: latency of utest_add() in the bundled target as a log2 histogram (uprobe + uretprobe).
 *
 * Bucket i counts calls that took up to 2^i ns; the key one past the last bucket
 * (MAX_SLOT + 1) holds the sum of all latencies, which the exporter reports as the
 * histogram's sum (ebpf_exporter's convention). UTEST_PATH is the target's absolute
 * path, set by the build (-DUTEST_PATH=\"...\").
 */
#include <pyprobe/common.h>

#ifndef UTEST_PATH
#define UTEST_PATH "/usr/local/bin/utest"
#endif
#define MAX_SLOT 26

char LICENSE[] SEC("license") = "Dual BSD/GPL";

struct {
    __uint(type, BPF_MAP_TYPE_HASH);
    __uint(max_entries, 1024);
    __type(key, u32);
    __type(value, u64);
} start SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_ARRAY);
    __uint(max_entries, MAX_SLOT + 2);
    __type(key, u32);
    __type(value, u64);
} utest_add_latency_seconds SEC(".maps");

SEC("uprobe/" UTEST_PATH ":utest_add")
int BPF_UPROBE(utest_add_enter)
{
    u32 tid = (u32)bpf_get_current_pid_tgid();
    u64 now = bpf_ktime_get_ns();

    bpf_map_update_elem(&start, &tid, &now, BPF_ANY);
    return 0;
}

SEC("uretprobe/" UTEST_PATH ":utest_add")
int BPF_URETPROBE(utest_add_exit)
{
    u32 tid = (u32)bpf_get_current_pid_tgid();
    u64 *began = bpf_map_lookup_elem(&start, &tid), delta, *slot_count, *sum;
    u32 slot = 0, sum_slot = MAX_SLOT + 1;

    if (!began)
        return 0;
    delta = bpf_ktime_get_ns() - *began;
    bpf_map_delete_elem(&start, &tid);
    while (slot < MAX_SLOT && (1ULL << slot) < delta)
        slot++;
    slot_count = bpf_map_lookup_elem(&utest_add_latency_seconds, &slot);
    if (slot_count)
        __sync_fetch_and_add(slot_count, 1);
    sum = bpf_map_lookup_elem(&utest_add_latency_seconds, &sum_slot);
    if (sum)
        __sync_fetch_and_add(sum, delta);
    return 0;
}
