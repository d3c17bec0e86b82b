/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* The pid filter of the profiler's programs (profile.bpf.c, profile_dwarf.bpf.c): the tgids user space
 * puts in `pids` are sampled when the object's `filter_pids` is set, and follow_fork() adds a child of
 * a sampled process to them (the programs' tp_btf/sched_process_fork, autoloaded with follow_forks). */
#ifndef PYPROBE_PROFILE_PIDS_H
#define PYPROBE_PROFILE_PIDS_H

#include "profile.h"

struct {
    __uint(type, BPF_MAP_TYPE_HASH);
    __uint(max_entries, PROF_MAX_PIDS);
    __type(key, __u32);
    __type(value, __u8);
} pids SEC(".maps");

static __always_inline void follow_fork(struct task_struct *parent, struct task_struct *child)
{
    __u32 ppid = BPF_CORE_READ(parent, tgid), cpid = BPF_CORE_READ(child, tgid);
    __u8 one = 1;

    if (ppid != cpid && bpf_map_lookup_elem(&pids, &ppid))
        bpf_map_update_elem(&pids, &cpid, &one, BPF_ANY);
}

#endif
