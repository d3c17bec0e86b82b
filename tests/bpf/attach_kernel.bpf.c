// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* Kernel-only attach kinds, for kernels that allow them (the test matrix's 6.1 and 6.12):
 * kprobe and kretprobe on do_mmap (arguments 7 and 8 are on the stack), fentry and fexit on a
 * kernel function and on a BPF program's global function, fmod_ret on the kernel's test function
 * and on an LSM hook, and an LSM program that deny one file. Each test loads only the programs it needs. */
#include <pyprobe/common.h>
#include <pyprobe/args.h>

char LICENSE[] SEC("license") = "Dual BSD/GPL";

#define EPERM 1
#define EACCES 13

const volatile __u32 target_pid = 0;
/* do_mmap calls with this length are recorded. */
const volatile __u64 target_len = 0;
/* Which argument of do_mmap is `unsigned long *populate`: 7 before Linux 6.6, 8 after vm_flags
 * came back as the 6th. */
const volatile int populate_arg = 8;

/* do_mmap: the raw arguments at entry, the words arguments 7, 8 and 9 point to at entry (0 where
 * an argument is no kernel address), and at return the return value and what *populate was set
 * to. */
struct mmap_call {
    __u64 args[9];
    __u64 deref[3];
    __u64 cookie;
    __u64 ret;
    __u64 populated;
    __u64 entries;
    __u64 returns;
};
struct mmap_call mmap_call = {};

struct {
    __uint(type, BPF_MAP_TYPE_HASH);
    __uint(max_entries, 64);
    __type(key, __u32);
    __type(value, __u64);
} populate_ptr SEC(".maps");

static __always_inline int mine(void)
{
    return (bpf_get_current_pid_tgid() >> 32) == target_pid;
}

static __always_inline __u64 deref(__u64 addr)
{
    __u64 v = 0;

    bpf_probe_read_kernel(&v, sizeof(v), (void *)addr);
    return v;
}

SEC("kprobe")
int on_do_mmap(struct pt_regs *ctx)
{
    __u32 tid = (__u32)bpf_get_current_pid_tgid();
    __u64 ptr;

    if (!mine() || PT_REGS_PARM3(ctx) != target_len)
        return 0;
    mmap_call.args[0] = pyprobe_karg(ctx, 1);
    mmap_call.args[1] = pyprobe_karg(ctx, 2);
    mmap_call.args[2] = pyprobe_karg(ctx, 3);
    mmap_call.args[3] = pyprobe_karg(ctx, 4);
    mmap_call.args[4] = pyprobe_karg(ctx, 5);
    mmap_call.args[5] = pyprobe_karg(ctx, 6);
    mmap_call.args[6] = pyprobe_karg(ctx, 7);
    mmap_call.args[7] = pyprobe_karg(ctx, 8);
    mmap_call.args[8] = pyprobe_karg(ctx, 9);
    mmap_call.deref[0] = deref(mmap_call.args[6]);
    mmap_call.deref[1] = deref(mmap_call.args[7]);
    mmap_call.deref[2] = deref(mmap_call.args[8]);
    mmap_call.cookie = bpf_get_attach_cookie(ctx);
    ptr = populate_arg == 7 ? mmap_call.args[6] : mmap_call.args[7];
    bpf_map_update_elem(&populate_ptr, &tid, &ptr, BPF_ANY);
    __sync_fetch_and_add(&mmap_call.entries, 1);
    return 0;
}

SEC("kretprobe")
int on_do_mmap_return(struct pt_regs *ctx)
{
    __u32 tid = (__u32)bpf_get_current_pid_tgid();
    __u64 *ptr = bpf_map_lookup_elem(&populate_ptr, &tid);

    if (!ptr)
        return 0;
    mmap_call.ret = PT_REGS_RC(ctx);
    mmap_call.populated = deref(*ptr);
    bpf_map_delete_elem(&populate_ptr, &tid);
    __sync_fetch_and_add(&mmap_call.returns, 1);
    return 0;
}

/* fentry and fexit on a kernel function: do_getpgid(pid_t pid) returns the process group. */
struct getpgid_call {
    __s64 entry_pid;
    __s64 exit_pid;
    __s64 ret;
    __u64 entries;
    __u64 exits;
};
struct getpgid_call getpgid_call = {};

SEC("fentry/do_getpgid")
int BPF_PROG(on_getpgid_entry, pid_t pid)
{
    if (mine()) {
        getpgid_call.entry_pid = pid;
        __sync_fetch_and_add(&getpgid_call.entries, 1);
    }
    return 0;
}

SEC("fexit/do_getpgid")
int BPF_PROG(on_getpgid_exit, pid_t pid, int ret)
{
    if (mine()) {
        getpgid_call.exit_pid = pid;
        getpgid_call.ret = ret;
        __sync_fetch_and_add(&getpgid_call.exits, 1);
    }
    return 0;
}

/* fentry and fexit on a BPF program's global function (set_attach_target before load):
 * attach_freplace.bpf.c's `decide(int x)`. */
struct bpf_call {
    __s64 entry_x;
    __s64 exit_x;
    __s64 ret;
    __u64 entries;
    __u64 exits;
};
struct bpf_call bpf_call = {};

SEC("fentry")
int BPF_PROG(on_bpf_entry, int x)
{
    bpf_call.entry_x = x;
    __sync_fetch_and_add(&bpf_call.entries, 1);
    return 0;
}

SEC("fexit")
int BPF_PROG(on_bpf_exit, int x, int ret)
{
    bpf_call.exit_x = x;
    bpf_call.ret = ret;
    __sync_fetch_and_add(&bpf_call.exits, 1);
    return 0;
}

/* fmod_ret on the kernel's test function int bpf_modify_return_test(int a, int *b), which
 * BPF_PROG_TEST_RUN of an fmod_ret program calls. A non-zero return skips the function. */
const volatile int fmod_retval = 0;
__s64 fmod_a = 0;
__s64 fmod_prev_ret = -1;
__u64 fmod_calls = 0;

SEC("fmod_ret/bpf_modify_return_test")
int BPF_PROG(on_modify_return, int a, int *b, int ret)
{
    fmod_a = a;
    fmod_prev_ret = ret;
    __sync_fetch_and_add(&fmod_calls, 1);
    return fmod_retval;
}

/* LSM and fmod_ret on an LSM hook: refuse to the test's process opening the file with inode
 * deny_ino on device deny_dev (the kernel's encoding: major << 20 | minor), set after load. */
__u64 deny_ino = 0;
__u64 deny_dev = 0;
__u64 lsm_denied = 0;
__u64 lsm_calls = 0;
__u64 fmod_denied = 0;

static __always_inline int denied(struct file *file)
{
    return deny_ino && BPF_CORE_READ(file, f_inode, i_ino) == deny_ino &&
           BPF_CORE_READ(file, f_inode, i_sb, s_dev) == deny_dev;
}

SEC("lsm/file_open")
int BPF_PROG(deny_file_open, struct file *file, int ret)
{
    if (ret || !mine())
        return ret;
    __sync_fetch_and_add(&lsm_calls, 1);
    if (denied(file)) {
        __sync_fetch_and_add(&lsm_denied, 1);
        return -EPERM;
    }
    return 0;
}

/* fmod_ret may modify any LSM hook (security_*), on every kernel that has fmod_ret. */
SEC("fmod_ret/security_file_open")
int BPF_PROG(fail_security_file_open, struct file *file, int ret)
{
    if (ret || !mine())
        return ret;
    if (denied(file)) {
        __sync_fetch_and_add(&fmod_denied, 1);
        return -EACCES;
    }
    return 0; /* 0: the hook runs as usual */
}
