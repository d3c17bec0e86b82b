/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* Ring buffer submission without a reader wakeup per event.
 *
 * Waking the reader costs the traced program far more than writing the event
 * (about 1.4 us against 25 ns). Submit with pyprobe_ringbuf_submit() and the
 * kernel wakes the reader only once the ring holds at least `threshold` bytes;
 * below that the reader drains on its own timer (the `drain_interval` of
 * pyprobe.RingBuffer, 0.1 s by default).
 *
 *     struct event *e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
 *     if (!e)
 *         return 0;
 *     ...
 *     pyprobe_ringbuf_submit(&events, e, PYPROBE_RINGBUF_THRESHOLD);
 *
 * Needs Linux 5.8 (BPF ring buffer).
 */
#ifndef PYPROBE_RINGBUF_H
#define PYPROBE_RINGBUF_H

#include <pyprobe/common.h>

/* Default wakeup threshold in bytes: wake the reader once 64 KiB are waiting. */
#ifndef PYPROBE_RINGBUF_THRESHOLD
#define PYPROBE_RINGBUF_THRESHOLD (64 * 1024)
#endif

/* The submit flags for `ringbuf`: no wakeup below `threshold` bytes of unread data, a wakeup above. */
static __always_inline __u64 pyprobe_ringbuf_wakeup_flags(void *ringbuf, __u64 threshold)
{
    if (threshold && bpf_ringbuf_query(ringbuf, BPF_RB_AVAIL_DATA) >= threshold)
        return BPF_RB_FORCE_WAKEUP;
    return BPF_RB_NO_WAKEUP;
}

/* bpf_ringbuf_submit() of a record reserved in `ringbuf`, waking the reader only past `threshold` bytes. */
#define pyprobe_ringbuf_submit(ringbuf, sample, threshold) \
    bpf_ringbuf_submit((sample), pyprobe_ringbuf_wakeup_flags((ringbuf), (threshold)))

/* bpf_ringbuf_output() of `size` bytes at `data`, waking the reader only past `threshold` bytes. */
#define pyprobe_ringbuf_output(ringbuf, data, size, threshold) \
    bpf_ringbuf_output((ringbuf), (data), (size), pyprobe_ringbuf_wakeup_flags((ringbuf), (threshold)))

#endif /* PYPROBE_RINGBUF_H */
