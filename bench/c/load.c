// Baseline for bench_load.py: open + load + close of one BPF object with libbpf, N times.
// usage: load OBJ.bpf.o N   -> prints the mean microseconds per cycle
#include <bpf/libbpf.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static int quiet(enum libbpf_print_level level, const char *fmt, va_list ap)
{
    return 0;
}

int main(int argc, char **argv)
{
    struct timespec a, b;
    long n;

    if (argc != 3) {
        fprintf(stderr, "usage: %s OBJ N\n", argv[0]);
        return 2;
    }
    n = atol(argv[2]);
    libbpf_set_print(quiet);
    clock_gettime(CLOCK_MONOTONIC, &a);
    for (long i = 0; i < n; i++) {
        struct bpf_object *obj = bpf_object__open_file(argv[1], NULL);

        if (!obj || bpf_object__load(obj)) {
            fprintf(stderr, "load of %s failed\n", argv[1]);
            return 1;
        }
        bpf_object__close(obj);
    }
    clock_gettime(CLOCK_MONOTONIC, &b);
    if (n > 0)
        printf("%.1f\n", ((b.tv_sec - a.tv_sec) * 1e9 + (b.tv_nsec - a.tv_nsec)) / 1e3 / n);
    return 0;
}
