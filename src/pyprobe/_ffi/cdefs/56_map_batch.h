/* Map creation, batch syscalls and the C loops of batch dumps (csrc/map_batch.c). */
struct bpf_map_create_opts {
    size_t sz;
    __u32 btf_fd;
    __u32 btf_key_type_id;
    __u32 btf_value_type_id;
    __u32 btf_vmlinux_value_type_id;
    __u32 inner_map_fd;
    __u32 map_flags;
    __u64 map_extra;
    __u32 numa_node;
    __u32 map_ifindex;
    ...;
};
int bpf_map_create(int map_type, const char *map_name, __u32 key_size, __u32 value_size,
                   __u32 max_entries, const struct bpf_map_create_opts *opts);
int bpf_map_freeze(int fd);

int pyprobe_map_dump(int fd, __u32 key_size, __u32 value_size, __u32 capacity, __u32 chunk,
                     void *keys, void *values, __u32 *count);
int pyprobe_map_dump_keys(int fd, __u32 key_size, __u32 capacity, void *keys, __u32 *count);
int pyprobe_map_update_many(int fd, __u32 key_size, __u32 value_size, __u32 n, const void *keys,
                            const void *values, __u64 flags, __u32 *done);
int pyprobe_map_delete_many(int fd, __u32 key_size, __u32 n, const void *keys, __u32 *done);
int pyprobe_map_count(int fd, __u32 key_size, __u32 limit, __u32 *count);
#define PYPROBE_WALK_BATCH ...
#define PYPROBE_WALK_KEYS ...
#define PYPROBE_WALK_BATCH_DONE ...
#define PYPROBE_WALK_KEYS_DONE ...
int pyprobe_map_walk(int fd, __u32 key_size, __u32 value_size, void *token, int *state, void *keys,
                     void *values, __u32 *count);
