/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* The event of usdt.bpf.c: one hit of a three-argument USDT probe. */
#ifndef USDT_H
#define USDT_H

struct tick_event {
    __u32 pid;
    __s32 small;
    __s64 i;
    __s64 big;
};

#endif /* USDT_H */
