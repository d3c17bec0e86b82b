// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* printk: bpf_printk() from a uprobe, read back through tracefs's trace_pipe.
 *
 * bpf_printk() writes a line to the kernel's trace buffer: the quickest way to
 * see what a probe does, with no map and no event struct. Every BPF program on
 * the machine shares that buffer, so the lines start with a tag to tell ours
 * apart. Use it to debug; ship events through a ring buffer.
 */
#include <pyprobe/common.h>

char LICENSE[] SEC("license") = "Dual BSD/GPL";

SEC("uprobe")
int BPF_UPROBE(func_entry, long a, long b)
{
    bpf_printk("printk example: a=%ld b=%ld", a, b);
    return 0;
}
