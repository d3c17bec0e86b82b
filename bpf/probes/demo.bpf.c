// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* The foundation demo: records the last arguments and return value of each
 * traced two-argument function. The attach cookie is the function's slot. */
#include <pyprobe/common.h>
#include "demo.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

struct {
    __uint(type, BPF_MAP_TYPE_ARRAY);
    __uint(max_entries, DEMO_MAX_FUNCS);
    __type(key, __u32);
    __type(value, struct demo_call);
} calls SEC(".maps");

SEC("uprobe")
int BPF_UPROBE(demo_entry, long long a, long long b)
{
    __u32 slot = bpf_get_attach_cookie(ctx);
    struct demo_call *c = bpf_map_lookup_elem(&calls, &slot);

    if (!c)
        return 0;
    c->a = (int)a;
    c->b = (int)b;
    __sync_fetch_and_add(&c->calls, 1);
    return 0;
}

SEC("uretprobe")
int BPF_URETPROBE(demo_return, long long ret)
{
    __u32 slot = bpf_get_attach_cookie(ctx);
    struct demo_call *c = bpf_map_lookup_elem(&calls, &slot);

    if (!c)
        return 0;
    c->ret = (int)ret;
    __sync_fetch_and_add(&c->returns, 1);
    return 0;
}
