/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* The event of async_execsnoop.bpf.c: one exec(). */
#ifndef ASYNC_EXECSNOOP_H
#define ASYNC_EXECSNOOP_H

struct exec_event {
    __u32 pid;
    __u32 ppid;
    char comm[16];
    char filename[128];
};

#endif /* ASYNC_EXECSNOOP_H */
