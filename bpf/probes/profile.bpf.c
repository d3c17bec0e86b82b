// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* profile: a sampling CPU profiler. A perf_event program runs on each sample (a cpu-clock
 * event per CPU at the chosen frequency), walks the user and kernel stacks by frame pointer
 * into a stack trace map and counts each distinct (pid, tid, user stack, kernel stack, comm)
 * in a hash map. Nothing crosses to user space per sample.
 *
 * Two sets of maps (stacks0/counts0, stacks1/counts1) double-buffer the samples: the program
 * writes the set `active` names; user space flips `active`, then reads and clears the other
 * set, so a drain never races the samples it reads. */
#include <pyprobe/common.h>
#include "profile.h"
#include "profile_pids.h"

#ifndef EFAULT
#define EFAULT 14
#endif

char LICENSE[] SEC("license") = "Dual BSD/GPL";

const volatile bool filter_pids = false;   /* sample only the tgids in `pids` */
const volatile bool want_user = true;      /* take the user stack */
const volatile bool want_kernel = true;    /* take the kernel stack */
const volatile bool include_idle = false;  /* count the idle task (pid 0) */

__u32 active = 0;            /* the set of maps samples go to (0 or 1), flipped by user space */
__u64 samples[2];            /* samples seen per set */
__u64 lost_stacks[2];        /* stacks not taken: stack map full or a hash collision */
__u64 lost_counts[2];        /* samples not counted: the counts map was full */

struct stack_map {
    __uint(type, BPF_MAP_TYPE_STACK_TRACE);
    __uint(max_entries, 8192);
    __uint(key_size, sizeof(__u32));
    __uint(value_size, PROF_MAX_DEPTH * sizeof(__u64));
};

struct count_map {
    __uint(type, BPF_MAP_TYPE_HASH);
    __uint(max_entries, 16384);
    __type(key, struct prof_key);
    __type(value, __u64);
};

struct stack_map stacks0 SEC(".maps");
struct stack_map stacks1 SEC(".maps");
struct count_map counts0 SEC(".maps");
struct count_map counts1 SEC(".maps");

static __always_inline int stack_id(void *ctx, void *stacks, __u64 flags, __u32 set)
{
    long id = bpf_get_stackid(ctx, stacks, flags);

    if (id < 0 && id != -EFAULT && set < 2)  /* -EFAULT: no such part (a kernel stack in user mode) */
        __sync_fetch_and_add(&lost_stacks[set], 1);
    return (int)id;
}

static __always_inline void count(void *counts, struct prof_key *key, __u32 set)
{
    __u64 one = 1, *n = bpf_map_lookup_elem(counts, key);

    if (n) {
        __sync_fetch_and_add(n, 1);
        return;
    }
    if (bpf_map_update_elem(counts, key, &one, BPF_NOEXIST) == 0)
        return;
    n = bpf_map_lookup_elem(counts, key);  /* another CPU added it meanwhile, or the map is full */
    if (n)
        __sync_fetch_and_add(n, 1);
    else if (set < 2)
        __sync_fetch_and_add(&lost_counts[set], 1);
}

SEC("perf_event")
int profile_sample(struct bpf_perf_event_data *ctx)
{
    __u64 id = bpf_get_current_pid_tgid();
    __u32 pid = id >> 32, tid = (__u32)id;
    __u32 set = active & 1;
    struct prof_key key = {};

    if (pid == 0 && !include_idle)
        return 0;
    if (filter_pids && !bpf_map_lookup_elem(&pids, &pid))
        return 0;
    key.pid = pid;
    key.tid = tid;
    key.user_stack_id = -1;
    key.kernel_stack_id = -1;
    bpf_get_current_comm(key.comm, sizeof(key.comm));
    __sync_fetch_and_add(&samples[set], 1);
    if (set == 0) {
        if (want_user)
            key.user_stack_id = stack_id(ctx, &stacks0, BPF_F_USER_STACK, 0);
        if (want_kernel)
            key.kernel_stack_id = stack_id(ctx, &stacks0, 0, 0);
        count(&counts0, &key, 0);
    } else {
        if (want_user)
            key.user_stack_id = stack_id(ctx, &stacks1, BPF_F_USER_STACK, 1);
        if (want_kernel)
            key.kernel_stack_id = stack_id(ctx, &stacks1, 0, 1);
        count(&counts1, &key, 1);
    }
    return 0;
}

/* With follow_forks (autoload), a child of a sampled process is sampled too. */
SEC("tp_btf/sched_process_fork")
int BPF_PROG(profile_fork, struct task_struct *parent, struct task_struct *child)
{
    follow_fork(parent, child);
    return 0;
}
