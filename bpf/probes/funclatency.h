/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* Shared between funclatency.bpf.c and pyprobe's `funclatency` command. */
#ifndef PYPROBE_FUNCLATENCY_H
#define PYPROBE_FUNCLATENCY_H

#define FL_MAX_FUNCS 256
#define FL_SLOTS 64        /* slot i counts latencies in [2^i, 2^(i+1)) ns; slot 0 also 0 */
#define FL_MAX_DEPTH 32

/* The histogram of one function; the attach cookie indexes it. */
struct fl_hist {
    unsigned long long slots[FL_SLOTS];
    unsigned long long count;
    unsigned long long total_ns;
};

#endif /* PYPROBE_FUNCLATENCY_H */
