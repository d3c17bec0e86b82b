// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* usdt: a USDT (statically defined) probe and its arguments.
 *
 * A program's author marks a place with STAP_PROBE3(pyprobe_test, tick, i, small, big)
 * (<sys/sdt.h>); the compiler records in an ELF note where each argument lives (a
 * register, a constant, memory). libbpf's usdt.bpf.h reads the arguments from those
 * specs: BPF_USDT() below declares them typed, as for a function.
 */
#include <pyprobe/common.h>
#include <bpf/usdt.bpf.h>
#include "usdt.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

struct {
    __uint(type, BPF_MAP_TYPE_RINGBUF);
    __uint(max_entries, 256 * 1024);
} events SEC(".maps");

PYPROBE_EVENT_TYPE(events, struct tick_event);

SEC("usdt")
int BPF_USDT(handle_tick, long i, int small, long big)
{
    struct tick_event *e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);

    if (!e)
        return 0;
    e->pid = bpf_get_current_pid_tgid() >> 32;
    e->i = i;
    e->small = small;
    e->big = big;
    bpf_ringbuf_submit(e, 0);
    return 0;
}
