// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* async_execsnoop: every exec() on the machine, from the sched:sched_process_exec tracepoint.
 *
 * The tracepoint's filename is a __data_loc field: its low 16 bits give the
 * string's offset from the start of the record. The parent's pid comes from the
 * task struct, read with CO-RE (BPF_CORE_READ) so the object runs on any kernel
 * with BTF. `target_ppid` (set before load) keeps only the children of one process.
 */
#include <pyprobe/common.h>
#include "async_execsnoop.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

const volatile __u32 target_ppid = 0; /* 0: every process */

struct {
    __uint(type, BPF_MAP_TYPE_RINGBUF);
    __uint(max_entries, 256 * 1024);
} events SEC(".maps");

PYPROBE_EVENT_TYPE(events, struct exec_event);

SEC("tracepoint/sched/sched_process_exec")
int handle_exec(struct trace_event_raw_sched_process_exec *ctx)
{
    struct task_struct *task = (struct task_struct *)bpf_get_current_task();
    __u32 ppid = BPF_CORE_READ(task, real_parent, tgid);
    struct exec_event *e;

    if (target_ppid && ppid != target_ppid)
        return 0;
    e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
    if (!e)
        return 0;
    e->pid = bpf_get_current_pid_tgid() >> 32;
    e->ppid = ppid;
    bpf_get_current_comm(e->comm, sizeof(e->comm));
    bpf_probe_read_kernel_str(e->filename, sizeof(e->filename), (void *)ctx + (ctx->__data_loc_filename & 0xFFFF));
    bpf_ringbuf_submit(e, 0);
    return 0;
}
