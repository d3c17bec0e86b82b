/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* Types shared by tests/bpf/skel_types.bpf.c and the typed skeleton tests. */
#ifndef SKEL_TYPES_H
#define SKEL_TYPES_H

struct endpoint {
    __u32 addr;
    __u16 port;
};

/* A struct key: nested struct, array of structs, padding between members. */
struct flow_key {
    struct endpoint src;
    struct endpoint hops[2];
    __u8 proto;
};

struct __attribute__((packed)) packed_pair {
    __u8 tag;
    __u32 value;
};

/* A struct value: char array, 2-D array, bitfields, anonymous union, named
 * nested anonymous struct, packed member, pointer, bool, enum. */
enum verdict { VERDICT_PASS = 1, VERDICT_DROP = 2 };

struct flow_value {
    __u64 packets;
    char name[12];
    __u16 matrix[2][3];
    unsigned int low : 3;
    unsigned int high : 5;
    int sign : 4;
    union {
        __u32 as_u32;
        __u8 octets[4];
    };
    struct {
        __u16 first;
        __u16 last;
    } window;
    struct packed_pair pair;
    void *ptr;
    _Bool ok;
    enum verdict verdict;
};

struct cpu_stats {
    __u64 runs;
    __u64 bytes;
};

/* The record type of the `events` ring buffer. */
struct open_event {
    __u32 pid;
    __s32 flags;
    char filename[16];
    struct endpoint peer;
    __u64 args[3];
};

/* Exported only (no map, no global uses it). */
struct exported_only {
    __u32 id;
    char label[8];
};

/* Context of the SEC("syscall") program `fill`. */
struct fill_args {
    __u32 pid;
    __u32 seq;
};

struct settings {
    __u32 limit;
    __u32 mode;
};

#endif
