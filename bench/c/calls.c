// The traced function of bench_trace.py: calls bc_work N times and prints the
// mean wall time per call in ns; with a period, calls it once every PERIOD_US
// microseconds until killed (the target of `trace -p PID`).
// usage: bench_calls N | bench_calls --every PERIOD_US
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

__attribute__((noipa)) long bc_work(long a, long b)
{
    return a * b + 1;
}

int main(int argc, char **argv)
{
    long n = argc > 1 ? atol(argv[1]) : 1000000;
    volatile long sink = 0;
    struct timespec t0, t1;

    if (argc > 2 && strcmp(argv[1], "--every") == 0) {
        useconds_t period = (useconds_t)atol(argv[2]);

        for (long i = 0;; i++) {
            sink = sink + bc_work(i, 3);
            usleep(period);
        }
    }

    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (long i = 0; i < n; i++)
        sink = sink + bc_work(i, 3);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    printf("%.1f\n", ((t1.tv_sec - t0.tv_sec) * 1e9 + (t1.tv_nsec - t0.tv_nsec)) / (double)(n > 0 ? n : 1));
    return (int)(sink & 0);
}
