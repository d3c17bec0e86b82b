// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* usdt-ticks: the usdt_target's pyprobe_test:tick probe counted by its `small` argument modulo 3.
 *
 * USDT_TARGET_PATH is the target's absolute path, set by the build.
 */
#include <pyprobe/common.h>
#include <bpf/usdt.bpf.h>

#ifndef USDT_TARGET_PATH
#define USDT_TARGET_PATH "/usr/local/bin/usdt_target"
#endif

char LICENSE[] SEC("license") = "Dual BSD/GPL";

struct {
    __uint(type, BPF_MAP_TYPE_HASH);
    __uint(max_entries, 16);
    __type(key, u32);
    __type(value, u64);
} usdt_ticks_total SEC(".maps");

SEC("usdt/" USDT_TARGET_PATH ":pyprobe_test:tick")
int BPF_USDT(tick, long i, int small, long big)
{
    u32 key = (u32)small % 3;
    u64 one = 1, *count = bpf_map_lookup_elem(&usdt_ticks_total, &key);

    if (count)
        __sync_fetch_and_add(count, 1);
    else
        bpf_map_update_elem(&usdt_ticks_total, &key, &one, BPF_NOEXIST);
    return 0;
}
