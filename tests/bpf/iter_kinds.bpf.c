// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* BPF iterators of every kind the tests read: task (text and records), task_file, bpf_map,
 * bpf_map_elem over a map the test fills, tcp and udp sockets. */
#include <pyprobe/common.h>

char LICENSE[] SEC("license") = "Dual BSD/GPL";

#define AF_INET 2
#define AF_INET6 10

/* What task_records writes per task with bpf_seq_write. */
struct task_rec {
    __u32 pid;  /* the thread group id (the process's pid) */
    __u32 tid;
    char comm[16];
};
PYPROBE_EXPORT_TYPE(struct task_rec);

/* What elem_records writes per element of the map it iterates. */
struct elem_rec {
    __u32 key;
    __u32 pad;
    __u64 value;
};
PYPROBE_EXPORT_TYPE(struct elem_rec);

struct {
    __uint(type, BPF_MAP_TYPE_HASH);
    __uint(max_entries, 1024);
    __type(key, __u32);
    __type(value, __u64);
} numbers SEC(".maps");

const volatile __u32 target_tgid = 0;

__u64 elem_sum = 0;
__u64 elem_count = 0;

SEC("iter/task")
int task_lines(struct bpf_iter__task *ctx)
{
    struct seq_file *seq = ctx->meta->seq;
    struct task_struct *task = ctx->task;

    if (!task || task->pid != task->tgid)
        return 0;
    BPF_SEQ_PRINTF(seq, "%d %s\n", task->tgid, task->comm);
    return 0;
}

SEC("iter/task")
int task_records(struct bpf_iter__task *ctx)
{
    struct seq_file *seq = ctx->meta->seq;
    struct task_struct *task = ctx->task;
    struct task_rec rec = {};

    if (!task)
        return 0;
    rec.pid = task->tgid;
    rec.tid = task->pid;
    __builtin_memcpy(rec.comm, task->comm, sizeof(rec.comm));
    bpf_seq_write(seq, &rec, sizeof(rec));
    return 0;
}

SEC("iter/task_file")
int task_files(struct bpf_iter__task_file *ctx)
{
    struct seq_file *seq = ctx->meta->seq;
    struct task_struct *task = ctx->task;
    struct file *file = ctx->file;

    if (!task || !file || task->tgid != target_tgid || task->pid != task->tgid)
        return 0;
    BPF_SEQ_PRINTF(seq, "%u %lu\n", ctx->fd, file->f_inode->i_ino);
    return 0;
}

SEC("iter/bpf_map")
int bpf_maps(struct bpf_iter__bpf_map *ctx)
{
    struct seq_file *seq = ctx->meta->seq;
    struct bpf_map *map = ctx->map;

    if (!map)
        return 0;
    BPF_SEQ_PRINTF(seq, "%u %s\n", map->id, map->name);
    return 0;
}

SEC("iter/bpf_map_elem")
int elem_records(struct bpf_iter__bpf_map_elem *ctx)
{
    struct seq_file *seq = ctx->meta->seq;
    __u32 *key = ctx->key;
    __u64 *value = ctx->value;
    struct elem_rec rec = {};

    if (!key || !value) {
        return 0; /* the end of the walk: ctx->key is NULL once */
    }
    rec.key = *key;
    rec.value = *value;
    elem_sum += *value;
    elem_count++;
    bpf_seq_write(seq, &rec, sizeof(rec));
    return 0;
}

SEC("iter/tcp")
int tcp_sockets(struct bpf_iter__tcp *ctx)
{
    struct seq_file *seq = ctx->meta->seq;
    struct sock_common *skc = ctx->sk_common;

    if (!skc)
        return 0;
    if (skc->skc_family != AF_INET && skc->skc_family != AF_INET6)
        return 0;
    BPF_SEQ_PRINTF(seq, "%u %u %u\n", skc->skc_family, skc->skc_num, skc->skc_state);
    return 0;
}

SEC("iter/udp")
int udp_sockets(struct bpf_iter__udp *ctx)
{
    struct seq_file *seq = ctx->meta->seq;
    struct udp_sock *udp = ctx->udp_sk;

    if (!udp)
        return 0;
    BPF_SEQ_PRINTF(seq, "%u %u\n", udp->inet.sk.__sk_common.skc_family, udp->inet.sk.__sk_common.skc_num);
    return 0;
}
