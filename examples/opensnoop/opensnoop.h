/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* The event of opensnoop.bpf.c: one openat() call. */
#ifndef OPENSNOOP_H
#define OPENSNOOP_H

#define OPENSNOOP_PATH_MAX 256

struct open_event {
    __u32 pid;
    __u32 uid;
    __s32 flags;
    char comm[16];
    char path[OPENSNOOP_PATH_MAX];
};

#endif /* OPENSNOOP_H */
