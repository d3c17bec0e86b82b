// Target of the USDT tests: two probes of provider "pyprobe_test", one behind a semaphore.
// usage: usdt_target [ITERATIONS (-1: forever)] [SLEEP_US between iterations]
// Prints "semaphore on" the first time it sees the semaphore set by a tracer.
#define _SDT_HAS_SEMAPHORES 1
#include <stdio.h>
#include <stdlib.h>
#include <sys/sdt.h>
#include <unistd.h>

// With _SDT_HAS_SEMAPHORES every probe has a semaphore; only "gated" is checked by the code.
unsigned short pyprobe_test_tick_semaphore __attribute__((unused, section(".probes")));
unsigned short pyprobe_test_gated_semaphore __attribute__((unused, section(".probes")));

int main(int argc, char **argv)
{
    long iterations = argc > 1 ? atol(argv[1]) : -1;
    long sleep_us = argc > 2 ? atol(argv[2]) : 100000;
    int announced = 0;

    setvbuf(stdout, NULL, _IOLBF, 0);
    printf("usdt_target pid %d\n", (int)getpid());
    for (long i = 0; iterations < 0 || i < iterations; i++) {
        long big = 1000000000000L + i;
        int small = (int)(i % 1000);

        STAP_PROBE3(pyprobe_test, tick, i, small, big);
        if (pyprobe_test_gated_semaphore) {
            if (!announced) {
                printf("semaphore on\n");
                announced = 1;
            }
            STAP_PROBE2(pyprobe_test, gated, i, -small);
        }
        if (sleep_us > 0)
            usleep((useconds_t)sleep_us);
    }
    return 0;
}
