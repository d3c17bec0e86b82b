// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* A small object for the core tests: a syscall program driven by test_run,
 * a tracepoint that auto-attaches from its SEC name, a uprobe, globals. */
#include <pyprobe/common.h>

char LICENSE[] SEC("license") = "Dual BSD/GPL";

struct add_args {
    int a;
    int b;
};

struct {
    __uint(type, BPF_MAP_TYPE_HASH);
    __uint(max_entries, 64);
    __type(key, __u32);
    __type(value, __u64);
} counts SEC(".maps");

const volatile int target_pid = 0;
__u64 runs = 0;
__u64 getpid_calls = 0;
__u64 uprobe_hits = 0;

SEC("syscall")
int add(struct add_args *args)
{
    __sync_fetch_and_add(&runs, 1);
    return args->a + args->b;
}

SEC("tracepoint/syscalls/sys_enter_getpid")
int on_getpid(void *ctx)
{
    __u32 key = bpf_get_current_pid_tgid() >> 32;
    __u64 one = 1, *v;

    if (target_pid && key != target_pid)
        return 0;
    __sync_fetch_and_add(&getpid_calls, 1);
    v = bpf_map_lookup_elem(&counts, &key);
    if (v)
        __sync_fetch_and_add(v, 1);
    else
        bpf_map_update_elem(&counts, &key, &one, BPF_NOEXIST);
    return 0;
}

SEC("uprobe")
int on_call(struct pt_regs *ctx)
{
    __sync_fetch_and_add(&uprobe_hits, 1);
    return 0;
}
