// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* A tiny probe shipped with pyprobe to check that this machine can load and
 * run BPF: `selftest` adds its two arguments and counts its runs. */
#include <pyprobe/common.h>

char LICENSE[] SEC("license") = "Dual BSD/GPL";

struct selftest_args {
    __s64 a;
    __s64 b;
};

__u64 selftest_runs = 0;

SEC("syscall")
int selftest(struct selftest_args *args)
{
    __sync_fetch_and_add(&selftest_runs, 1);
    return (int)(args->a + args->b);
}
