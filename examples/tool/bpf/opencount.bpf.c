// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* Counts openat() calls per process and keeps the last path each one opened. */
#include <pyprobe/common.h>

char LICENSE[] SEC("license") = "Dual BSD/GPL";

#define COMM_LEN 16
#define PATH_LEN 128
#define EEXIST 17 /* errno.h is not for BPF programs; the value is the same everywhere */

struct open_stats {
    __u64 count;
    char comm[COMM_LEN];
    char last_path[PATH_LEN];
};

/* Set from user space before load: only this process (tgid) is counted; 0 counts all. */
const volatile __u32 target_pid = 0;

struct {
    __uint(type, BPF_MAP_TYPE_HASH);
    __uint(max_entries, 16384);
    __type(key, __u32); /* tgid */
    __type(value, struct open_stats);
} counts SEC(".maps");

/* Processes dropped because `counts` was full. */
__u64 dropped = 0;

SEC("tracepoint/syscalls/sys_enter_openat")
int count_openat(struct trace_event_raw_sys_enter *ctx)
{
    __u32 tgid = bpf_get_current_pid_tgid() >> 32;
    struct open_stats *stats;

    if (target_pid && tgid != target_pid)
        return 0;
    stats = bpf_map_lookup_elem(&counts, &tgid);
    if (!stats) {
        struct open_stats fresh = {};
        long err = bpf_map_update_elem(&counts, &tgid, &fresh, BPF_NOEXIST);

        if (err && err != -EEXIST) /* full (another CPU adding it first is fine) */
            __sync_fetch_and_add(&dropped, 1);
        stats = bpf_map_lookup_elem(&counts, &tgid);
        if (!stats)
            return 0;
    }
    __sync_fetch_and_add(&stats->count, 1);
    bpf_get_current_comm(stats->comm, sizeof(stats->comm)); /* the name after an exec() */
    bpf_probe_read_user_str(stats->last_path, sizeof(stats->last_path), (const char *)ctx->args[1]);
    return 0;
}
