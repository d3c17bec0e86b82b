/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* Shared between profile.bpf.c and pyprobe.profile: the key of a sampled stack. */
#ifndef PYPROBE_PROFILE_H
#define PYPROBE_PROFILE_H

#define PROF_COMM_LEN 16
#define PROF_MAX_DEPTH 127    /* PERF_MAX_STACK_DEPTH, the default of kernel.perf_event_max_stack */
#define PROF_MAX_PIDS 1024

/* One distinct (process, thread, user stack, kernel stack); its count is the value. A stack id
 * is negative when that stack was not asked for or could not be taken (-EFAULT: no user or no
 * kernel part, -EEXIST: a hash collision in the stack map, -ENOMEM: the stack map is full). */
struct prof_key {
    unsigned int pid;         /* tgid */
    unsigned int tid;
    int user_stack_id;
    int kernel_stack_id;
    char comm[PROF_COMM_LEN];
};

#endif /* PYPROBE_PROFILE_H */
