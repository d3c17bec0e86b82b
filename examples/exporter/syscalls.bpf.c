// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* syscalls: every system call counted by process name and syscall number (raw tracepoint).
 *
 * The key is { comm, syscall number }; syscalls.yaml decodes the number into its
 * name with the `syscall` decoder, as ebpf_exporter's syscalls example does.
 */
#include <pyprobe/common.h>

char LICENSE[] SEC("license") = "Dual BSD/GPL";

struct syscall_key {
    char comm[16];
    u64 id;
};

struct {
    __uint(type, BPF_MAP_TYPE_HASH);
    __uint(max_entries, 10240);
    __type(key, struct syscall_key);
    __type(value, u64);
} syscalls_total SEC(".maps");

SEC("raw_tp/sys_enter")
int BPF_PROG(sys_enter, struct pt_regs *regs, long id)
{
    struct syscall_key key = { .id = id };
    u64 one = 1, *count;

    bpf_get_current_comm(key.comm, sizeof(key.comm));
    count = bpf_map_lookup_elem(&syscalls_total, &key);
    if (count)
        __sync_fetch_and_add(count, 1);
    else
        bpf_map_update_elem(&syscalls_total, &key, &one, BPF_NOEXIST);
    return 0;
}
