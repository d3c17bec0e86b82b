// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* One program per cgroup attach kind: cgroup_skb ingress/egress, sock_create, connect4/6, bind4/6,
 * sockops, sysctl, getsockopt and device. Each counts what it saw in `counters` and acts on the
 * settings the test writes into .bss after load (a port to rewrite, a family to refuse...). */
#include <pyprobe/common.h>
#include <bpf/bpf_endian.h>

char LICENSE[] SEC("license") = "Dual BSD/GPL";

#define AF_INET 2
#define AF_INET6 10
#define SOL_SOCKET 1
#define SO_SNDBUF 7
#define IPPROTO_UDP 17
#define DEVCG_ACC_READ 2 /* BPF_DEVCG_ACC_READ */

enum {
    INGRESS,
    EGRESS,
    EGRESS_DROPPED,
    SOCK_CREATE,
    SOCK_REFUSED,
    CONNECT4,
    CONNECT6,
    REWRITTEN,
    BIND4,
    BIND6,
    BIND_REFUSED,
    ESTABLISHED,
    STATE_CB,
    SYSCTL_READ,
    SYSCTL_REFUSED,
    GETSOCKOPT,
    DEV,
    DEV_DENIED,
    NSLOTS,
};

struct {
    __uint(type, BPF_MAP_TYPE_ARRAY);
    __uint(max_entries, NSLOTS);
    __type(key, __u32);
    __type(value, __u64);
} counters SEC(".maps");

/* Legacy cgroup local storage: bytes sent by the cgroup, per (cgroup, attach type). */
struct {
    __uint(type, BPF_MAP_TYPE_CGROUP_STORAGE);
    __type(key, struct bpf_cgroup_storage_key);
    __type(value, __u64);
} egress_bytes SEC(".maps");

/* Settings, written by the test after load. */
volatile __u32 drop_udp_port;      /* egress: drop UDP datagrams to this port */
volatile __u32 refuse_family;      /* sock_create: refuse sockets of this family */
volatile __u32 connect_from;       /* connect4/6: a connect() to this port ... */
volatile __u32 connect_to;         /* ... goes to this one */
volatile __u32 bind_from;          /* bind4/6: a bind() to this port ... */
volatile __u32 bind_to;            /* ... binds this one */
volatile __u32 bind_refuse;        /* bind4/6: a bind() to this port is refused */
volatile __u32 sockopt_sndbuf;     /* getsockopt(SO_SNDBUF) reads this value */
volatile __u32 dev_major = 1;      /* device: refuse opening this device for reading ... */
volatile __u32 dev_minor = 5;      /* ... (1:5 is /dev/zero) */
char sysctl_name[64];              /* sysctl: the last name read */
const volatile char sysctl_refuse[64]; /* sysctl: writes to this name are refused (set before load) */

static __always_inline void count(__u32 slot)
{
    __u64 *value = bpf_map_lookup_elem(&counters, &slot);

    if (value)
        __sync_fetch_and_add(value, 1);
}

SEC("cgroup_skb/ingress")
int skb_ingress(struct __sk_buff *skb)
{
    count(INGRESS);
    return 1;
}

SEC("cgroup_skb/egress")
int skb_egress(struct __sk_buff *skb)
{
    __u64 *bytes = bpf_get_local_storage(&egress_bytes, 0);
    struct iphdr ip;
    struct udphdr udp;

    count(EGRESS);
    __sync_fetch_and_add(bytes, skb->len);
    if (!drop_udp_port || skb->protocol != bpf_htons(0x0800))
        return 1;
    if (bpf_skb_load_bytes(skb, 0, &ip, sizeof(ip)) || ip.protocol != IPPROTO_UDP)
        return 1;
    if (bpf_skb_load_bytes(skb, ip.ihl * 4, &udp, sizeof(udp)))
        return 1;
    if (udp.dest == bpf_htons(drop_udp_port)) {
        count(EGRESS_DROPPED);
        return 0;
    }
    return 1;
}

SEC("cgroup/sock_create")
int sock_create(struct bpf_sock *sk)
{
    count(SOCK_CREATE);
    if (refuse_family && sk->family == refuse_family) {
        count(SOCK_REFUSED);
        return 0;
    }
    return 1;
}

static __always_inline void rewrite_connect(struct bpf_sock_addr *ctx)
{
    if (connect_from && ctx->user_port == bpf_htons(connect_from)) {
        ctx->user_port = bpf_htons(connect_to);
        count(REWRITTEN);
    }
}

SEC("cgroup/connect4")
int connect4(struct bpf_sock_addr *ctx)
{
    count(CONNECT4);
    rewrite_connect(ctx);
    return 1;
}

SEC("cgroup/connect6")
int connect6(struct bpf_sock_addr *ctx)
{
    count(CONNECT6);
    rewrite_connect(ctx);
    return 1;
}

static __always_inline int check_bind(struct bpf_sock_addr *ctx)
{
    if (bind_refuse && ctx->user_port == bpf_htons(bind_refuse)) {
        count(BIND_REFUSED);
        return 0;
    }
    if (bind_from && ctx->user_port == bpf_htons(bind_from))
        ctx->user_port = bpf_htons(bind_to);
    return 1;
}

SEC("cgroup/bind4")
int bind4(struct bpf_sock_addr *ctx)
{
    count(BIND4);
    return check_bind(ctx);
}

SEC("cgroup/bind6")
int bind6(struct bpf_sock_addr *ctx)
{
    count(BIND6);
    return check_bind(ctx);
}

SEC("sockops")
int sock_ops(struct bpf_sock_ops *skops)
{
    switch (skops->op) {
    case BPF_SOCK_OPS_TCP_CONNECT_CB:
        /* ask for state-change callbacks on this connection */
        bpf_sock_ops_cb_flags_set(skops, skops->bpf_sock_ops_cb_flags | BPF_SOCK_OPS_STATE_CB_FLAG);
        break;
    case BPF_SOCK_OPS_ACTIVE_ESTABLISHED_CB:
        count(ESTABLISHED);
        break;
    case BPF_SOCK_OPS_STATE_CB:
        count(STATE_CB);
        break;
    }
    return 1;
}

SEC("cgroup/sysctl")
int sysctl_guard(struct bpf_sysctl *ctx)
{
    char name[64] = {};

    if (bpf_sysctl_get_name(ctx, name, sizeof(name), 0) < 0)
        return 1;
    if (!ctx->write) {
        count(SYSCTL_READ);
        __builtin_memcpy(sysctl_name, name, sizeof(name));
        return 1;
    }
    if (sysctl_refuse[0] && bpf_strncmp(name, sizeof(name), (const char *)sysctl_refuse) == 0) {
        count(SYSCTL_REFUSED);
        return 0;
    }
    return 1;
}

SEC("cgroup/getsockopt")
int getsockopt_rewrite(struct bpf_sockopt *ctx)
{
    int *optval = ctx->optval;

    count(GETSOCKOPT);
    if (!sockopt_sndbuf || ctx->level != SOL_SOCKET || ctx->optname != SO_SNDBUF)
        return 1;
    if ((void *)(optval + 1) > ctx->optval_end)
        return 1;
    *optval = (int)sockopt_sndbuf;
    ctx->optlen = sizeof(int);
    ctx->retval = 0;
    return 1;
}

SEC("cgroup/dev")
int dev_guard(struct bpf_cgroup_dev_ctx *ctx)
{
    count(DEV);
    if (ctx->major == dev_major && ctx->minor == dev_minor && (ctx->access_type >> 16) & DEVCG_ACC_READ) {
        count(DEV_DENIED);
        return 0;
    }
    return 1;
}
