// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* An arena (Linux 6.9) of four pages, which libbpf 1.4 maps into the process at load. Programs that use
 * arena pointers need clang 18 or later (addr_space_cast); the tests use it from user space only. */
#include <pyprobe/common.h>

char LICENSE[] SEC("license") = "Dual BSD/GPL";

struct {
    __uint(type, BPF_MAP_TYPE_ARENA);
    __uint(map_flags, BPF_F_MMAPABLE);
    __uint(max_entries, 4); /* pages */
} arena SEC(".maps");

