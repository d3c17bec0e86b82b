/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* Ring buffer submission without a reader wakeup per event.
 *
 * Waking the reader costs the traced program far more than writing the event
 * (about 1.4 us against 25 ns). Submit with pyprobe_ringbuf_submit() and the
 * kernel wakes the reader once, when this record takes the unread data past
 * `threshold` bytes; otherwise the reader drains on its own timer (the
 * `drain_interval` of pyprobe.RingBuffer, 0.1 s by default). Waking on every
 * record past the threshold would cost each of them the full wakeup while the
 * reader catches up.
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

/* The submit flags for a record of `size` bytes already reserved in `ringbuf`:
 * a wakeup when it takes the unread data across `threshold` bytes, else none. */
static __always_inline __u64 pyprobe_ringbuf_wakeup_flags(void *ringbuf, __u64 size, __u64 threshold)
{
    __u64 avail, record = (size + 8 + 7) & ~7ULL; /* with its 8-byte header, rounded to 8 */

    if (!threshold)
        return BPF_RB_NO_WAKEUP;
    avail = bpf_ringbuf_query(ringbuf, BPF_RB_AVAIL_DATA);
    if (avail >= threshold && avail < threshold + record)
        return BPF_RB_FORCE_WAKEUP;
    return BPF_RB_NO_WAKEUP;
}

/* bpf_ringbuf_submit() of a record reserved in `ringbuf` (a typed pointer),
 * waking the reader only when the unread data crosses `threshold` bytes. */
#define pyprobe_ringbuf_submit(ringbuf, sample, threshold) \
    bpf_ringbuf_submit((sample), pyprobe_ringbuf_wakeup_flags((ringbuf), sizeof(*(sample)), (threshold)))

#endif /* PYPROBE_RINGBUF_H */
