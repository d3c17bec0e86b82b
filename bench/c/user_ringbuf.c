// Baseline for bench_user_ringbuf.py: a C producer of a user ring buffer. The map and program fds
// are inherited from the Python process that loaded tests/bpf/iter_user_ringbuf.bpf.o.
//
//   user_ringbuf MAP_FD PROG_FD ROUNDS PER_ROUND
//       ROUNDS times: PER_ROUND 16-byte records written with user_ring_buffer__reserve/__submit,
//       then the SEC("syscall") program `drain` run once with BPF_PROG_RUN (it drains them);
//       prints "RECORDS WRITE_S TOTAL_S" (time spent writing, and writing plus draining)
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <linux/types.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct urec {
    __u64 seq;
    __u64 value;
};

static double now(void)
{
    struct timespec t;

    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
    struct user_ring_buffer *rb;
    LIBBPF_OPTS(bpf_test_run_opts, run);
    double write_s = 0, start, begin;
    __u64 records = 0, seq = 0;
    int map_fd, prog_fd, rounds, per_round;

    if (argc != 5) {
        fprintf(stderr, "usage: %s MAP_FD PROG_FD ROUNDS PER_ROUND\n", argv[0]);
        return 2;
    }
    map_fd = atoi(argv[1]);
    prog_fd = atoi(argv[2]);
    rounds = atoi(argv[3]);
    per_round = atoi(argv[4]);
    rb = user_ring_buffer__new(map_fd, NULL);
    if (!rb) {
        perror("user_ring_buffer__new");
        return 1;
    }
    begin = now();
    for (int r = 0; r < rounds; r++) {
        start = now();
        for (int i = 0; i < per_round; i++) {
            struct urec *rec = user_ring_buffer__reserve(rb, sizeof(*rec));

            if (!rec)
                break;
            rec->seq = seq++;
            rec->value = 1;
            user_ring_buffer__submit(rb, rec);
            records++;
        }
        write_s += now() - start;
        if (bpf_prog_test_run_opts(prog_fd, &run)) {
            perror("bpf_prog_test_run_opts");
            return 1;
        }
    }
    printf("%llu %.6f %.6f\n", (unsigned long long)records, write_s, now() - begin);
    user_ring_buffer__free(rb);
    return 0;
}
