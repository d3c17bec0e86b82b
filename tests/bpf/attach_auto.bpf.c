// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* Auto-attach from SEC names: a uprobe on utest_sub by its bare demangled name and a uretprobe
 * on its mangled symbol, in a copy of the utest target the test puts at a fixed path. */
#include <pyprobe/common.h>

char LICENSE[] SEC("license") = "Dual BSD/GPL";

#define UTEST_COPY "/tmp/pyprobe-tests/utest"

struct sub_hit {
    __u64 calls;
    __s64 a;
    __s64 b;
    __s64 ret;
    __u64 returns;
};

struct {
    __uint(type, BPF_MAP_TYPE_ARRAY);
    __uint(max_entries, 1);
    __type(key, __u32);
    __type(value, struct sub_hit);
} sub_hits SEC(".maps");

SEC("uprobe/" UTEST_COPY ":utest_sub")
int BPF_UPROBE(sub_entry, int a, int b)
{
    __u32 key = 0;
    struct sub_hit *h = bpf_map_lookup_elem(&sub_hits, &key);

    if (h) {
        __sync_fetch_and_add(&h->calls, 1);
        h->a = a;
        h->b = b;
    }
    return 0;
}

SEC("uretprobe/" UTEST_COPY ":_Z9utest_subii")
int BPF_URETPROBE(sub_return, int ret)
{
    __u32 key = 0;
    struct sub_hit *h = bpf_map_lookup_elem(&sub_hits, &key);

    if (h) {
        __sync_fetch_and_add(&h->returns, 1);
        h->ret = ret;
    }
    return 0;
}
