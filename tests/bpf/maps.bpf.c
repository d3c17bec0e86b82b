// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* Maps of every common type, typed through BTF, for the map tests; globals for the globals tests. */
#include <pyprobe/common.h>
#include "maps.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

struct {
    __uint(type, BPF_MAP_TYPE_HASH);
    __uint(max_entries, 128);
    __type(key, __u32);
    __type(value, struct value16);
} hash SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_HASH);
    __uint(max_entries, 16);
    __type(key, struct point);
    __type(value, struct rich);
} rich_hash SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_LRU_HASH);
    __uint(max_entries, 32);
    __type(key, __u64);
    __type(value, __u64);
} lru SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_ARRAY);
    __uint(max_entries, 8);
    __type(key, __u32);
    __type(value, __u64);
} array SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_PERCPU_HASH);
    __uint(max_entries, 16);
    __type(key, __u32);
    __type(value, __u32);
} pcpu_hash SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
    __uint(max_entries, 4);
    __type(key, __u32);
    __type(value, struct point);
} pcpu_array SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_LRU_PERCPU_HASH);
    __uint(max_entries, 16);
    __type(key, __u32);
    __type(value, __u64);
} lru_pcpu SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_QUEUE);
    __uint(max_entries, 4);
    __type(value, __u32);
} queue SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_STACK);
    __uint(max_entries, 4);
    __type(value, __u32);
} stack SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_BLOOM_FILTER);
    __uint(max_entries, 64);
    __uint(map_extra, 3);
    __type(value, __u64);
} bloom SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_RINGBUF);
    __uint(max_entries, 4096);
} ring SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_PERF_EVENT_ARRAY);
    __uint(key_size, sizeof(__u32));
    __uint(value_size, sizeof(__u32));
} perf SEC(".maps");

struct inner_array {
    __uint(type, BPF_MAP_TYPE_ARRAY);
    __uint(max_entries, 1);
    __type(key, __u32);
    __type(value, __u64);
} inner_a SEC(".maps"), inner_b SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_ARRAY_OF_MAPS);
    __uint(max_entries, 2);
    __type(key, __u32);
    __array(values, struct inner_array);
} outer_array SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_HASH_OF_MAPS);
    __uint(max_entries, 2);
    __type(key, __u32);
    __array(values, struct inner_array);
} outer_hash SEC(".maps");

/* Globals: the program reads `bump` from .data and `scale` from .rodata, writes .bss. */
const volatile __u32 scale = 1;
const volatile char label[8] = "default";
__u64 bump = 5;
struct point last_point = {};
__u64 total = 0;
__u32 calls = 0;

struct args {
    __u32 key;
    __u32 x;
};

SEC("syscall")
int step(struct args *args)
{
    __u64 zero = 0, *slot;
    __u32 key = args->key;
    struct point *p;

    calls++;
    total += bump * scale;
    last_point.x = args->x;
    last_point.y = calls;
    slot = bpf_map_lookup_elem(&array, &key);
    if (slot)
        *slot += bump;
    p = bpf_map_lookup_elem(&pcpu_array, &key);
    if (p)
        p->x += 1;
    /* outer_array[0] -> inner map: read its element 0 */
    __u32 zero_key = 0;
    void *inner = bpf_map_lookup_elem(&outer_array, &zero_key);
    if (inner) {
        __u64 *v = bpf_map_lookup_elem(inner, &zero_key);
        if (v)
            return (int)*v;
    }
    (void)zero;
    return -1;
}
