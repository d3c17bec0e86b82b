// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* uprobe and uretprobe on a C++ method: `long Account::deposit(long)`.
 *
 * A method's first argument is `this`; the declared arguments follow. The entry
 * probe keeps `this`, the argument and the time per thread (key: pid_tgid), the
 * return probe pairs them with the return value and sends one event per call.
 * The loader attaches both by the method's demangled name.
 */
#include <pyprobe/common.h>
#include "cpp_method.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

struct call_start {
    __u64 self;
    __s64 amount;
    __u64 start_ns;
};

struct {
    __uint(type, BPF_MAP_TYPE_HASH);
    __uint(max_entries, 10240);
    __type(key, __u64); /* pid_tgid: calls in flight, one per thread */
    __type(value, struct call_start);
} starts SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_RINGBUF);
    __uint(max_entries, 256 * 1024);
} events SEC(".maps");

PYPROBE_EVENT_TYPE(events, struct call_event);

SEC("uprobe")
int BPF_UPROBE(deposit_entry, void *self, long amount)
{
    __u64 id = bpf_get_current_pid_tgid();
    struct call_start start = {
        .self = (__u64)self,
        .amount = amount,
        .start_ns = bpf_ktime_get_ns(),
    };

    bpf_map_update_elem(&starts, &id, &start, BPF_ANY);
    return 0;
}

SEC("uretprobe")
int BPF_URETPROBE(deposit_return, long result)
{
    __u64 id = bpf_get_current_pid_tgid();
    struct call_start *start = bpf_map_lookup_elem(&starts, &id);
    struct call_event *e;

    if (!start)
        return 0; /* the call began before the probes were attached */
    e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
    if (e) {
        e->pid = id >> 32;
        e->tid = (__u32)id;
        e->self = start->self;
        e->amount = start->amount;
        e->result = result;
        e->latency_ns = bpf_ktime_get_ns() - start->start_ns;
        bpf_ringbuf_submit(e, 0);
    }
    bpf_map_delete_elem(&starts, &id);
    return 0;
}
