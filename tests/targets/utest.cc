// The C++ target of the tests and the demo: calls utest_add and utest_sub in a loop.
// usage: utest [ITERATIONS (-1: forever)] [SLEEP_US between iterations]
#include <cstdio>
#include <cstdlib>
#include <unistd.h>

__attribute__((noipa)) int utest_add(int a, int b)
{
    return a + b;
}

__attribute__((noipa)) int utest_sub(int a, int b)
{
    return a - b;
}

int main(int argc, char **argv)
{
    long iterations = argc > 1 ? std::atol(argv[1]) : -1;
    long sleep_us = argc > 2 ? std::atol(argv[2]) : 100000;
    volatile long sink = 0;

    std::setvbuf(stdout, nullptr, _IOLBF, 0);
    std::printf("utest pid %d\n", static_cast<int>(getpid()));
    for (long i = 0; iterations < 0 || i < iterations; i++) {
        sink = sink + utest_add(static_cast<int>(i % 100), 3);
        sink = sink + utest_sub(static_cast<int>(i % 100), 7);
        if (sleep_us > 0)
            usleep(static_cast<useconds_t>(sleep_us));
    }
    return static_cast<int>(sink & 0);
}
