/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* A TCP congestion control written in BPF (Reno's rules) for the struct_ops tests; included by
 * iter_struct_ops.bpf.c (SEC(".struct_ops.link"), Linux 6.4) and iter_struct_ops_legacy.bpf.c
 * (SEC(".struct_ops"), Linux 5.6) with PYPROBE_CA_SEC and PYPROBE_CA_NAME set. */
#include <pyprobe/common.h>

char LICENSE[] SEC("license") = "Dual BSD/GPL";

__u64 inits = 0;
__u64 acks = 0;

static __always_inline struct tcp_sock *to_tcp(struct sock *sk)
{
    return (struct tcp_sock *)sk;
}

SEC("struct_ops")
void BPF_PROG(pp_init, struct sock *sk)
{
    __sync_fetch_and_add(&inits, 1);
}

SEC("struct_ops")
__u32 BPF_PROG(pp_ssthresh, struct sock *sk)
{
    __u32 half = to_tcp(sk)->snd_cwnd >> 1;

    return half > 2 ? half : 2;
}

SEC("struct_ops")
void BPF_PROG(pp_cong_avoid, struct sock *sk, __u32 ack, __u32 acked)
{
    struct tcp_sock *tp = to_tcp(sk);

    __sync_fetch_and_add(&acks, 1);
    if (tp->snd_cwnd < tp->snd_cwnd_clamp)
        tp->snd_cwnd++;
}

SEC("struct_ops")
__u32 BPF_PROG(pp_undo_cwnd, struct sock *sk)
{
    return to_tcp(sk)->snd_cwnd;
}

SEC(PYPROBE_CA_SEC)
struct tcp_congestion_ops pp_ca = {
    .init = (void *)pp_init,
    .ssthresh = (void *)pp_ssthresh,
    .cong_avoid = (void *)pp_cong_avoid,
    .undo_cwnd = (void *)pp_undo_cwnd,
    .name = PYPROBE_CA_NAME,
};
