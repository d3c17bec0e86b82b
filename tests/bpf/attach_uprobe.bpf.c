// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* uprobes of the attach tests: utest_add's arguments and return value, utest_sub by SEC
 * auto-attach (a bare demangled name), the eight-argument function, Go's main.add, cookies. */
#include <pyprobe/common.h>
#include <pyprobe/args.h>

char LICENSE[] SEC("license") = "Dual BSD/GPL";

/* One slot per probe: [0] add entry, [1] add return, [2] sub (auto-attach), [3] args8,
 * [4] go entry, [5] go return sites, [6] multi */
struct hit {
    __u64 count;
    __s64 a;
    __s64 b;
    __s64 ret;
    __u32 pid;
    __u32 other_pid;   /* set when a pid that is not target_pid hit the probe */
    __u64 cookie;
    __s64 args[8];
};

struct {
    __uint(type, BPF_MAP_TYPE_ARRAY);
    __uint(max_entries, 8);
    __type(key, __u32);
    __type(value, struct hit);
} hits SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_HASH);
    __uint(max_entries, 64);
    __type(key, __u64);   /* cookie */
    __type(value, __u64); /* hits */
} cookie_hits SEC(".maps");

const volatile __u32 target_pid = 0;

static __always_inline struct hit *slot(void *ctx, __u32 key)
{
    struct hit *h = bpf_map_lookup_elem(&hits, &key);
    __u32 pid = bpf_get_current_pid_tgid() >> 32;

    if (!h)
        return 0;
    if (target_pid && pid != target_pid) {
        h->other_pid = pid;
        return 0;
    }
    __sync_fetch_and_add(&h->count, 1);
    h->pid = pid;
    h->cookie = bpf_get_attach_cookie(ctx);
    return h;
}

SEC("uprobe")
int BPF_UPROBE(add_entry, int a, int b)
{
    struct hit *h = slot(ctx, 0);

    if (h) {
        h->a = a;
        h->b = b;
    }
    return 0;
}

SEC("uretprobe")
int BPF_URETPROBE(add_return, int ret)
{
    struct hit *h = slot(ctx, 1);

    if (h)
        h->ret = ret;
    return 0;
}

SEC("uprobe")
int args8_entry(struct pt_regs *ctx)
{
    struct hit *h = slot(ctx, 3);

    if (!h)
        return 0;
    h->args[0] = pyprobe_uarg(ctx, 1);
    h->args[1] = pyprobe_uarg(ctx, 2);
    h->args[2] = pyprobe_uarg(ctx, 3);
    h->args[3] = pyprobe_uarg(ctx, 4);
    h->args[4] = pyprobe_uarg(ctx, 5);
    h->args[5] = pyprobe_uarg(ctx, 6);
    h->args[6] = pyprobe_uarg(ctx, 7);
    h->args[7] = pyprobe_uarg(ctx, 8);
    return 0;
}

/* Go's register ABI: arguments in rax, rbx, ...; the result in rax. */
SEC("uprobe")
int go_entry(struct pt_regs *ctx)
{
    struct hit *h = slot(ctx, 4);

    if (h) {
        h->a = ctx->ax;
        h->b = ctx->bx;
    }
    return 0;
}

SEC("uprobe")
int go_return(struct pt_regs *ctx)
{
    struct hit *h = slot(ctx, 5);

    if (h)
        h->ret = ctx->ax;
    return 0;
}

static __always_inline void count_cookie(void *ctx)
{
    __u64 cookie = bpf_get_attach_cookie(ctx), one = 1, *v;

    v = bpf_map_lookup_elem(&cookie_hits, &cookie);
    if (v)
        __sync_fetch_and_add(v, 1);
    else
        bpf_map_update_elem(&cookie_hits, &cookie, &one, BPF_NOEXIST);
}

SEC("uprobe.multi")
int multi(struct pt_regs *ctx)
{
    slot(ctx, 6);
    count_cookie(ctx);
    return 0;
}
