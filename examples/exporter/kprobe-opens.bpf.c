// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* kprobe-opens: do_sys_openat2() calls by process name (a kprobe: needs CONFIG_KPROBES). */
#include <pyprobe/common.h>

char LICENSE[] SEC("license") = "Dual BSD/GPL";

struct {
    __uint(type, BPF_MAP_TYPE_HASH);
    __uint(max_entries, 4096);
    __type(key, char[16]);
    __type(value, u64);
} kprobe_opens_total SEC(".maps");

SEC("kprobe/do_sys_openat2")
int BPF_KPROBE(do_sys_openat2)
{
    char comm[16] = {};
    u64 one = 1, *count;

    bpf_get_current_comm(comm, sizeof(comm));
    count = bpf_map_lookup_elem(&kprobe_opens_total, comm);
    if (count)
        __sync_fetch_and_add(count, 1);
    else
        bpf_map_update_elem(&kprobe_opens_total, comm, &one, BPF_NOEXIST);
    return 0;
}
