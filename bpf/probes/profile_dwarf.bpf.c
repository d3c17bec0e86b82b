// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* profile_dwarf: a perf_event program that copies, per sample, the user
 * registers and the top `stack_bytes` of the user stack of the interrupted
 * task (and its kernel stack id) into a ring buffer, so user space can unwind
 * binaries built without frame pointers from their .eh_frame (perf's
 * --call-graph dwarf). Needs bpf_task_pt_regs (Linux 5.15). */
#include <pyprobe/common.h>
#include "profile_dwarf.h"
#include "profile_pids.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

const volatile bool filter_pids = false;  /* only processes (tgids) in `pids` */
const volatile bool want_user = true;
const volatile bool want_kernel = true;
const volatile __u32 stack_bytes = 16384; /* a multiple of 8, at most PD_MAX_STACK */
const volatile bool fp_stacks = false;     /* also walk the frame pointers (to compare both modes) */

struct {
    __uint(type, BPF_MAP_TYPE_RINGBUF);
    __uint(max_entries, 8 << 20);
} samples SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_STACK_TRACE);
    __uint(max_entries, 16384);
    __uint(key_size, sizeof(__u32));
    __uint(value_size, 127 * sizeof(__u64));
} kstacks SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_STACK_TRACE);
    __uint(max_entries, 1); /* sized by user space when fp_stacks is set */
    __uint(key_size, sizeof(__u32));
    __uint(value_size, 127 * sizeof(__u64));
} ustacks SEC(".maps");

/* one record per CPU, indexed by CPU number (an array, not a per-CPU array,
 * whose values the kernel limits to 32 KiB); user space sets max_entries to
 * the number of possible CPUs */
struct {
    __uint(type, BPF_MAP_TYPE_ARRAY);
    __uint(max_entries, 1);
    __type(key, __u32);
    __type(value, struct pd_sample);
} scratch SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
    __uint(max_entries, 1);
    __type(key, __u32);
    __type(value, struct pd_stats);
} stats SEC(".maps");


SEC("perf_event")
int profile_dwarf(struct bpf_perf_event_data *ctx)
{
    __u64 id = bpf_get_current_pid_tgid();
    __u32 pid = id >> 32, zero = 0, cpu = bpf_get_smp_processor_id();
    struct task_struct *task;
    struct pd_sample *s;
    struct pd_stats *st;
    struct pt_regs *regs;
    __u64 sp, off = 0, want;

    if (pid == 0)
        return 0;
    if (filter_pids && !bpf_map_lookup_elem(&pids, &pid))
        return 0;
    s = bpf_map_lookup_elem(&scratch, &cpu);
    st = bpf_map_lookup_elem(&stats, &zero);
    if (!s || !st)
        return 0;
    s->pid = pid;
    s->tid = (__u32)id;
    s->flags = 0;
    s->stack_len = 0;
    s->kstack_id = want_kernel ? bpf_get_stackid(ctx, &kstacks, 0) : -1;
    s->ustack_id = fp_stacks ? bpf_get_stackid(ctx, &ustacks, BPF_F_USER_STACK) : -1;
    bpf_get_current_comm(s->comm, sizeof(s->comm));
    __builtin_memset(s->regs, 0, sizeof(s->regs));

    task = bpf_get_current_task_btf();
    if (want_user && task->mm) {
        /* the user registers: saved at the top of the task's kernel stack
         * whether the sample interrupted user or kernel mode */
        regs = (struct pt_regs *)bpf_task_pt_regs(task);
        if (regs && (regs->cs & 3) == 3) {
            s->regs[0] = regs->ax;
            s->regs[1] = regs->dx;
            s->regs[2] = regs->cx;
            s->regs[3] = regs->bx;
            s->regs[4] = regs->si;
            s->regs[5] = regs->di;
            s->regs[6] = regs->bp;
            s->regs[7] = regs->sp;
            s->regs[8] = regs->r8;
            s->regs[9] = regs->r9;
            s->regs[10] = regs->r10;
            s->regs[11] = regs->r11;
            s->regs[12] = regs->r12;
            s->regs[13] = regs->r13;
            s->regs[14] = regs->r14;
            s->regs[15] = regs->r15;
            s->regs[16] = regs->ip;
            s->flags = PD_USER;
            sp = regs->sp;
            want = stack_bytes;
            if (want > PD_MAX_STACK)
                want = PD_MAX_STACK;
            /* page by page, so that the copy stops at the first unmapped page
             * (the top of the stack) instead of failing as a whole */
#pragma unroll
            for (int i = 0; i < PD_MAX_STACK / PD_PAGE + 1; i++) {
                __u64 at = off, chunk = PD_PAGE - ((sp + off) & (PD_PAGE - 1));

                if (off >= want)
                    break;
                if (chunk > want - off)
                    chunk = want - off;
                /* the compiler knows chunk <= PD_PAGE already and would drop the
                 * test; verifiers before 6.7 do not learn it from comparing two
                 * registers, so hide the value from the compiler and test it */
                barrier_var(chunk);
                barrier_var(at);
                if (at > PD_MAX_STACK - 1 || chunk > PD_PAGE)
                    break;
                if (bpf_probe_read_user(&s->stack[at], chunk, (void *)(sp + at))) {
                    s->flags |= PD_TRUNCATED;
                    break;
                }
                off += chunk;
            }
            s->stack_len = off;
            if (s->flags & PD_TRUNCATED)
                __sync_fetch_and_add(&st->truncated, 1);
        }
    }
    if (!(s->flags & PD_USER) && s->kstack_id < 0)
        return 0;
    off = s->stack_len;
    if (off > PD_MAX_STACK)
        return 0;
    if (bpf_ringbuf_output(&samples, s, PD_HEADER_SIZE + off, BPF_RB_NO_WAKEUP)) {
        __sync_fetch_and_add(&st->dropped, 1);
        return 0;
    }
    __sync_fetch_and_add(&st->samples, 1);
    return 0;
}

/* With follow_forks (autoload), a child of a sampled process is sampled too. */
SEC("tp_btf/sched_process_fork")
int BPF_PROG(profile_dwarf_fork, struct task_struct *parent, struct task_struct *child)
{
    follow_fork(parent, child);
    return 0;
}
