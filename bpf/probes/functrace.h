/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* Shared between functrace.bpf.c and pyprobe's `trace` command (cli/trace.py).
 * One object serves any number of functions: the attach cookie is the index
 * of the function's struct ft_config in the `funcs` map. */
#ifndef PYPROBE_FUNCTRACE_H
#define PYPROBE_FUNCTRACE_H

#define FT_MAX_FUNCS 4096  /* entries of the config map */
#define FT_REG_ARGS 6      /* x86-64 SysV: rdi rsi rdx rcx r8 r9 */
#define FT_STACK_ARGS 6    /* further arguments read from the user stack */
#define FT_MAX_ARGS (FT_REG_ARGS + FT_STACK_ARGS)
#define FT_MAX_STRS 4      /* string arguments per function */
#define FT_STR_LEN 128     /* bytes read per string, NUL included */
#define FT_MAX_DEPTH 32    /* nested or recursive calls remembered per thread */

/* What the probe records for one function; the cookie indexes it. */
struct ft_config {
    unsigned int nargs;          /* arguments to record, 0..FT_MAX_ARGS */
    unsigned int flags;          /* FT_CFG_* */
    signed char str_arg[FT_MAX_STRS];  /* argument index read as a string, or -1 */
};

#define FT_CFG_ENTRY_EVENT 1u  /* emit an event at entry (no return probe attached) */

/* event flags */
#define FT_EV_ENTRY 1u     /* recorded at entry: no return value, no latency */
#define FT_EV_RETURN 2u    /* has a return value */
#define FT_EV_ARGS 4u      /* has the arguments (entry seen for this return) */
#define FT_EV_STR_FAULT 8u /* << s: string s could not be read (strs[s] is empty); bits 3..6 */

/* One ring buffer record: a completed call (or an entry, or a bare return). */
struct ft_event {
    unsigned long long ts_ns;       /* entry time (return time for a bare return), CLOCK_MONOTONIC */
    unsigned long long latency_ns;  /* return time - entry time, 0 when unknown */
    unsigned int pid;               /* process (tgid) */
    unsigned int tid;               /* thread */
    unsigned int cookie;            /* index of the function */
    unsigned int flags;             /* FT_EV_* */
    long long ret;                  /* raw return register */
    unsigned long long args[FT_MAX_ARGS];
    char comm[16];
    char strs[FT_MAX_STRS][FT_STR_LEN];
};

/* One call waiting for its return, kept per (thread, depth). */
struct ft_frame {
    unsigned long long ts_ns;
    unsigned int cookie;
    unsigned int str_faults;  /* FT_EV_STR_FAULT bits of its strings */
    unsigned long long args[FT_MAX_ARGS];
    char strs[FT_MAX_STRS][FT_STR_LEN];
};

#endif /* PYPROBE_FUNCTRACE_H */
