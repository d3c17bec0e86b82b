// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* User stacks of calls into the C++ target, collected in a stack trace map. */
#include <pyprobe/common.h>

char LICENSE[] SEC("license") = "Dual BSD/GPL";

struct {
    __uint(type, BPF_MAP_TYPE_STACK_TRACE);
    __uint(max_entries, 64);
    __uint(key_size, sizeof(__u32));
    __uint(value_size, 16 * sizeof(__u64));
} stacks SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_HASH);
    __uint(max_entries, 64);
    __type(key, __u32);
    __type(value, __u64);
} stack_hits SEC(".maps");

SEC("uprobe")
int on_call(struct pt_regs *ctx)
{
    __u64 one = 1, *v;
    long id = bpf_get_stackid(ctx, &stacks, BPF_F_USER_STACK);
    __u32 key;

    if (id < 0)
        return 0;
    key = id;
    v = bpf_map_lookup_elem(&stack_hits, &key);
    if (v)
        __sync_fetch_and_add(v, 1);
    else
        bpf_map_update_elem(&stack_hits, &key, &one, BPF_ANY);
    return 0;
}
