/* BPF perf buffer consumer: libbpf's perf_buffer with a raw event callback in C
 * that appends samples to a growing buffer and sums PERF_RECORD_LOST counts,
 * so one perf_buffer__consume() call never enters Python. */
#include <linux/perf_event.h>

struct pyprobe_perf {
    struct perf_buffer *pb;
    char *buf;
    size_t used, cap;
    __u32 *offsets; /* n + 1 entries in use: offsets[n] == used */
    size_t n, ocap;
    size_t truncate; /* samples longer than this are cut to it (perf pads raw samples); 0: keep all */
    size_t size0;
    int same;
    __u64 lost;       /* PERF_RECORD_LOST counts not taken yet */
    __u64 nomem;      /* samples this process could not store (out of memory) */
};

struct pyprobe_perf_sample {
    struct perf_event_header header;
    __u32 size;
    char data[];
};

struct pyprobe_perf_lost {
    struct perf_event_header header;
    __u64 id;
    __u64 lost;
};

static int pyprobe_perf_reserve(struct pyprobe_perf *p, size_t size)
{
    if (p->used + size > p->cap) {
        size_t cap = p->cap ? p->cap : 1 << 16;
        char *buf;

        while (cap < p->used + size)
            cap *= 2;
        buf = realloc(p->buf, cap);
        if (!buf)
            return -1;
        p->buf = buf;
        p->cap = cap;
    }
    if (p->n + 2 > p->ocap) {
        size_t ocap = p->ocap ? p->ocap * 2 : 1 << 12;
        __u32 *offsets = realloc(p->offsets, ocap * sizeof(*offsets));

        if (!offsets)
            return -1;
        p->offsets = offsets;
        p->ocap = ocap;
    }
    return 0;
}

static enum bpf_perf_event_ret pyprobe_perf_event(void *ctx, int cpu, struct perf_event_header *event)
{
    struct pyprobe_perf *p = ctx;

    if (event->type == PERF_RECORD_SAMPLE) {
        struct pyprobe_perf_sample *s = (struct pyprobe_perf_sample *)event;
        size_t size = s->size;

        if (p->truncate && size > p->truncate)
            size = p->truncate;
        if (pyprobe_perf_reserve(p, size) < 0) {
            p->nomem++;
            return LIBBPF_PERF_EVENT_CONT;
        }
        p->offsets[p->n] = (__u32)p->used;
        memcpy(p->buf + p->used, s->data, size);
        p->used += size;
        if (p->n == 0)
            p->size0 = size;
        else if (size != p->size0)
            p->same = 0;
        p->n++;
        p->offsets[p->n] = (__u32)p->used;
    } else if (event->type == PERF_RECORD_LOST) {
        p->lost += ((struct pyprobe_perf_lost *)event)->lost;
    }
    return LIBBPF_PERF_EVENT_CONT;
}

void pyprobe_perf_free(struct pyprobe_perf *p)
{
    if (!p)
        return;
    if (p->pb)
        perf_buffer__free(p->pb);
    free(p->buf);
    free(p->offsets);
    free(p);
}

/* NULL with errno set on failure. `pages` per CPU (a power of 2); the kernel
 * wakes the reader once per `wakeup_events` samples. */
struct pyprobe_perf *pyprobe_perf_new(int map_fd, size_t pages, __u32 wakeup_events, size_t truncate)
{
    struct perf_event_attr attr;
    struct pyprobe_perf *p = calloc(1, sizeof(*p));
    int err;

    if (!p) {
        errno = ENOMEM;
        return NULL;
    }
    p->truncate = truncate;
    p->same = 1;
    memset(&attr, 0, sizeof(attr));
    attr.size = sizeof(attr);
    attr.type = PERF_TYPE_SOFTWARE;
    attr.config = PERF_COUNT_SW_BPF_OUTPUT;
    attr.sample_type = PERF_SAMPLE_RAW;
    attr.sample_period = 1;
    attr.wakeup_events = wakeup_events ? wakeup_events : 1;
    p->pb = perf_buffer__new_raw(map_fd, pages, &attr, pyprobe_perf_event, p, NULL);
    if (!p->pb) {
        err = errno ? errno : EINVAL;
        pyprobe_perf_free(p);
        errno = err;
        return NULL;
    }
    return p;
}

int pyprobe_perf_epoll_fd(const struct pyprobe_perf *p)
{
    return perf_buffer__epoll_fd(p->pb);
}

/* Reads every CPU's buffer into the staging buffer; negative errno on failure. */
int pyprobe_perf_consume(struct pyprobe_perf *p)
{
    return perf_buffer__consume(p->pb);
}

/* The staged samples: data, offsets (n + 1 entries), count, common size (0: mixed). */
char *pyprobe_perf_staged(const struct pyprobe_perf *p, __u32 **offsets, size_t *n, size_t *uniform)
{
    *offsets = p->offsets;
    *n = p->n;
    *uniform = (p->same && p->n) ? p->size0 : 0;
    return p->buf;
}

/* Empties the staging buffer; returns and clears the lost counts (kernel + out of memory). */
__u64 pyprobe_perf_reset(struct pyprobe_perf *p)
{
    __u64 lost = p->lost + p->nomem;

    p->used = 0;
    p->n = 0;
    p->same = 1;
    p->size0 = 0;
    p->lost = 0;
    p->nomem = 0;
    return lost;
}
