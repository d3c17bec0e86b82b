// Target of the attach tests: an eight-argument function (two arguments on the stack on x86-64),
// overloads that make a bare name ambiguous, a function in a namespace and overloads in one (ns::compute).
// usage: args8 [ITERATIONS (-1: forever)] [SLEEP_US between iterations]
#include <cstdio>
#include <cstdlib>
#include <unistd.h>

extern "C" __attribute__((noipa)) long args8(long a, long b, long c, long d, long e, long f, long g, long h)
{
    return a + b + c + d + e + f + g + h;
}

__attribute__((noipa)) int overload(int x)
{
    return x + 1;
}

__attribute__((noipa)) double overload(double x)
{
    return x + 1.0;
}

namespace probe {
__attribute__((noipa)) int scaled(int x, int factor)
{
    return x * factor;
}
} // namespace probe

namespace ns {
__attribute__((noipa)) int compute(int a, int b)
{
    return a * b;
}

__attribute__((noipa)) long compute(long a)
{
    return a + 100;
}

__attribute__((noipa)) int compute(const char *s, int n)
{
    return s[0] + n;
}
} // namespace ns

int main(int argc, char **argv)
{
    long iterations = argc > 1 ? std::atol(argv[1]) : -1;
    long sleep_us = argc > 2 ? std::atol(argv[2]) : 100000;
    volatile double sink = 0;

    std::setvbuf(stdout, nullptr, _IOLBF, 0);
    std::printf("args8 pid %d\n", static_cast<int>(getpid()));
    for (long i = 0; iterations < 0 || i < iterations; i++) {
        sink = sink + args8(1, 2, 3, 4, 5, 6, 7 + i % 10, 8000 + i % 10);
        sink = sink + overload(static_cast<int>(i)) + overload(0.5) + probe::scaled(static_cast<int>(i), 3);
        sink = sink + ns::compute(static_cast<int>(i), 3) + ns::compute(static_cast<long>(i)) + ns::compute("x", 1);
        if (sleep_us > 0)
            usleep(static_cast<useconds_t>(sleep_us));
    }
    return static_cast<int>(sink) & 0;
}
