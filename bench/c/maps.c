// Baseline for bench_maps.py: dump a whole map with libbpf's bpf_map_lookup_batch, N times.
// usage: maps MAP_ID N [cpu]  -> prints the median milliseconds of one full dump, then the entry count;
//        with "cpu", milliseconds of CPU time (user + system) instead of wall time
#include <bpf/bpf.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static clockid_t clock_id = CLOCK_MONOTONIC;

static double now_ms(void)
{
    struct timespec t;

    clock_gettime(clock_id, &t);
    return t.tv_sec * 1e3 + t.tv_nsec / 1e6;
}

static int cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;

    return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
    struct bpf_map_info info = {};
    __u32 info_len = sizeof(info), total = 0;
    double *times;
    char *keys, *values;
    int fd, n;

    if (argc != 3 && !(argc == 4 && !strcmp(argv[3], "cpu"))) {
        fprintf(stderr, "usage: %s MAP_ID N [cpu]\n", argv[0]);
        return 2;
    }
    if (argc == 4)
        clock_id = CLOCK_PROCESS_CPUTIME_ID;
    fd = bpf_map_get_fd_by_id(atoi(argv[1]));
    n = atoi(argv[2]);
    if (fd < 0 || bpf_map_get_info_by_fd(fd, &info, &info_len)) {
        fprintf(stderr, "cannot open map id %s\n", argv[1]);
        return 1;
    }
    keys = malloc((size_t)info.max_entries * info.key_size);
    values = malloc((size_t)info.max_entries * info.value_size);
    times = calloc(n, sizeof(*times));
    for (int r = 0; r < n; r++) {
        LIBBPF_OPTS(bpf_map_batch_opts, opts);
        __u32 in = 0, out = 0, count;
        int first = 1, err;
        double start = now_ms();

        total = 0;
        for (;;) {
            count = 4096;
            err = bpf_map_lookup_batch(fd, first ? NULL : &in, &out, keys + (size_t)total * info.key_size,
                                       values + (size_t)total * info.value_size, &count, &opts);
            total += count;
            if (err == -ENOENT)
                break;
            if (err) {
                fprintf(stderr, "lookup_batch: %d\n", err);
                return 1;
            }
            first = 0;
            in = out;
        }
        times[r] = now_ms() - start;
    }
    qsort(times, n, sizeof(*times), cmp);
    printf("%.3f %u\n", times[n / 2], total);
    return 0;
}
