// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* Task storage (BPF_MAP_TYPE_TASK_STORAGE, Linux 5.11): on each system call of process `target_tgid`,
 * counts the calls of each of its threads in the thread's storage and copies `stamp` (set from Python)
 * into `seen`. Inode storage (BPF_MAP_TYPE_INODE_STORAGE, Linux 5.10) is written by BPF LSM programs;
 * `file_open` records the opening task's tgid in the storage of each file the target opens. */
#include <pyprobe/common.h>

char LICENSE[] SEC("license") = "Dual BSD/GPL";

#define BPF_LOCAL_STORAGE_GET_F_CREATE 1

struct task_value {
    __u64 syscalls;
    __u64 stamp;
    __u64 seen;
};

struct {
    __uint(type, BPF_MAP_TYPE_TASK_STORAGE);
    __uint(map_flags, BPF_F_NO_PREALLOC);
    __type(key, int);
    __type(value, struct task_value);
} task_values SEC(".maps");

struct inode_value {
    __u32 opener_tgid;
    __u32 opens;
};

struct {
    __uint(type, BPF_MAP_TYPE_INODE_STORAGE);
    __uint(map_flags, BPF_F_NO_PREALLOC);
    __type(key, int);
    __type(value, struct inode_value);
} inode_values SEC(".maps");

volatile __u32 target_tgid;

SEC("tp_btf/sys_enter")
int BPF_PROG(task_storage_writer, struct pt_regs *regs, long id)
{
    struct task_struct *task = bpf_get_current_task_btf();
    struct task_value *value;

    if (!target_tgid || task->tgid != target_tgid)
        return 0;
    value = bpf_task_storage_get(&task_values, task, 0, BPF_LOCAL_STORAGE_GET_F_CREATE);
    if (!value)
        return 0;
    __sync_fetch_and_add(&value->syscalls, 1);
    value->seen = value->stamp;
    return 0;
}

SEC("lsm/file_open")
int BPF_PROG(inode_storage_writer, struct file *file)
{
    struct task_struct *task = bpf_get_current_task_btf();
    struct inode_value *value;

    if (!target_tgid || task->tgid != target_tgid)
        return 0;
    value = bpf_inode_storage_get(&inode_values, file->f_inode, 0, BPF_LOCAL_STORAGE_GET_F_CREATE);
    if (!value)
        return 0;
    value->opener_tgid = task->tgid;
    __sync_fetch_and_add(&value->opens, 1);
    return 0;
}
