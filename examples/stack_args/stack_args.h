/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* The event of stack_args.bpf.c: the eight arguments of one call. */
#ifndef STACK_ARGS_H
#define STACK_ARGS_H

struct args_event {
    __u32 pid;
    __u32 tid;
    __s64 args[8];
};

#endif /* STACK_ARGS_H */
