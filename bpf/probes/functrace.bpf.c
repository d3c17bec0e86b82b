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
 * pair with autoload.
 *
 * Strings: a uprobe that may not sleep reads them with bpf_probe_read_user_str,
 * which fails on a page the process has not touched yet (a string literal of a
 * freshly started program). The entry and USDT programs therefore come in a
 * sleepable variant too (SEC("uprobe.s"), "uprobe.multi.s", "usdt.s"; Linux
 * 6.0), which user space picks where the kernel has them: it reads strings with
 * the bpf_copy_from_user_str kfunc (Linux 6.12), or else faults the first byte
 * in with bpf_copy_from_user and reads again. A string that still cannot be read
 * sets its FT_EV_STR_FAULT bit, which the reader shows as unreadable.
 *
 * The kfunc is only in the build with FT_KFUNC_STR (functrace_kstr.bpf.c): a
 * kfunc is an extern that libbpf resolves against the kernel's BTF, which it
 * then reads and parses whole at every load (20 ms), so user space loads that
 * build only when a traced function has a string argument. */
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
    __uint(map_flags, BPF_F_NO_PREALLOC);
    __type(key, __u32);
    __type(value, __u32);
} depths SEC(".maps");

/* (thread id << 32 | depth) -> frame */
struct {
    __uint(type, BPF_MAP_TYPE_HASH);
    __uint(max_entries, 8192);
    __uint(map_flags, BPF_F_NO_PREALLOC);
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

/* Reads the user string at src into dst (FT_STR_LEN bytes, NUL-terminated); < 0 on failure.
 * Sleepable programs may take the page fault that brings the string in. */
static __always_inline long read_user_str(char *dst, const void *src, bool sleepable)
{
    long n;

    if (!sleepable)
        return bpf_probe_read_user_str(dst, FT_STR_LEN, src);
#ifdef FT_KFUNC_STR
    if (bpf_ksym_exists(bpf_copy_from_user_str))
        return bpf_copy_from_user_str(dst, FT_STR_LEN, src, 0);
#endif
    n = bpf_probe_read_user_str(dst, FT_STR_LEN, src);
    if (n >= 0)
        return n;
    if (bpf_copy_from_user(dst, 1, src))  /* faults the first page in */
        return -1;
    return bpf_probe_read_user_str(dst, FT_STR_LEN, src);
}

/* Reads the string arguments the config marks; returns the FT_EV_STR_FAULT bits of those that failed. */
static __always_inline __u32 record_strs(const struct ft_config *cfg, const unsigned long long *args,
                                         char strs[FT_MAX_STRS][FT_STR_LEN], bool sleepable)
{
    __u32 faults = 0;

#pragma unroll
    for (int s = 0; s < FT_MAX_STRS; s++) {
        int idx = cfg->str_arg[s];

        strs[s][0] = 0;
        if (idx < 0 || idx >= FT_MAX_ARGS || !args[idx])
            continue;
        if (read_user_str(strs[s], (const void *)args[idx], sleepable) < 0) {
            strs[s][0] = 0;
            faults |= FT_EV_STR_FAULT << s;
        }
    }
    return faults;
}

static __always_inline void record_regs(struct pt_regs *ctx, const struct ft_config *cfg, unsigned long long *args)
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
}

static __always_inline int on_entry(struct pt_regs *ctx, bool sleepable)
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
        record_regs(ctx, cfg, e->args);
        e->flags |= record_strs(cfg, e->args, e->strs, sleepable);
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
    record_regs(ctx, cfg, f->args);
    __u64 key = (__u64)tid << 32 | d;

    if (!sleepable) {
        f->str_faults = record_strs(cfg, f->args, f->strs, false);
        if (bpf_map_update_elem(&frames, &key, f, BPF_ANY))
            count_lost(1);
        return 0;
    }
    /* The per-CPU scratch frame may be reused by another task while this one sleeps in a
     * page fault: the frame goes to its own slot first, and the strings are read into that. */
    f->str_faults = 0;
#pragma unroll
    for (int s = 0; s < FT_MAX_STRS; s++)
        f->strs[s][0] = 0;
    if (bpf_map_update_elem(&frames, &key, f, BPF_ANY)) {
        count_lost(1);
        return 0;
    }
    struct ft_frame *slot = bpf_map_lookup_elem(&frames, &key);  /* only this thread touches it */

    if (slot)
        slot->str_faults = record_strs(cfg, slot->args, slot->strs, true);
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
        e->flags = FT_EV_RETURN | FT_EV_ARGS | (f->str_faults & (((1u << FT_MAX_STRS) - 1) * FT_EV_STR_FAULT));
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
    return on_entry(ctx, false);
}

SEC("uprobe.s")
int functrace_entry_s(struct pt_regs *ctx)
{
    return on_entry(ctx, true);
}

SEC("uretprobe")
int functrace_return(struct pt_regs *ctx)
{
    return on_return(ctx);
}

SEC("uprobe.multi")
int functrace_entry_multi(struct pt_regs *ctx)
{
    return on_entry(ctx, false);
}

SEC("uprobe.multi.s")
int functrace_entry_multi_s(struct pt_regs *ctx)
{
    return on_entry(ctx, true);
}

SEC("uretprobe.multi")
int functrace_return_multi(struct pt_regs *ctx)
{
    return on_return(ctx);
}

/* A USDT probe: one event with its arguments (bpf_usdt_arg), the cookie as for uprobes. */
static __always_inline int on_usdt(struct pt_regs *ctx, bool sleepable)
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
    e->flags |= record_strs(cfg, e->args, e->strs, sleepable);
    submit(e);
    return 0;
}

SEC("usdt")
int functrace_usdt(struct pt_regs *ctx)
{
    return on_usdt(ctx, false);
}

SEC("usdt.s")
int functrace_usdt_s(struct pt_regs *ctx)
{
    return on_usdt(ctx, true);
}
