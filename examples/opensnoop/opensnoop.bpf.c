// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* opensnoop: every openat() system call, from the syscalls:sys_enter_openat tracepoint.
 *
 * Each call counts in a hash map keyed by process id and sends an event (pid, uid,
 * flags, command name, path) through a ring buffer. `target_pid`, a const volatile
 * global, is set by the loader before load: the verifier then sees a constant and
 * drops the filter when it is 0.
 */
#include <pyprobe/common.h>
#include "opensnoop.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

const volatile __u32 target_pid = 0; /* 0: every process */

struct {
    __uint(type, BPF_MAP_TYPE_HASH);
    __uint(max_entries, 10240);
    __type(key, __u32);   /* pid */
    __type(value, __u64); /* openat() calls */
} counts SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_RINGBUF);
    __uint(max_entries, 1024 * 1024);
} events SEC(".maps");

PYPROBE_EVENT_TYPE(events, struct open_event);

SEC("tracepoint/syscalls/sys_enter_openat")
int handle_openat(struct trace_event_raw_sys_enter *ctx)
{
    __u32 pid = bpf_get_current_pid_tgid() >> 32;
    __u64 one = 1, *count;
    struct open_event *e;

    if (target_pid && pid != target_pid)
        return 0;
    count = bpf_map_lookup_elem(&counts, &pid);
    if (count)
        __sync_fetch_and_add(count, 1);
    else
        bpf_map_update_elem(&counts, &pid, &one, BPF_NOEXIST);

    e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
    if (!e)
        return 0; /* full: the count above still holds the call */
    e->pid = pid;
    e->uid = (__u32)bpf_get_current_uid_gid();
    e->flags = (__s32)ctx->args[2];
    bpf_get_current_comm(e->comm, sizeof(e->comm));
    bpf_probe_read_user_str(e->path, sizeof(e->path), (const char *)ctx->args[1]);
    bpf_ringbuf_submit(e, 0);
    return 0;
}
