/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* Shared between demo.bpf.c and Python: one slot per traced function. */
#ifndef PYPROBE_DEMO_H
#define PYPROBE_DEMO_H

#define DEMO_MAX_FUNCS 8

struct demo_call {
    long long a;     /* first argument of the last call */
    long long b;     /* second argument of the last call */
    long long ret;   /* return value of the last call */
    unsigned long long calls;    /* entries seen */
    unsigned long long returns;  /* returns seen */
};

#endif /* PYPROBE_DEMO_H */
