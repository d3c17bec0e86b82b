/* BPF iterators, user ring buffers, struct_ops maps and custom SEC() handlers. */
union bpf_iter_link_info {
    struct {
        __u32 map_fd;
    } map;
    struct {
        int order;
        __u32 cgroup_fd;
        __u64 cgroup_id;
    } cgroup;
    struct {
        __u32 tid;
        __u32 pid;
        __u32 pid_fd;
    } task;
};
struct bpf_iter_attach_opts {
    size_t sz;
    union bpf_iter_link_info *link_info;
    __u32 link_info_len;
    ...;
};
struct bpf_link *bpf_program__attach_iter(const struct bpf_program *prog, const struct bpf_iter_attach_opts *opts);
int bpf_iter_create(int link_fd);

struct bpf_link *bpf_map__attach_struct_ops(const struct bpf_map *map);
int bpf_link__update_map(struct bpf_link *link, const struct bpf_map *map);

struct libbpf_prog_handler_opts {
    size_t sz;
    long cookie;
    ...;
};
int libbpf_register_prog_handler(const char *sec, int prog_type, int exp_attach_type,
                                 const struct libbpf_prog_handler_opts *opts);
int libbpf_unregister_prog_handler(int handler_id);

struct user_ring_buffer;
struct user_ring_buffer_opts {
    size_t sz;
    ...;
};
struct user_ring_buffer *user_ring_buffer__new(int map_fd, const struct user_ring_buffer_opts *opts);
void *user_ring_buffer__reserve(struct user_ring_buffer *rb, __u32 size);
void *user_ring_buffer__reserve_blocking(struct user_ring_buffer *rb, __u32 size, int timeout_ms);
void user_ring_buffer__submit(struct user_ring_buffer *rb, void *sample);
void user_ring_buffer__discard(struct user_ring_buffer *rb, void *sample);
void user_ring_buffer__free(struct user_ring_buffer *rb);

/* Helpers of csrc/iter.c. */
long pyprobe_user_ring_write(struct user_ring_buffer *rb, const char *data, size_t record_size, size_t count,
                             int timeout_ms);
int pyprobe_user_ring_write_one(struct user_ring_buffer *rb, const char *data, __u32 size, int timeout_ms);
int pyprobe_probe_iter(const char *target);
int pyprobe_probe_user_ringbuf(void);
