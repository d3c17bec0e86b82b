// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* One program per attach kind: tracepoint, raw_tp, tp_btf, perf_event, XDP, USDT, and the kinds
 * this kernel may refuse (kprobe, fentry, fexit, lsm), which the tests load only where allowed. */
#include <pyprobe/common.h>
#include <bpf/usdt.bpf.h>

char LICENSE[] SEC("license") = "Dual BSD/GPL";

enum {
    TP_GETPID,
    RAW_TP,
    TP_BTF,
    PERF_EVENT,
    XDP_PACKETS,
    USDT_TICK,
    USDT_GATED,
    KPROBE,
    FENTRY,
    LSM,
    TP_AUTO,
    NSLOTS,
};

struct slot {
    __u64 count;
    __s64 values[4];
    __u32 pid;
};

struct {
    __uint(type, BPF_MAP_TYPE_ARRAY);
    __uint(max_entries, NSLOTS);
    __type(key, __u32);
    __type(value, struct slot);
} slots SEC(".maps");

const volatile __u32 target_pid = 0;

static __always_inline struct slot *count(__u32 key)
{
    struct slot *s = bpf_map_lookup_elem(&slots, &key);

    if (s)
        __sync_fetch_and_add(&s->count, 1);
    return s;
}

static __always_inline struct slot *hit(__u32 key)
{
    struct slot *s = count(key);

    if (s)
        s->pid = bpf_get_current_pid_tgid() >> 32;
    return s;
}

static __always_inline int mine(void)
{
    return !target_pid || (bpf_get_current_pid_tgid() >> 32) == target_pid;
}

SEC("tracepoint")
int on_tracepoint(struct trace_event_raw_sys_enter *ctx)
{
    if (mine())
        hit(TP_GETPID);
    return 0;
}

SEC("tracepoint/syscalls/sys_enter_getppid")
int on_getppid_auto(void *ctx)
{
    if (mine())
        hit(TP_AUTO);
    return 0;
}

SEC("raw_tp")
int on_raw_tp(struct bpf_raw_tracepoint_args *ctx)
{
    struct slot *s;

    if (!mine())
        return 0;
    s = hit(RAW_TP);
    if (s)
        s->values[0] = ctx->args[1]; /* sys_enter: (regs, id) */
    return 0;
}

SEC("tp_btf/sys_enter")
int BPF_PROG(on_tp_btf, struct pt_regs *regs, long id)
{
    struct slot *s;

    if (!mine())
        return 0;
    s = hit(TP_BTF);
    if (s)
        s->values[0] = id;
    return 0;
}

SEC("perf_event")
int on_perf_event(struct bpf_perf_event_data *ctx)
{
    struct slot *s = hit(PERF_EVENT);

    if (s)
        s->values[0] = ctx->sample_period;
    return 0;
}

SEC("xdp")
int on_xdp(struct xdp_md *ctx)
{
    /* No pid: XDP programs may call bpf_get_current_pid_tgid only from Linux 6.10. */
    struct slot *s = count(XDP_PACKETS);

    if (s)
        s->values[0] = ctx->data_end - ctx->data;
    return XDP_PASS;
}

SEC("usdt")
int BPF_USDT(on_tick, long i, int small, long big)
{
    struct slot *s = hit(USDT_TICK);

    if (s) {
        s->values[0] = i;
        s->values[1] = small;
        s->values[2] = big;
        s->values[3] = bpf_usdt_cookie(ctx);
    }
    return 0;
}

SEC("usdt")
int BPF_USDT(on_gated, long i, int neg)
{
    struct slot *s = hit(USDT_GATED);

    if (s) {
        s->values[0] = i;
        s->values[1] = neg;
    }
    return 0;
}

SEC("kprobe")
int on_kprobe(struct pt_regs *ctx)
{
    if (mine())
        hit(KPROBE);
    return 0;
}

SEC("fentry/do_getpgid")
int BPF_PROG(on_fentry, pid_t pid)
{
    if (mine())
        hit(FENTRY);
    return 0;
}

SEC("lsm/file_open")
int BPF_PROG(on_lsm, struct file *file)
{
    if (mine())
        hit(LSM);
    return 0;
}
