// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* Event producers for the ring buffer and perf buffer tests and benchmark: a
 * SEC("syscall") program emits `count` sequence-numbered events into a ring
 * buffer in a bpf_loop, a raw_tp program does the same into a perf event array;
 * both run with BPF_PROG_RUN and count what they could not write. */
#include <pyprobe/common.h>
#include <pyprobe/ringbuf.h>
#include "events.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

struct {
    __uint(type, BPF_MAP_TYPE_RINGBUF);
    __uint(max_entries, 256 * 1024);
} events SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_RINGBUF);
    __uint(max_entries, 64 * 1024);
} events2 SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_PERF_EVENT_ARRAY);
    __uint(key_size, sizeof(__u32));
    __uint(value_size, sizeof(__u32));
} perf_events SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_ARRAY);
    __uint(max_entries, 1);
    __type(key, __u32);
    __type(value, struct stats);
} stats SEC(".maps");

/* Makes `struct event` part of the object's BTF for event_type="event". */
struct event _event_type = {};

/* The record types of events2 and perf_events, for readers given no event_type
 * (events has none: its readers read bytes unless told otherwise). */
PYPROBE_EVENT_TYPE(events2, struct event);
PYPROBE_EVENT_TYPE(perf_events, struct event);

struct loop_ctx {
    struct emit_args *args;
    struct stats *st;
    void *ctx;
};

static __always_inline void fill(struct event *e, __u64 seq)
{
    e->seq = seq;
    e->ts = bpf_ktime_get_ns();
    e->pid = bpf_get_current_pid_tgid() >> 32;
    e->cpu = bpf_get_smp_processor_id();
    __builtin_memset(e->comm, 0, sizeof(e->comm));
    e->comm[0] = 'e';
    e->comm[1] = 'v';
    e->args[0] = seq * 2;
    e->args[1] = seq * 3;
    e->args[2] = ~seq;
    e->args[3] = 72;
}

static long emit_one(__u64 i, struct loop_ctx *lc)
{
    struct emit_args *args = lc->args;
    __u64 seq = args->start_seq + i;
    __u64 flags = args->flags;
    void *ring = (flags & EMIT_SECOND) ? (void *)&events2 : (void *)&events;
    struct event *e;

    __sync_fetch_and_add(&lc->st->produced, 1);
    if ((flags & EMIT_SMALL) && (seq & 1)) {
        __u64 *small = bpf_ringbuf_reserve(ring, sizeof(__u64), 0);

        if (!small) {
            __sync_fetch_and_add(&lc->st->dropped, 1);
            return 0;
        }
        *small = seq;
        bpf_ringbuf_submit(small, 0);
        return 0;
    }
    e = bpf_ringbuf_reserve(ring, sizeof(*e), 0);
    if (!e) {
        __sync_fetch_and_add(&lc->st->dropped, 1);
        return 0;
    }
    fill(e, seq);
    if ((flags & EMIT_DISCARD_ODD) && (seq & 1))
        bpf_ringbuf_discard(e, 0);
    else if (flags & EMIT_NO_WAKEUP)
        pyprobe_ringbuf_submit(ring, e, args->threshold);
    else
        bpf_ringbuf_submit(e, 0);
    return 0;
}

SEC("syscall")
int emit(struct emit_args *args)
{
    __u32 zero = 0;
    struct loop_ctx lc = {.args = args};

    lc.st = bpf_map_lookup_elem(&stats, &zero);
    if (!lc.st)
        return -1;
    return bpf_loop(args->count, emit_one, &lc, 0);
}

struct perf_loop_ctx {
    void *ctx;
    __u64 start_seq;
    struct stats *st;
};

static long perf_one(__u64 i, struct perf_loop_ctx *lc)
{
    struct event e;

    fill(&e, lc->start_seq + i);
    __sync_fetch_and_add(&lc->st->produced, 1);
    if (bpf_perf_event_output(lc->ctx, &perf_events, BPF_F_CURRENT_CPU, &e, sizeof(e)) < 0)
        __sync_fetch_and_add(&lc->st->dropped, 1);
    return 0;
}

/* ctx: args[0] = count, args[1] = first sequence number. */
SEC("raw_tp")
int perf_emit(__u64 *ctx)
{
    __u32 zero = 0;
    struct perf_loop_ctx lc = {.ctx = ctx, .start_seq = ctx[1]};

    lc.st = bpf_map_lookup_elem(&stats, &zero);
    if (!lc.st)
        return -1;
    return bpf_loop(ctx[0], perf_one, &lc, 0);
}

/* bpf_printk output for the trace_pipe tests: one line per run, with the given tag. */
SEC("syscall")
int printk(__u64 *tag)
{
    bpf_printk("pyprobe-trace-test %llu", *tag);
    return 0;
}
