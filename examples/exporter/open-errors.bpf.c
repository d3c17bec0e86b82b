// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* open-errors: failed openat() calls by process name and errno (tracepoint, per-CPU counts). */
#include <pyprobe/common.h>

char LICENSE[] SEC("license") = "Dual BSD/GPL";

struct open_error_key {
    char comm[16];
    u32 err;
    u32 pad;
};

struct {
    __uint(type, BPF_MAP_TYPE_PERCPU_HASH);
    __uint(max_entries, 4096);
    __type(key, struct open_error_key);
    __type(value, u64);
} open_errors_total SEC(".maps");

SEC("tracepoint/syscalls/sys_exit_openat")
int sys_exit_openat(struct trace_event_raw_sys_exit *ctx)
{
    struct open_error_key key = {};
    u64 one = 1, *count;

    if (ctx->ret >= 0)
        return 0;
    key.err = -ctx->ret;
    bpf_get_current_comm(key.comm, sizeof(key.comm));
    count = bpf_map_lookup_elem(&open_errors_total, &key);
    if (count)
        *count += 1; /* per-CPU: no other CPU writes this slot */
    else
        bpf_map_update_elem(&open_errors_total, &key, &one, BPF_NOEXIST);
    return 0;
}
