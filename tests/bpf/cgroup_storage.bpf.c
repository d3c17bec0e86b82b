// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* Cgroup storage (BPF_MAP_TYPE_CGRP_STORAGE, Linux 6.2): on each system call of process `target_tgid`,
 * counts the calls in the storage of the process's cgroup and copies `stamp` (set from Python in the
 * same storage) into `seen`. */
#include <pyprobe/common.h>

char LICENSE[] SEC("license") = "Dual BSD/GPL";

#define BPF_LOCAL_STORAGE_GET_F_CREATE 1

struct cgroup_value {
    __u64 syscalls;
    __u64 stamp;
    __u64 seen;
};

struct {
    __uint(type, BPF_MAP_TYPE_CGRP_STORAGE);
    __uint(map_flags, BPF_F_NO_PREALLOC);
    __type(key, int);
    __type(value, struct cgroup_value);
} cgroup_values SEC(".maps");

volatile __u32 target_tgid;

SEC("tp_btf/sys_enter")
int BPF_PROG(cgroup_storage_writer, struct pt_regs *regs, long id)
{
    struct task_struct *task = bpf_get_current_task_btf();
    struct cgroup_value *value;

    if (!target_tgid || task->tgid != target_tgid)
        return 0;
    value = bpf_cgrp_storage_get(&cgroup_values, task->cgroups->dfl_cgrp, 0, BPF_LOCAL_STORAGE_GET_F_CREATE);
    if (!value)
        return 0;
    __sync_fetch_and_add(&value->syscalls, 1);
    value->seen = value->stamp;
    return 0;
}
