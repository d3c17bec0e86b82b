/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* Function arguments at entry of a uprobe or kprobe, including those passed on the stack.
 *
 *   long v = pyprobe_uarg(ctx, 7);   // 7th argument of a user function (uprobe at its entry)
 *   long k = pyprobe_karg(ctx, 7);   // 7th argument of a kernel function (kprobe at its entry)
 *
 * `n` counts from 1 and must be a constant. Integer and pointer arguments only (one machine
 * word each; structs passed by value shift the following arguments).
 *
 * x86-64 (System V): arguments 1-6 in rdi, rsi, rdx, rcx, r8, r9; at entry rsp points to the
 *   return address, so the 7th argument is the word above it (rsp + 8), the 8th at rsp + 16 ...
 * arm64 (AAPCS64): arguments 1-8 in x0-x7; the return address is in x30, not on the stack,
 *   so the 9th argument is at sp, the 10th at sp + 8 ...
 *
 * Valid at function entry only: once the function's prologue ran, the stack pointer moved.
 * A stack read that faults returns 0.
 */
#ifndef PYPROBE_ARGS_H
#define PYPROBE_ARGS_H

#include <pyprobe/common.h>

#if defined(__TARGET_ARCH_x86)
#define PYPROBE_REG_ARGS 6
/* Offset from the entry stack pointer of the first stack argument (skips the return address). */
#define PYPROBE_STACK_ARG0 8
#elif defined(__TARGET_ARCH_arm64)
#define PYPROBE_REG_ARGS 8
#define PYPROBE_STACK_ARG0 0
#else
#error "pyprobe/args.h supports x86-64 and arm64 (define __TARGET_ARCH_x86 or __TARGET_ARCH_arm64)"
#endif

static __always_inline unsigned long pyprobe_reg_arg(struct pt_regs *ctx, int n)
{
    switch (n) {
    case 1: return PT_REGS_PARM1(ctx);
    case 2: return PT_REGS_PARM2(ctx);
    case 3: return PT_REGS_PARM3(ctx);
    case 4: return PT_REGS_PARM4(ctx);
    case 5: return PT_REGS_PARM5(ctx);
#if PYPROBE_REG_ARGS >= 6
    case 6: return PT_REGS_PARM6(ctx);
#endif
#if PYPROBE_REG_ARGS >= 8
    case 7: return PT_REGS_PARM7(ctx);
    case 8: return PT_REGS_PARM8(ctx);
#endif
    default: return 0;
    }
}

/* Address of the n-th argument when it is on the stack (n > PYPROBE_REG_ARGS). */
static __always_inline unsigned long pyprobe_stack_arg_addr(struct pt_regs *ctx, int n)
{
    return PT_REGS_SP(ctx) + PYPROBE_STACK_ARG0 + 8UL * (unsigned long)(n - PYPROBE_REG_ARGS - 1);
}

/* The n-th argument (from 1) of a user-space function, in a uprobe at its entry. */
static __always_inline unsigned long pyprobe_uarg(struct pt_regs *ctx, int n)
{
    unsigned long v = 0;

    if (n <= PYPROBE_REG_ARGS)
        return pyprobe_reg_arg(ctx, n);
    if (bpf_probe_read_user(&v, sizeof(v), (void *)pyprobe_stack_arg_addr(ctx, n)))
        return 0;
    return v;
}

/* The n-th argument (from 1) of a kernel function, in a kprobe at its entry. */
static __always_inline unsigned long pyprobe_karg(struct pt_regs *ctx, int n)
{
    unsigned long v = 0;

    if (n <= PYPROBE_REG_ARGS)
        return pyprobe_reg_arg(ctx, n);
    if (bpf_probe_read_kernel(&v, sizeof(v), (void *)pyprobe_stack_arg_addr(ctx, n)))
        return 0;
    return v;
}

#endif /* PYPROBE_ARGS_H */
