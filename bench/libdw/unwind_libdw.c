/* bench_unwind's reference: the same profile_dwarf records unwound by elfutils' libdwfl,
 * the way perf's unwind-libdw.c does (dwfl_attach_state with our own memory_read and
 * set_initial_registers), with one Dwfl for the whole run (its CFI cache warm).
 * Built by bench/bench_unwind.py when libdw-dev is installed; not part of pyprobe.
 *
 *   unwind_libdw PID RECORDS_FILE REPEAT   (the process must still run: its maps are read)
 * RECORDS_FILE: records back to back, each a u32 length and a struct pd_sample of that length.
 * Prints: samples, frames, best ns per sample. */
#include <elfutils/libdwfl.h>
#include <dwarf.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define HEADER 176
#define NREGS 17
#define MAX_FRAMES 127

struct rec {
    uint64_t regs[NREGS];
    const uint8_t *stack;
    uint64_t len;
};

static const struct rec *cur;
static pid_t target;

static pid_t next_thread(Dwfl *dwfl, void *arg, void **thread_argp)
{
    (void)dwfl, (void)arg;
    if (*thread_argp)
        return 0;
    *thread_argp = (void *)1;
    return target;
}

static bool memory_read(Dwfl *dwfl, Dwarf_Addr addr, Dwarf_Word *result, void *arg)
{
    uint64_t sp = cur->regs[7];

    (void)dwfl, (void)arg;
    if (addr < sp || addr - sp > cur->len || cur->len - (addr - sp) < 8)
        return false;
    memcpy(result, cur->stack + (addr - sp), 8);
    return true;
}

static bool set_initial_registers(Dwfl_Thread *thread, void *arg)
{
    Dwarf_Word regs[NREGS];

    (void)arg;
    for (int i = 0; i < NREGS; i++)
        regs[i] = cur->regs[i];
    return dwfl_thread_state_registers(thread, 0, NREGS, regs);
}

static const Dwfl_Thread_Callbacks thread_callbacks = {
    .next_thread = next_thread,
    .memory_read = memory_read,
    .set_initial_registers = set_initial_registers,
};

static int frame_cb(Dwfl_Frame *state, void *arg)
{
    int *n = arg;
    Dwarf_Addr pc;

    if (!dwfl_frame_pc(state, &pc, NULL))
        return DWARF_CB_ABORT;
    return ++*n >= MAX_FRAMES ? DWARF_CB_ABORT : DWARF_CB_OK;
}

int main(int argc, char **argv)
{
    static const Dwfl_Callbacks callbacks = {
        .find_elf = dwfl_linux_proc_find_elf,
        .find_debuginfo = dwfl_standard_find_debuginfo,
    };
    FILE *f;
    uint8_t *data;
    long size;
    struct rec *recs;
    size_t n = 0, cap = 1024;
    long frames = 0;
    double best = 1e30;
    int repeat;
    Dwfl *dwfl;

    if (argc != 4)
        return 2;
    target = atoi(argv[1]);
    repeat = atoi(argv[3]);
    f = fopen(argv[2], "rb");
    if (!f)
        return 1;
    fseek(f, 0, SEEK_END);
    size = ftell(f);
    fseek(f, 0, SEEK_SET);
    data = malloc(size);
    if (fread(data, 1, size, f) != (size_t)size)
        return 1;
    fclose(f);
    recs = malloc(cap * sizeof(*recs));
    for (long off = 0; off + 4 <= size;) {
        uint32_t len, stack_len, flags;

        memcpy(&len, data + off, 4);
        off += 4;
        if (len > size - off)
            break;
        if (len >= HEADER) {
            memcpy(&stack_len, data + off + 12, 4);
            memcpy(&flags, data + off + 16, 4);
            if ((flags & 1) && stack_len <= len - HEADER) {
                if (n == cap)
                    recs = realloc(recs, (cap *= 2) * sizeof(*recs));
                memcpy(recs[n].regs, data + off + 24, sizeof(recs[n].regs));
                recs[n].stack = data + off + HEADER;
                recs[n].len = stack_len;
                n++;
            }
        }
        off += len;
    }
    dwfl = dwfl_begin(&callbacks);
    if (!dwfl || dwfl_linux_proc_report(dwfl, target) != 0 || dwfl_report_end(dwfl, NULL, NULL) != 0) {
        fprintf(stderr, "dwfl report: %s\n", dwfl_errmsg(-1));
        return 1;
    }
    if (!dwfl_attach_state(dwfl, NULL, target, &thread_callbacks, NULL)) {
        fprintf(stderr, "dwfl_attach_state: %s\n", dwfl_errmsg(-1));
        return 1;
    }
    for (int r = 0; r < repeat; r++) {
        struct timespec t0, t1;
        long total = 0;

        clock_gettime(CLOCK_MONOTONIC, &t0);
        for (size_t i = 0; i < n; i++) {
            int k = 0;

            cur = &recs[i];
            dwfl_getthread_frames(dwfl, target, frame_cb, &k);
            total += k;
        }
        clock_gettime(CLOCK_MONOTONIC, &t1);
        double ns = ((t1.tv_sec - t0.tv_sec) * 1e9 + (t1.tv_nsec - t0.tv_nsec)) / (n ? n : 1);
        if (ns < best)
            best = ns;
        frames = total;
    }
    printf("%zu %ld %.0f\n", n, frames, best);
    dwfl_end(dwfl);
    return 0;
}
