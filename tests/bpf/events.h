/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* The event and argument structs shared by events.bpf.c, its tests and bench/bench_ringbuf.py. */
#ifndef EVENTS_H
#define EVENTS_H

/* 72 bytes: the event size of the ring buffer benchmark. */
struct event {
    __u64 seq;
    __u64 ts;
    __u32 pid;
    __u32 cpu;
    char comm[16];
    __u64 args[4];
};

/* Flags of emit_args. */
#define EMIT_NO_WAKEUP 1   /* submit with pyprobe_ringbuf_submit() (wakeup past a threshold) */
#define EMIT_SECOND 2      /* write to events2 instead of events */
#define EMIT_SMALL 4       /* every other event is 8 bytes long (variable-size records) */
#define EMIT_DISCARD_ODD 8 /* discard odd sequence numbers (reserved, then bpf_ringbuf_discard) */

/* Context of the SEC("syscall") program `emit`. */
struct emit_args {
    __u64 count;     /* events to emit */
    __u64 start_seq; /* sequence number of the first */
    __u64 flags;     /* EMIT_* */
    __u64 threshold; /* wakeup threshold in bytes with EMIT_NO_WAKEUP */
};

/* Counters, at key 0 of the `stats` array. */
struct stats {
    __u64 produced; /* events the programs tried to emit */
    __u64 dropped;  /* reserve/output failures (ring or perf buffer full) */
};

#endif
