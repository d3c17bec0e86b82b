/* BPF ring buffer consumer: the map's pages mmap'ed, records copied out in one call.
 *
 * Same memory layout and ordering as libbpf's ringbuf.c: page 0 is the
 * consumer position (read-write), page 1 the producer position, then the data
 * area mapped twice in a row so a record that wraps is contiguous. Unlike
 * ring_buffer__consume(), a drain stops before a record that does not fit in
 * the caller's buffer or past `max_events`: what is not copied stays in the ring.
 */
#include <sys/mman.h>
#include <linux/bpf.h>

struct pyprobe_ring {
    size_t page_size;
    size_t mask;
    size_t data_size;
    unsigned long *consumer_pos;
    unsigned long *producer_pos;
    char *data;
};

void pyprobe_ring_free(struct pyprobe_ring *r)
{
    if (!r)
        return;
    if (r->consumer_pos)
        munmap(r->consumer_pos, r->page_size);
    if (r->producer_pos)
        munmap(r->producer_pos, r->page_size + 2 * r->data_size);
    free(r);
}

/* NULL with errno set on failure. */
struct pyprobe_ring *pyprobe_ring_new(int map_fd)
{
    struct bpf_map_info info;
    __u32 len = sizeof(info);
    struct pyprobe_ring *r;
    void *tmp;

    memset(&info, 0, sizeof(info));
    if (bpf_map_get_info_by_fd(map_fd, &info, &len) < 0)
        return NULL;
    if (info.type != BPF_MAP_TYPE_RINGBUF) {
        errno = EINVAL;
        return NULL;
    }
    r = calloc(1, sizeof(*r));
    if (!r) {
        errno = ENOMEM;
        return NULL;
    }
    r->page_size = (size_t)sysconf(_SC_PAGESIZE);
    r->data_size = info.max_entries;
    r->mask = info.max_entries - 1;
    tmp = mmap(NULL, r->page_size, PROT_READ | PROT_WRITE, MAP_SHARED, map_fd, 0);
    if (tmp == MAP_FAILED) {
        int err = errno;
        pyprobe_ring_free(r);
        errno = err;
        return NULL;
    }
    r->consumer_pos = tmp;
    tmp = mmap(NULL, r->page_size + 2 * r->data_size, PROT_READ, MAP_SHARED, map_fd, (off_t)r->page_size);
    if (tmp == MAP_FAILED) {
        int err = errno;
        pyprobe_ring_free(r);
        errno = err;
        return NULL;
    }
    r->producer_pos = tmp;
    r->data = (char *)tmp + r->page_size;
    return r;
}

size_t pyprobe_ring_size(const struct pyprobe_ring *r)
{
    return r->data_size;
}

/* Bytes written by the producer and not consumed yet (committed or not). */
size_t pyprobe_ring_avail(const struct pyprobe_ring *r)
{
    unsigned long cons = __atomic_load_n(r->consumer_pos, __ATOMIC_ACQUIRE);
    unsigned long prod = __atomic_load_n(r->producer_pos, __ATOMIC_ACQUIRE);

    return prod - cons;
}

/* Copies committed records into `out`, packed back to back: record i is at
 * offsets[i] and offsets[n] is the bytes used (offsets holds max_events + 1).
 * Discarded records are skipped. Stops at an uncommitted record, at
 * max_events, or before a record that does not fit; when the first record
 * does not fit, *need is its size. *uniform is the common record size, or 0
 * when sizes differ. *idle is 1 when the drain caught up with the producer:
 * nothing committed is left, and the kernel will wake the reader for the
 * next record a BPF program submits without BPF_RB_NO_WAKEUP. Returns the
 * number of records copied. */
long pyprobe_ring_drain(struct pyprobe_ring *r, char *out, size_t out_size, __u32 *offsets, size_t max_events,
                        size_t *need, size_t *uniform, size_t *idle)
{
    unsigned long cons = __atomic_load_n(r->consumer_pos, __ATOMIC_ACQUIRE);
    unsigned long prod = __atomic_load_n(r->producer_pos, __ATOMIC_ACQUIRE);
    size_t used = 0, n = 0, size0 = 0;
    int same = 1, caught_up = 0;

    *need = 0;
    while (n < max_events) {
        __u32 *hdr, len, size;

        if (cons >= prod) {
            prod = __atomic_load_n(r->producer_pos, __ATOMIC_ACQUIRE);
            if (cons >= prod) {
                caught_up = 1;
                break;
            }
        }
        hdr = (__u32 *)(r->data + (cons & r->mask));
        len = __atomic_load_n(hdr, __ATOMIC_ACQUIRE);
        if (len & BPF_RINGBUF_BUSY_BIT) {
            caught_up = 1;
            break;
        }
        size = len & ~(BPF_RINGBUF_BUSY_BIT | BPF_RINGBUF_DISCARD_BIT);
        if (!(len & BPF_RINGBUF_DISCARD_BIT)) {
            if (used + size > out_size) {
                if (n == 0)
                    *need = size;
                break;
            }
            offsets[n] = (__u32)used;
            memcpy(out + used, (char *)hdr + BPF_RINGBUF_HDR_SZ, size);
            used += size;
            if (n == 0)
                size0 = size;
            else if (size != size0)
                same = 0;
            n++;
        }
        cons += (size + BPF_RINGBUF_HDR_SZ + 7) & ~7UL;
        /* Free space every 64 records, not after each: the producer reads the
         * consumer position on every reserve, and each store moves its cache line. */
        if ((n & 63) == 0)
            __atomic_store_n(r->consumer_pos, cons, __ATOMIC_RELEASE);
    }
    __atomic_store_n(r->consumer_pos, cons, __ATOMIC_RELEASE);
    if (caught_up) {
        /* The kernel wakes the reader at a commit only when the consumer
         * position it reads then (after marking the record committed) is the
         * record's own. A record committed before the store above was not
         * signalled: look again after a full barrier, so that either the
         * kernel saw the new position or this sees the record. */
        __atomic_thread_fence(__ATOMIC_SEQ_CST);
        prod = __atomic_load_n(r->producer_pos, __ATOMIC_ACQUIRE);
        if (cons < prod) {
            __u32 len = __atomic_load_n((__u32 *)(r->data + (cons & r->mask)), __ATOMIC_ACQUIRE);

            if (!(len & BPF_RINGBUF_BUSY_BIT))
                caught_up = 0;
        }
    }
    offsets[n] = (__u32)used;
    *uniform = (same && n) ? size0 : 0;
    *idle = (size_t)caught_up;
    return (long)n;
}
