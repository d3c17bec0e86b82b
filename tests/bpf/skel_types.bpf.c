// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* Maps, events and globals of struct types for the typed skeleton tests: the
 * SEC("syscall") program `fill` writes one element of each map, one event to
 * each ring buffer and updates the globals. perf_events only declares its
 * record type. */
#include <pyprobe/common.h>
#include "skel_types.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

struct {
    __uint(type, BPF_MAP_TYPE_HASH);
    __uint(max_entries, 16);
    __type(key, __u32);
    __type(value, __u64);
} counts SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_HASH);
    __uint(max_entries, 16);
    __type(key, struct flow_key);
    __type(value, struct flow_value);
} flows SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
    __uint(max_entries, 1);
    __type(key, __u32);
    __type(value, struct cpu_stats);
} stats SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_ARRAY);
    __uint(max_entries, 2);
    __type(key, __u32);
    __type(value, char[8]);
} names SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_RINGBUF);
    __uint(max_entries, 4096);
} events SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_RINGBUF);
    __uint(max_entries, 4096);
} raw_events SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_PERF_EVENT_ARRAY);
    __uint(key_size, sizeof(__u32));
    __uint(value_size, sizeof(__u32));
} perf_events SEC(".maps");

PYPROBE_EVENT_TYPE(events, struct open_event);
PYPROBE_EVENT_TYPE(perf_events, struct open_event);
PYPROBE_EXPORT_TYPE(struct exported_only);

const volatile struct settings settings = {.limit = 10, .mode = 1};
const volatile __u32 scale = 1;
struct endpoint last_peer = {};
__u64 fills = 0;

SEC("syscall")
int fill(struct fill_args *args)
{
    __u32 key = args->pid, zero = 0;
    __u64 one = 1, *count;
    struct flow_key fk = {};
    struct flow_value fs = {};
    struct cpu_stats *cs;
    struct open_event *e;
    __u64 *raw;

    if (fills >= settings.limit)
        return -1;
    fills++;
    count = bpf_map_lookup_elem(&counts, &key);
    if (count)
        *count += scale;
    else
        bpf_map_update_elem(&counts, &key, &one, BPF_NOEXIST);

    fk.src.addr = 0x0a000001;
    fk.src.port = 80;
    fk.hops[0].addr = 1;
    fk.hops[1].port = 443;
    fk.proto = 6;
    fs.packets = args->seq;
    __builtin_memcpy(fs.name, "flow", 5);
    fs.matrix[1][2] = 7;
    fs.low = 5;
    fs.high = 17;
    fs.sign = -3;
    fs.as_u32 = 0x04030201;
    fs.window.first = 1;
    fs.window.last = 9;
    fs.pair.tag = 0xab;
    fs.pair.value = 0x12345678;
    fs.ok = 1;
    fs.verdict = VERDICT_DROP;
    bpf_map_update_elem(&flows, &fk, &fs, BPF_ANY);

    cs = bpf_map_lookup_elem(&stats, &zero);
    if (cs) {
        cs->runs += 1;
        cs->bytes += 100;
    }
    last_peer.addr = args->pid;
    last_peer.port = 22;

    e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
    if (e) {
        e->pid = args->pid;
        e->flags = -2;
        __builtin_memcpy(e->filename, "/etc/hosts", 11);
        e->peer.addr = 0x7f000001;
        e->peer.port = 8080;
        e->args[0] = args->seq;
        e->args[1] = 0;
        e->args[2] = ~0ULL;
        bpf_ringbuf_submit(e, 0);
    }
    raw = bpf_ringbuf_reserve(&raw_events, sizeof(*raw), 0);
    if (raw) {
        *raw = args->seq;
        bpf_ringbuf_submit(raw, 0);
    }
    return 0;
}
