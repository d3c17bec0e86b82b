// Baseline for bench_attach.py: attach one uprobe per function with libbpf, by symbol name.
// usage: attach OBJ.bpf.o PROGRAM BINARY N   -> prints the mean microseconds per attach
// Functions are bench_fn_0000 ... of the generated binary; detaching (slow, RCU) is not timed.
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
    struct bpf_object *obj;
    struct bpf_program *prog;
    struct bpf_link **links;
    long n;

    if (argc != 5) {
        fprintf(stderr, "usage: %s OBJ PROGRAM BINARY N\n", argv[0]);
        return 2;
    }
    n = atol(argv[4]);
    libbpf_set_print(quiet);
    obj = bpf_object__open_file(argv[1], NULL);
    if (!obj || bpf_object__load(obj)) {
        fprintf(stderr, "load of %s failed\n", argv[1]);
        return 1;
    }
    prog = bpf_object__find_program_by_name(obj, argv[2]);
    if (!prog) {
        fprintf(stderr, "no program %s\n", argv[2]);
        return 1;
    }
    links = calloc(n, sizeof(*links));
    clock_gettime(CLOCK_MONOTONIC, &a);
    for (long i = 0; i < n; i++) {
        char name[32];
        LIBBPF_OPTS(bpf_uprobe_opts, opts, .func_name = name);

        snprintf(name, sizeof(name), "bench_fn_%04ld", i);
        links[i] = bpf_program__attach_uprobe_opts(prog, -1, argv[3], 0, &opts);
        if (!links[i]) {
            fprintf(stderr, "attach to %s failed\n", name);
            return 1;
        }
    }
    clock_gettime(CLOCK_MONOTONIC, &b);
    printf("%.1f\n", ((b.tv_sec - a.tv_sec) * 1e9 + (b.tv_nsec - a.tv_nsec)) / 1e3 / n);
    fflush(stdout);
    for (long i = 0; i < n; i++)
        bpf_link__destroy(links[i]);
    free(links);
    bpf_object__close(obj);
    return 0;
}
