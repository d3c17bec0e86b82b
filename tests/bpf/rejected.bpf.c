// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* An object the verifier must reject: a map value used without a NULL check. */
#include <pyprobe/common.h>

char LICENSE[] SEC("license") = "Dual BSD/GPL";

struct {
    __uint(type, BPF_MAP_TYPE_HASH);
    __uint(max_entries, 1);
    __type(key, __u32);
    __type(value, __u64);
} values SEC(".maps");

SEC("syscall")
int fine(void *ctx)
{
    return 0;
}

SEC("syscall")
int unchecked(void *ctx)
{
    __u32 key = 0;
    __u64 *v = bpf_map_lookup_elem(&values, &key);

    return *v; /* no NULL check: "invalid mem access 'map_value_or_null'" */
}
