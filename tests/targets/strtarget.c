// A C target for the command's tests: a string argument, eight arguments, recursion.
// usage: strtarget [ITERATIONS (-1: forever)] [SLEEP_US between iterations]
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

__attribute__((noipa)) int st_greet(const char *name, int n)
{
    return (int)strlen(name) + n;
}

__attribute__((noipa)) long st_eight(long a1, long a2, long a3, long a4, long a5, long a6, long a7, long a8)
{
    return a1 + a2 + a3 + a4 + a5 + a6 + a7 + a8;
}

__attribute__((noipa)) int st_depth(int n)
{
    return n <= 0 ? 0 : 1 + st_depth(n - 1);
}

int main(int argc, char **argv)
{
    static const char *names[] = {"alice", "bob", "carol"};
    long iterations = argc > 1 ? atol(argv[1]) : -1;
    long sleep_us = argc > 2 ? atol(argv[2]) : 100000;
    volatile long sink = 0;

    setvbuf(stdout, NULL, _IOLBF, 0);
    printf("strtarget pid %d\n", (int)getpid());
    for (long i = 0; iterations < 0 || i < iterations; i++) {
        sink = sink + st_greet(names[i % 3], (int)i);
        sink = sink + st_eight(1, 2, 3, 4, 5, 6, 7 + i, 8);
        sink = sink + st_depth(3);
        if (sleep_us > 0)
            usleep((useconds_t)sleep_us);
    }
    return (int)(sink & 0);
}
