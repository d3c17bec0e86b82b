// The profiler's truth target: spends its CPU 3:1 in work::Shapes::heavy() and
// work::Shapes::light(), both called from one common caller, work::run().
// Built twice: proftarget_fp (-fno-omit-frame-pointer) and proftarget_nofp (-fomit-frame-pointer).
// usage: proftarget [SECONDS (default 5)]
// Both methods run the same serial multiply-add chain (one iteration costs the same in
// each); heavy() runs three times as many iterations as light(), so the split is 3:1.
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <unistd.h>

namespace work {

constexpr unsigned long kUnit = 200000;  // light()'s iterations per call (about 0.3 ms)

// Called at the end of each method so that neither is a leaf function: GCC gives a leaf no
// frame even with -fno-omit-frame-pointer, and a frame-pointer walk would then skip its caller.
__attribute__((noipa)) void done(unsigned long) {}

class Shapes {
public:
    __attribute__((noinline)) unsigned long heavy();
    __attribute__((noinline)) unsigned long light();

    volatile unsigned long multiplier = 6364136223846793005UL;
    volatile unsigned long increment = 1442695040888963407UL;
    volatile unsigned long sink = 0;
};

// The loop bodies are written out in each method (no shared helper), so each method is
// the leaf of its own samples; volatile loads keep the chain from being folded.
__attribute__((noinline)) unsigned long Shapes::heavy()
{
    unsigned long m = multiplier, c = increment, x = sink;
    for (unsigned long i = 0; i < 3 * kUnit; i++) {
        x = x * m + c;
        asm volatile("" : "+r"(x));
    }
    sink = x;
    done(x);
    return x;
}

__attribute__((noinline)) unsigned long Shapes::light()
{
    unsigned long m = multiplier, c = increment, x = sink ^ 1;
    for (unsigned long i = 0; i < kUnit; i++) {
        x = x * m + c;
        asm volatile("" : "+r"(x));
    }
    sink = x;
    done(x);
    return x;
}

__attribute__((noinline)) unsigned long run(Shapes &shapes)
{
    unsigned long x = shapes.heavy();
    x ^= shapes.light();
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

    std::setvbuf(stdout, nullptr, _IOLBF, 0);
    std::printf("proftarget pid %d\n", static_cast<int>(getpid()));
    double end = now() + seconds;
    while (now() < end) {
        sink = sink ^ work::run(shapes);
        rounds++;
    }
    std::printf("proftarget rounds %lu\n", rounds);
    return 0;
}
