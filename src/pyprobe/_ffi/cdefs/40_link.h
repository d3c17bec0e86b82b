/* struct bpf_link: every attachment. */
int bpf_link__fd(const struct bpf_link *link);
int bpf_link__destroy(struct bpf_link *link);
int bpf_link__detach(struct bpf_link *link);
void bpf_link__disconnect(struct bpf_link *link);
int bpf_link__pin(struct bpf_link *link, const char *path);
int bpf_link__unpin(struct bpf_link *link);
const char *bpf_link__pin_path(const struct bpf_link *link);
struct bpf_link *bpf_link__open(const char *path);

struct bpf_link_info {
    __u32 type;
    __u32 id;
    __u32 prog_id;
    ...;
};
int bpf_link_get_info_by_fd(int link_fd, struct bpf_link_info *info, __u32 *info_len);

/* uprobes (more attach kinds in their own files). */
struct bpf_uprobe_opts {
    size_t sz;
    size_t ref_ctr_offset;
    __u64 bpf_cookie;
    bool retprobe;
    const char *func_name;
    ...;
};
struct bpf_link *bpf_program__attach_uprobe_opts(const struct bpf_program *prog, pid_t pid,
                                                 const char *binary_path, size_t func_offset,
                                                 const struct bpf_uprobe_opts *opts);
