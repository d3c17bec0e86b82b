// The profiler's truth target: spends its CPU 3:1 in work::Shapes::heavy() and
// work::Shapes::light(), both called from one common caller, work::run().
// Built twice: proftarget_fp (-fno-omit-frame-pointer) and proftarget_nofp (-fomit-frame-pointer).
// usage: proftarget [SECONDS (default 5)]
// Both methods run the same serial multiply-add chain (one iteration costs the same in
// each); heavy() runs three times as many iterations as light(), so the split is 3:1.
// The length of each round varies at random, so that the rounds do not beat with the
// sampling period (a fixed round would show one method more often than its share).
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <sys/resource.h>
#include <unistd.h>

namespace work {

constexpr unsigned long kUnitMin = 100000;  // light()'s iterations per call: 0.15 to 0.45 ms
constexpr unsigned long kUnitSpread = 200000;

// Called at the end of each method so that neither is a leaf function: GCC gives a leaf no
// frame even with -fno-omit-frame-pointer, and a frame-pointer walk would then skip its caller.
__attribute__((noipa)) void done(unsigned long) {}

class Shapes {
public:
    __attribute__((noinline)) unsigned long heavy(unsigned long unit);
    __attribute__((noinline)) unsigned long light(unsigned long unit);

    volatile unsigned long multiplier = 6364136223846793005UL;
    volatile unsigned long increment = 1442695040888963407UL;
    volatile unsigned long sink = 0;
};

// The loop bodies are written out in each method (no shared helper), so each method is
// the leaf of its own samples; volatile loads keep the chain from being folded.
__attribute__((noinline)) unsigned long Shapes::heavy(unsigned long unit)
{
    unsigned long m = multiplier, c = increment, x = sink;
    for (unsigned long i = 0; i < 3 * unit; i++) {
        x = x * m + c;
        asm volatile("" : "+r"(x));
    }
    sink = x;
    done(x);
    return x;
}

__attribute__((noinline)) unsigned long Shapes::light(unsigned long unit)
{
    unsigned long m = multiplier, c = increment, x = sink ^ 1;
    for (unsigned long i = 0; i < unit; i++) {
        x = x * m + c;
        asm volatile("" : "+r"(x));
    }
    sink = x;
    done(x);
    return x;
}

__attribute__((noinline)) unsigned long run(Shapes &shapes, unsigned long unit)
{
    unsigned long x = shapes.heavy(unit);
    x ^= shapes.light(unit);
    return x;
}

}  // namespace work

static double now()
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

int main(int argc, char **argv)
{
    double seconds = argc > 1 ? std::atof(argv[1]) : 5.0;
    work::Shapes shapes;
    volatile unsigned long sink = 0;
    unsigned long rounds = 0;
    unsigned long seed = static_cast<unsigned long>(getpid());

    std::setvbuf(stdout, nullptr, _IOLBF, 0);
    std::printf("proftarget pid %d\n", static_cast<int>(getpid()));
    double end = now() + seconds;
    while (now() < end) {
        seed = seed * 6364136223846793005UL + 1442695040888963407UL;
        sink = sink ^ work::run(shapes, work::kUnitMin + (seed >> 33) % work::kUnitSpread);
        rounds++;
    }
    std::printf("proftarget rounds %lu\n", rounds);
    struct rusage usage;
    getrusage(RUSAGE_SELF, &usage);  // its own CPU time: what bench/bench_profile.py divides the rounds by
    std::printf("proftarget cpu %.6f\n",
                static_cast<double>(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) +
                    static_cast<double>(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) * 1e-6);
    return 0;
}
