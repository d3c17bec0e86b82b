/* Types shared by tests/bpf/maps.bpf.c and its tests. */
#ifndef MAPS_TEST_H
#define MAPS_TEST_H

enum color { RED = 1, GREEN = 2, BLUE = -1 };

struct point {
    __u32 x;
    __u32 y;
};

struct value16 {
    __u64 count;
    __u32 pid;
    __u32 flags;
};

struct rich {
    __u8 tag;
    __u64 wide;
    char comm[16];
    struct point pts[2];
    unsigned int low : 3;
    unsigned int mid : 5;
    int neg : 4;
    enum color color;
    union {
        __u32 as_u32;
        __u8 bytes[4];
    };
    struct {
        __u16 a;
        __u16 b;
    } inner;
    void *ptr;
    _Bool ok;
};

#endif
