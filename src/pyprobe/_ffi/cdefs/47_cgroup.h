/* Cgroup attach kinds (pyprobe.attach.cgroup): bpf_link and classic bpf_prog_attach (bpf_prog_detach2: 46_socket.h). */
struct bpf_link *bpf_program__attach_cgroup(const struct bpf_program *prog, int cgroup_fd);
int bpf_link__update_program(struct bpf_link *link, struct bpf_program *prog);

struct bpf_prog_attach_opts {
    size_t sz;
    __u32 flags;
    int replace_prog_fd;
    ...;
};
int bpf_prog_attach_opts(int prog_fd, int target, int type, const struct bpf_prog_attach_opts *opts);
int bpf_prog_query(int target_fd, int type, __u32 query_flags, __u32 *attach_flags, __u32 *prog_ids,
                   __u32 *prog_cnt);

/* Helpers of csrc/cgroup.c. */
int pyprobe_fs_magic(int fd, long long *magic);
int pyprobe_probe_cgroup_link(void);
