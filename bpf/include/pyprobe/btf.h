/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* Types for user space: put a struct into the object's BTF without a fake global.
 *
 * clang writes a type into BTF only when something the object keeps uses it:
 * a map's key or value, a global variable, a program's signature. An event
 * struct that only goes through bpf_ringbuf_reserve() or bpf_perf_event_output()
 * is used by none of these, so it is missing from BTF and user space cannot
 * decode it by name. These macros anchor it in a section of its own,
 * `.pyprobe.types`, which libbpf skips (no map, no memory in the kernel) and
 * pyprobe reads:
 *
 *   struct event { __u32 pid; char comm[16]; };
 *
 *   struct {
 *       __uint(type, BPF_MAP_TYPE_RINGBUF);
 *       __uint(max_entries, 256 * 1024);
 *   } events SEC(".maps");
 *
 *   PYPROBE_EVENT_TYPE(events, struct event);  // events carries struct event records
 *   PYPROBE_EXPORT_TYPE(struct stats);         // any other type user space should see
 *
 * PYPROBE_EVENT_TYPE(MAP, TYPE) names the record type of a ring buffer or perf
 * event array map: `obj.maps["events"].reader()` then decodes each record as
 * TYPE without an `event_type=` argument, and a generated skeleton types the
 * map's events with a class made from TYPE. PYPROBE_EXPORT_TYPE(TYPE) only
 * exports it: `reader(event_type="stats")`, `obj.btf.type_by_name("stats")`
 * and the skeleton's generated classes find it. Both are declarations at
 * file scope; neither is a global variable of the program (the skeleton's
 * `bss`/`data`/`rodata` do not list them).
 */
#ifndef PYPROBE_BTF_H
#define PYPROBE_BTF_H

#define ___PYPROBE_CAT(a, b) a##b
#define __PYPROBE_CAT(a, b) ___PYPROBE_CAT(a, b)

/* The section user-space types are anchored in (read by pyprobe, skipped by libbpf). */
#define PYPROBE_TYPES_SEC ".pyprobe.types"

/* Puts TYPE (e.g. `struct stats`) into the object's BTF. */
#define PYPROBE_EXPORT_TYPE(TYPE) \
    static TYPE *__PYPROBE_CAT(__pyprobe_type_, __COUNTER__) __attribute__((section(PYPROBE_TYPES_SEC), used))

/* Puts TYPE into BTF as the record type of the ring buffer or perf event array MAP. */
#define PYPROBE_EVENT_TYPE(MAP, TYPE) \
    static TYPE *__pyprobe_event__##MAP __attribute__((section(PYPROBE_TYPES_SEC), used))

#endif /* PYPROBE_BTF_H */
