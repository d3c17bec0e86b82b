// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* functrace: the generic function tracer behind `pyprobe trace` and `pyprobe demo`.
 *
 * Entry: records time, the six register arguments, up to FT_STACK_ARGS more
 * from the user stack and bounded user strings for the arguments that the
 * function's config marks as `char *`, into a per-thread stack of frames.
 * Return: pops the frame of the same thread (nested and recursive calls pair
 * correctly) and emits one event with the arguments, the return value and the
 * latency. USDT probes: one event per hit with the probe's arguments.
 * Events go to a ring buffer without waking the reader (pyprobe_ringbuf_submit:
 * a wakeup only when 64 KiB are waiting); the reader drains on a timer, so a
 * traced call never pays for a wakeup. The one exception is the first event the
 * ring ever holds: it wakes the reader, which prints it at once instead of at
 * its next timer tick.
 *
 * Each uprobe program comes twice: SEC("uprobe") for one link per function and
 * SEC("uprobe.multi") for one link for many (Linux 6.6); user space keeps one
 * pair with autoload. */
#include <pyprobe/common.h>
#include <pyprobe/ringbuf.h>

#if defined(__TARGET_ARCH_x86)
/* x86-64 struct pt_regs as uprobes see it: its layout is user ABI (uapi
 * asm/ptrace.h), so the registers are read at fixed offsets. Without this view
 * every register access is a CO-RE relocation against vmlinux's struct pt_regs,
 * and libbpf reads and parses the kernel's whole BTF at each load for them. */
struct ft_pt_regs {
    unsigned long r15, r14, r13, r12, bp, bx, r11, r10, r9, r8, ax, cx, dx, si, di, orig_ax, ip, cs, flags, sp, ss;
};
#undef __PT_REGS_CAST
#define __PT_REGS_CAST(x) ((const struct ft_pt_regs *)(x))
#endif

#include <bpf/usdt.bpf.h>
#include "functrace.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

struct {
    __uint(type, BPF_MAP_TYPE_ARRAY);
    __uint(max_entries, FT_MAX_FUNCS);
    __type(key, __u32);
    __type(value, struct ft_config);
} funcs SEC(".maps");

/* Keeps struct ft_event in the object's BTF, for readers that decode events by type name. */
PYPROBE_EXPORT_TYPE(struct ft_event);

struct {
    __uint(type, BPF_MAP_TYPE_RINGBUF);
    __uint(max_entries, 1 << 22);
} events SEC(".maps");

/* thread id -> number of frames pushed */
struct {
    __uint(type, BPF_MAP_TYPE_HASH);
    __uint(max_entries, 16384);
    __type(key, __u32);
    __type(value, __u32);
} depths SEC(".maps");

/* (thread id << 32 | depth) -> frame */
struct {
    __uint(type, BPF_MAP_TYPE_HASH);
    __uint(max_entries, 8192);  /* preallocated: allocating per call costs more than the call */
    __type(key, __u64);
    __type(value, struct ft_frame);
} frames SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
    __uint(max_entries, 1);
    __type(key, __u32);
    __type(value, struct ft_frame);
} scratch SEC(".maps");

/* [0] events dropped because the ring buffer was full, [1] frames dropped
 * (deeper than FT_MAX_DEPTH or the frames map full) */
struct {
    __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
    __uint(max_entries, 2);
    __type(key, __u32);
    __type(value, __u64);
} lost SEC(".maps");

static __always_inline void count_lost(__u32 which)
{
    __u64 *n = bpf_map_lookup_elem(&lost, &which);

    if (n)
        *n += 1;
}

/* Submits an event: no wakeup (past 64 KiB waiting, one), except for the first
 * record of the ring (the producer position is then its own length). */
static __always_inline void submit(struct ft_event *e)
{
    __u64 flags = pyprobe_ringbuf_wakeup_flags(&events, sizeof(*e), PYPROBE_RINGBUF_THRESHOLD);

    if (bpf_ringbuf_query(&events, BPF_RB_PROD_POS) <= ((sizeof(*e) + 8 + 7) & ~7ULL))
        flags = BPF_RB_FORCE_WAKEUP;
    bpf_ringbuf_submit(e, flags);
}

static __always_inline void record_args(struct pt_regs *ctx, const struct ft_config *cfg,
                                        unsigned long long *args, char strs[FT_MAX_STRS][FT_STR_LEN])
{
    args[0] = PT_REGS_PARM1(ctx);
    args[1] = PT_REGS_PARM2(ctx);
    args[2] = PT_REGS_PARM3(ctx);
    args[3] = PT_REGS_PARM4(ctx);
    args[4] = PT_REGS_PARM5(ctx);
    args[5] = PT_REGS_PARM6(ctx);
    if (cfg->nargs > FT_REG_ARGS) {
        /* at entry [sp] is the return address; the 7th argument follows it */
        if (bpf_probe_read_user(&args[FT_REG_ARGS], FT_STACK_ARGS * 8, (void *)(PT_REGS_SP(ctx) + 8)))
            __builtin_memset(&args[FT_REG_ARGS], 0, FT_STACK_ARGS * 8);
    }
#pragma unroll
    for (int s = 0; s < FT_MAX_STRS; s++) {
        int idx = cfg->str_arg[s];

        if (idx < 0 || idx >= FT_MAX_ARGS)
            continue;
        if (bpf_probe_read_user_str(strs[s], FT_STR_LEN, (void *)args[idx]) < 0)
            strs[s][0] = 0;
    }
}

static __always_inline int on_entry(struct pt_regs *ctx)
{
    __u32 cookie = bpf_get_attach_cookie(ctx);
    const struct ft_config *cfg = bpf_map_lookup_elem(&funcs, &cookie);
    __u64 id = bpf_get_current_pid_tgid();
    __u32 tid = (__u32)id, zero = 0, one = 1;

    if (!cfg)
        return 0;
    if (cfg->flags & FT_CFG_ENTRY_EVENT) {
        struct ft_event *e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);

        if (!e) {
            count_lost(0);
            return 0;
        }
        e->ts_ns = bpf_ktime_get_ns();
        e->latency_ns = 0;
        e->pid = id >> 32;
        e->tid = tid;
        e->cookie = cookie;
        e->flags = FT_EV_ENTRY | FT_EV_ARGS;
        e->ret = 0;
        bpf_get_current_comm(e->comm, sizeof(e->comm));
        record_args(ctx, cfg, e->args, e->strs);
        submit(e);
        return 0;
    }

    __u32 *depth = bpf_map_lookup_elem(&depths, &tid);
    __u32 d;

    if (!depth) {
        if (bpf_map_update_elem(&depths, &tid, &one, BPF_ANY))
            return 0;
        d = 0;
    } else {
        d = *depth;
        *depth = d + 1;  /* only this thread touches its entry */
    }
    if (d >= FT_MAX_DEPTH) {
        count_lost(1);
        return 0;
    }
    struct ft_frame *f = bpf_map_lookup_elem(&scratch, &zero);

    if (!f)
        return 0;
    f->ts_ns = bpf_ktime_get_ns();
    f->cookie = cookie;
    record_args(ctx, cfg, f->args, f->strs);
    __u64 key = (__u64)tid << 32 | d;

    if (bpf_map_update_elem(&frames, &key, f, BPF_ANY))
        count_lost(1);
    return 0;
}

static __always_inline int on_return(struct pt_regs *ctx)
{
    __u64 now = bpf_ktime_get_ns();
    __u32 cookie = bpf_get_attach_cookie(ctx);
    __u64 id = bpf_get_current_pid_tgid();
    __u32 tid = (__u32)id;
    __u32 *depth = bpf_map_lookup_elem(&depths, &tid);
    struct ft_frame *f = NULL;
    __u64 key = 0;

    if (depth && *depth > 0) {
        __u32 d = *depth - 1;

        *depth = d;

        key = (__u64)tid << 32 | d;
        if (d < FT_MAX_DEPTH)
            f = bpf_map_lookup_elem(&frames, &key);
        if (d == 0)
            bpf_map_delete_elem(&depths, &tid);
    }
    struct ft_event *e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);

    if (!e) {
        count_lost(0);
        if (f)
            bpf_map_delete_elem(&frames, &key);
        return 0;
    }
    e->pid = id >> 32;
    e->tid = tid;
    e->cookie = cookie;
    e->ret = PT_REGS_RC(ctx);
    bpf_get_current_comm(e->comm, sizeof(e->comm));
    if (f && f->cookie == cookie) {
        e->ts_ns = f->ts_ns;
        e->latency_ns = now - f->ts_ns;
        e->flags = FT_EV_RETURN | FT_EV_ARGS;
        __builtin_memcpy(e->args, f->args, sizeof(e->args));
        __builtin_memcpy(e->strs, f->strs, sizeof(e->strs));
    } else {
        e->ts_ns = now;
        e->latency_ns = 0;
        e->flags = FT_EV_RETURN;
        __builtin_memset(e->args, 0, sizeof(e->args));
        __builtin_memset(e->strs, 0, sizeof(e->strs));
    }
    if (f)
        bpf_map_delete_elem(&frames, &key);
    submit(e);
    return 0;
}

SEC("uprobe")
int functrace_entry(struct pt_regs *ctx)
{
    return on_entry(ctx);
}

SEC("uretprobe")
int functrace_return(struct pt_regs *ctx)
{
    return on_return(ctx);
}

SEC("uprobe.multi")
int functrace_entry_multi(struct pt_regs *ctx)
{
    return on_entry(ctx);
}

SEC("uretprobe.multi")
int functrace_return_multi(struct pt_regs *ctx)
{
    return on_return(ctx);
}

/* A USDT probe: one event with its arguments (bpf_usdt_arg), the cookie as for uprobes. */
SEC("usdt")
int functrace_usdt(struct pt_regs *ctx)
{
    __u32 cookie = (__u32)bpf_usdt_cookie(ctx);
    const struct ft_config *cfg = bpf_map_lookup_elem(&funcs, &cookie);
    __u64 id = bpf_get_current_pid_tgid();
    int n = bpf_usdt_arg_cnt(ctx);

    if (!cfg)
        return 0;
    struct ft_event *e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);

    if (!e) {
        count_lost(0);
        return 0;
    }
    e->ts_ns = bpf_ktime_get_ns();
    e->latency_ns = 0;
    e->pid = id >> 32;
    e->tid = (__u32)id;
    e->cookie = cookie;
    e->flags = FT_EV_ENTRY | FT_EV_ARGS;
    e->ret = 0;
    bpf_get_current_comm(e->comm, sizeof(e->comm));
    for (int i = 0; i < FT_MAX_ARGS; i++) {
        long v = 0;

        if (i < n && bpf_usdt_arg(ctx, i, &v))
            v = 0;
        e->args[i] = v;
    }
#pragma unroll
    for (int s = 0; s < FT_MAX_STRS; s++) {
        int idx = cfg->str_arg[s];

        e->strs[s][0] = 0;
        if (idx < 0 || idx >= FT_MAX_ARGS)
            continue;
        if (bpf_probe_read_user_str(e->strs[s], FT_STR_LEN, (void *)e->args[idx]) < 0)
            e->strs[s][0] = 0;
    }
    submit(e);
    return 0;
}
