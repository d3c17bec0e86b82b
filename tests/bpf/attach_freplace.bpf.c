// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* freplace: `target` calls the global function `decide`; `replacement` replaces it where the
 * kernel allows BPF trampolines. */
#include <pyprobe/common.h>

char LICENSE[] SEC("license") = "Dual BSD/GPL";

__noinline int decide(int x)
{
    return x + 1;
}

SEC("syscall")
int target(int *ctx)
{
    return decide(41);
}

SEC("freplace")
int replacement(int x)
{
    return 1000;
}
