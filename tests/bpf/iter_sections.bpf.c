// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* Programs in sections libbpf does not know, as other loaders write them: SEC("xdp/lo") (ebpf_exporter,
 * iproute2) and a custom SEC("pyprobe_custom/..."); the tests register handlers for them. */
#include <pyprobe/common.h>

char LICENSE[] SEC("license") = "Dual BSD/GPL";

__u64 xdp_packets = 0;
__u64 custom_calls = 0;

SEC("xdp/lo")
int count_lo(struct xdp_md *ctx)
{
    __sync_fetch_and_add(&xdp_packets, 1);
    return XDP_PASS;
}

SEC("pyprobe_custom/syscalls/sys_enter_getppid")
int on_getppid(void *ctx)
{
    __sync_fetch_and_add(&custom_calls, 1);
    return 0;
}
