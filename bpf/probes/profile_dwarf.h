/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* The record profile_dwarf.bpf.c writes per sample: the user registers and
 * the top of the user stack, unwound later from .eh_frame in user space. */
#ifndef PROFILE_DWARF_H
#define PROFILE_DWARF_H

/* x86-64 registers in DWARF numbering: rax rdx rcx rbx rsi rdi rbp rsp r8..r15, then rip (16) */
#define PD_NREGS 17
/* the most stack bytes one sample carries */
#define PD_MAX_STACK 57344
#define PD_PAGE 4096
#define PD_COMM_LEN 16

/* flags */
#define PD_USER 1u       /* regs and stack hold the user state */
#define PD_TRUNCATED 2u  /* the stack copy ended at an unreadable page, short of what was asked */

struct pd_sample {
    __u32 pid;        /* tgid */
    __u32 tid;
    __s32 kstack_id;  /* id in the kstacks map, or a negative errno */
    __u32 stack_len;  /* bytes of stack[] that follow, copied from regs[7] (rsp) upward */
    __u32 flags;
    __s32 ustack_id;  /* frame-pointer walk of the same stack in `ustacks` (with fp_stacks), or a negative errno */
    __u64 regs[PD_NREGS];
    char comm[PD_COMM_LEN];
    /* a page more than is ever copied: a copy at offset < PD_MAX_STACK of at
     * most a page fits, which every verifier can prove from those two bounds */
    __u8 stack[PD_MAX_STACK + PD_PAGE];
};

#define PD_HEADER_SIZE 176  /* offsetof(struct pd_sample, stack) */

struct pd_stats {
    __u64 samples;    /* records written */
    __u64 dropped;    /* records the ring buffer had no room for */
    __u64 truncated;  /* stack copies cut short by an unreadable page */
};

#endif /* PROFILE_DWARF_H */
