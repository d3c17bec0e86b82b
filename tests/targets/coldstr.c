// A target whose string argument sits on a page the process has not touched when the call is made:
// the string is in the middle of a 256 KiB read-only table of its own section, far from anything the
// program reads before (the kernel maps pages around a fault only within 64 KiB), so a uprobe that
// cannot take a page fault cannot read it on the first call.
// usage: coldstr [ITERATIONS] — cold_greet(the cold string, i) and cold_peek(an unmapped address) each time.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define COLD_SIZE (256 * 1024)
#define COLD_AT (128 * 1024)

__attribute__((section(".coldstr"), aligned(4096), used)) const char cold_table[COLD_SIZE] = {
    [COLD_AT] = 'c', 'o', 'l', 'd', '-', 'h', 'e', 'l', 'l', 'o',
};

__attribute__((noipa)) int cold_greet(const char *name, int times)
{
    return (int)strlen(name) + times;
}

__attribute__((noipa)) long cold_peek(const char *where)
{
    return (long)where;  // never read: the address is not mapped
}

int main(int argc, char **argv)
{
    long iterations = argc > 1 ? atol(argv[1]) : 1;
    volatile long sink = 0;

    for (long i = 0; i < iterations; i++) {
        sink = sink + cold_greet(&cold_table[COLD_AT], (int)i);
        sink = sink + cold_peek((const char *)0x10);
    }
    printf("coldstr pid %d\n", (int)getpid());
    return (int)(sink & 0);
}
