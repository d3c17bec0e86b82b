// Baseline and producer for bench_ringbuf.py. The BPF program and map fds are
// inherited from the Python process that loaded tests/bpf/events.bpf.o.
//
//   ringbuf produce PROG_FD SECONDS COUNT FLAGS THRESHOLD
//       runs the SEC("syscall") program `emit` with BPF_PROG_RUN in a loop,
//       COUNT events per run; prints "RUNS ELAPSED_S"
//   ringbuf perf-produce PROG_FD SECONDS COUNT
//       the same with the raw_tp program `perf_emit`
//   ringbuf consume MAP_FD SECONDS [MAP_FD...]
//       libbpf ring_buffer__poll() consumer reading each event's seq (of every
//       ring given, through one ring_buffer); prints "EVENTS"
//   ringbuf perf-consume MAP_FD SECONDS PAGES
//       libbpf perf_buffer__poll() consumer; prints "EVENTS LOST"
//   ringbuf drain MAP_FD [MAP_FD...]
//       for each line read on stdin, one timed ring_buffer__consume() of the
//       rings the caller filled beforehand; prints "EVENTS ELAPSED_S" per line
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <linux/types.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "events.h" /* struct event and struct emit_args, shared with tests/bpf/events.bpf.c */


static volatile __u64 events, lost, seq_sum;

static double now(void)
{
    struct timespec t;

    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec / 1e9;
}

static int on_event(void *ctx, void *data, size_t size)
{
    seq_sum += ((struct event *)data)->seq;
    events++;
    return 0;
}

static void on_sample(void *ctx, int cpu, void *data, __u32 size)
{
    seq_sum += ((struct event *)data)->seq;
    events++;
}

static void on_lost(void *ctx, int cpu, __u64 count)
{
    lost += count;
}

static int produce(int prog_fd, double seconds, __u64 count, __u64 flags, __u64 threshold, int perf)
{
    struct emit_args args = {.count = count, .flags = flags, .threshold = threshold};
    __u64 raw_args[2] = {count, 0};
    double start = now(), end = start + seconds;
    long runs = 0;

    while (now() < end) {
        LIBBPF_OPTS(bpf_test_run_opts, opts);
        if (perf) {
            raw_args[1] = runs * count;
            opts.ctx_in = raw_args;
            opts.ctx_size_in = sizeof(raw_args);
        } else {
            args.start_seq = runs * count;
            opts.ctx_in = &args;
            opts.ctx_size_in = sizeof(args);
        }
        if (bpf_prog_test_run_opts(prog_fd, &opts) < 0) {
            perror("BPF_PROG_RUN");
            return 1;
        }
        runs++;
    }
    printf("%ld %.6f\n", runs, now() - start);
    return 0;
}

/* Adds the rings of argv[first...] after the first one; 0, or 1 after printing why not. */
static int add_rings(struct ring_buffer *rb, int argc, char **argv, int first)
{
    for (int i = first; i < argc; i++) {
        if (ring_buffer__add(rb, atoi(argv[i]), on_event, NULL) < 0) {
            perror("ring_buffer__add");
            return 1;
        }
    }
    return 0;
}

int main(int argc, char **argv)
{
    double end;

    if (argc >= 7 && !strcmp(argv[1], "produce"))
        return produce(atoi(argv[2]), atof(argv[3]), strtoull(argv[4], NULL, 0), strtoull(argv[5], NULL, 0),
                       strtoull(argv[6], NULL, 0), 0);
    if (argc >= 5 && !strcmp(argv[1], "perf-produce"))
        return produce(atoi(argv[2]), atof(argv[3]), strtoull(argv[4], NULL, 0), 0, 0, 1);
    if (argc >= 4 && !strcmp(argv[1], "consume")) {
        struct ring_buffer *rb = ring_buffer__new(atoi(argv[2]), on_event, NULL, NULL);

        if (!rb) {
            perror("ring_buffer__new");
            return 1;
        }
        if (add_rings(rb, argc, argv, 4))
            return 1;
        end = now() + atof(argv[3]);
        while (now() < end)
            ring_buffer__poll(rb, 100);
        ring_buffer__consume(rb);
        printf("%llu\n", (unsigned long long)events);
        ring_buffer__free(rb);
        return 0;
    }
    if (argc >= 3 && !strcmp(argv[1], "drain")) {
        struct ring_buffer *rb = ring_buffer__new(atoi(argv[2]), on_event, NULL, NULL);
        char line[16];

        if (!rb) {
            perror("ring_buffer__new");
            return 1;
        }
        if (add_rings(rb, argc, argv, 3))
            return 1;
        /* One round per line on stdin: the caller fills the ring, then asks for a drain. */
        while (fgets(line, sizeof(line), stdin)) {
            double start = now();

            events = 0;
            ring_buffer__consume(rb);
            end = now();
            printf("%llu %.6f\n", (unsigned long long)events, end - start);
            fflush(stdout);
        }
        ring_buffer__free(rb);
        return 0;
    }
    if (argc >= 5 && !strcmp(argv[1], "perf-consume")) {
        struct perf_buffer *pb = perf_buffer__new(atoi(argv[2]), atoi(argv[4]), on_sample, on_lost, NULL, NULL);

        if (!pb) {
            perror("perf_buffer__new");
            return 1;
        }
        end = now() + atof(argv[3]);
        while (now() < end)
            perf_buffer__poll(pb, 100);
        perf_buffer__consume(pb);
        printf("%llu %llu\n", (unsigned long long)events, (unsigned long long)lost);
        perf_buffer__free(pb);
        return 0;
    }
    fprintf(stderr, "usage: %s produce|perf-produce|consume|perf-consume|drain ...\n", argv[0]);
    return 2;
}
