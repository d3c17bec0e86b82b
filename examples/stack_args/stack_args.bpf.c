// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* stack_args: the 7th and 8th arguments of a user function, which x86-64 passes on the stack.
 *
 * The System V ABI passes six integer arguments in registers (rdi, rsi, rdx, rcx,
 * r8, r9); the 7th and later sit on the caller's stack, just above the return
 * address at function entry. pyprobe_uarg(ctx, n) from <pyprobe/args.h> reads
 * argument n (from 1) from the right place on x86-64 and arm64.
 */
#include <pyprobe/common.h>
#include <pyprobe/args.h>
#include "stack_args.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

struct {
    __uint(type, BPF_MAP_TYPE_RINGBUF);
    __uint(max_entries, 256 * 1024);
} events SEC(".maps");

PYPROBE_EVENT_TYPE(events, struct args_event);

SEC("uprobe")
int func_entry(struct pt_regs *ctx)
{
    __u64 id = bpf_get_current_pid_tgid();
    struct args_event *e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);

    if (!e)
        return 0;
    e->pid = id >> 32;
    e->tid = (__u32)id;
    e->args[0] = pyprobe_uarg(ctx, 1);
    e->args[1] = pyprobe_uarg(ctx, 2);
    e->args[2] = pyprobe_uarg(ctx, 3);
    e->args[3] = pyprobe_uarg(ctx, 4);
    e->args[4] = pyprobe_uarg(ctx, 5);
    e->args[5] = pyprobe_uarg(ctx, 6);
    e->args[6] = pyprobe_uarg(ctx, 7); /* on the stack: entry sp + 8 */
    e->args[7] = pyprobe_uarg(ctx, 8); /* entry sp + 16 */
    bpf_ringbuf_submit(e, 0);
    return 0;
}
