// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* Long placeholder names that tests/reliability/test_hostile_names.py overwrites in place (in the
 * symbol table and the BTF strings) with hostile ones: programs, maps, globals of each section, a
 * struct and its members, an event type, an exported type. */
#include <pyprobe/common.h>
#include <pyprobe/btf.h>

char LICENSE[] SEC("license") = "Dual BSD/GPL";

enum placeholder_enum_name_aaaaaaaaaaaaaaaaaaaaa { placeholder_enumerator_aaaaaaaaaaaaaaa = 1 };

struct placeholder_struct_name_aaaaaaaaaaaaaaaaaa {
    __u32 placeholder_member_one_aaaaaaaaaaaaaaaaaaa;
    __u64 placeholder_member_two_aaaaaaaaaaaaaaaaaaa;
    char placeholder_member_text_aaaaaaaaaaaaaaaaaa[8];
    enum placeholder_enum_name_aaaaaaaaaaaaaaaaaaaaa placeholder_member_enum_aaaaaaaaaaaaaaaaaa;
};

struct placeholder_event_name_aaaaaaaaaaaaaaaaaaa {
    __u32 placeholder_event_member_aaaaaaaaaaaaaaaaa;
};

struct placeholder_exported_name_aaaaaaaaaaaaaaaa {
    __u16 placeholder_exported_member_aaaaaaaaaaaaaa;
};

struct {
    __uint(type, BPF_MAP_TYPE_HASH);
    __uint(max_entries, 4);
    __type(key, __u32);
    __type(value, struct placeholder_struct_name_aaaaaaaaaaaaaaaaaa);
} placeholder_map_hash_aaaaaaaaaaaaaaaaaaaaaaa SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_RINGBUF);
    __uint(max_entries, 4096);
} placeholder_map_ring_aaaaaaaaaaaaaaaaaaaaaaa SEC(".maps");

PYPROBE_EVENT_TYPE(placeholder_map_ring_aaaaaaaaaaaaaaaaaaaaaaa, struct placeholder_event_name_aaaaaaaaaaaaaaaaaaa);
PYPROBE_EXPORT_TYPE(struct placeholder_exported_name_aaaaaaaaaaaaaaaa);

const volatile __u32 placeholder_rodata_var_aaaaaaaaaaaaaaaaaa = 1;
__u64 placeholder_bss_var_aaaaaaaaaaaaaaaaaaaaa = 0;
__u64 placeholder_data_var_aaaaaaaaaaaaaaaaaaaa = 2;
struct placeholder_struct_name_aaaaaaaaaaaaaaaaaa placeholder_bss_struct_aaaaaaaaaaaaaaaaaa;

SEC("syscall")
int placeholder_prog_one_aaaaaaaaaaaaaaaaaaaaaa(void *ctx)
{
    __u32 key = 0;
    struct placeholder_struct_name_aaaaaaaaaaaaaaaaaa *v;

    placeholder_bss_var_aaaaaaaaaaaaaaaaaaaaa += placeholder_rodata_var_aaaaaaaaaaaaaaaaaa;
    placeholder_data_var_aaaaaaaaaaaaaaaaaaaa++;
    v = bpf_map_lookup_elem(&placeholder_map_hash_aaaaaaaaaaaaaaaaaaaaaaa, &key);
    if (v)
        placeholder_bss_struct_aaaaaaaaaaaaaaaaaa = *v;
    return 0;
}

SEC("syscall")
int placeholder_prog_two_aaaaaaaaaaaaaaaaaaaaaa(void *ctx)
{
    struct placeholder_event_name_aaaaaaaaaaaaaaaaaaa *e;

    e = bpf_ringbuf_reserve(&placeholder_map_ring_aaaaaaaaaaaaaaaaaaaaaaa, sizeof(*e), 0);
    if (!e)
        return 0;
    e->placeholder_event_member_aaaaaaaaaaaaaaaaa = 1;
    bpf_ringbuf_submit(e, 0);
    return 0;
}
