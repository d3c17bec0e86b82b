/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* The event of cpp_method.bpf.c: one completed call of the traced method. */
#ifndef CPP_METHOD_H
#define CPP_METHOD_H

struct call_event {
    __u32 pid;
    __u32 tid;
    __u64 self;       /* the object the method ran on: `this`, its hidden first argument */
    __s64 amount;     /* the method's (first declared) argument */
    __s64 result;     /* its return value */
    __u64 latency_ns; /* from entry to return */
};

#endif /* CPP_METHOD_H */
