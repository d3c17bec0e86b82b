// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* A user ring buffer (Linux 6.1) that user space fills and a SEC("syscall") program drains with
 * bpf_user_ringbuf_drain; also a program with a custom section name for register_section_handler. */
#include <pyprobe/common.h>

char LICENSE[] SEC("license") = "Dual BSD/GPL";

struct urec {
    __u64 seq;
    __u64 value;
};

struct {
    __uint(type, BPF_MAP_TYPE_USER_RINGBUF);
    __uint(max_entries, 256 * 1024);
} input SEC(".maps");
PYPROBE_EVENT_TYPE(input, struct urec);

__u64 drained = 0;
__u64 value_sum = 0;
__u64 last_seq = 0;
__u64 short_records = 0;
long last_ret = 0;

static long on_record(struct bpf_dynptr *dynptr, void *ctx)
{
    struct urec rec;

    if (bpf_dynptr_read(&rec, sizeof(rec), dynptr, 0, 0)) {
        short_records++;
        return 0;
    }
    drained++;
    value_sum += rec.value;
    last_seq = rec.seq;
    return 0;
}

SEC("syscall")
int drain(void *ctx)
{
    last_ret = bpf_user_ringbuf_drain(&input, on_record, NULL, 0);
    return 0;
}
