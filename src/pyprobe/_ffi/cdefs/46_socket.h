/* Socket attach kinds: programs attached to a map (sockmap, sockhash) and to a network namespace. */
int bpf_prog_attach(int prog_fd, int attachable_fd, int type, unsigned int flags);
int bpf_prog_detach2(int prog_fd, int attachable_fd, int type);
struct bpf_link *bpf_program__attach_netns(const struct bpf_program *prog, int netns_fd);
