/* Network attach kinds: netfilter links (libbpf), tcx and netkit links, classic TC filters (csrc/network.c). */
struct bpf_netfilter_opts {
    size_t sz;
    __u32 pf;
    __u32 hooknum;
    __s32 priority;
    __u32 flags;
};
struct bpf_link *bpf_program__attach_netfilter(const struct bpf_program *prog, const struct bpf_netfilter_opts *opts);

int pyprobe_link_create_ifindex(int prog_fd, int ifindex, int attach_type, __u32 flags, __u32 relative_fd,
                                __u64 expected_revision);
int pyprobe_tc_attach(int ifindex, int egress, int prog_fd, __u32 handle, __u32 priority, int *created,
                      __u32 *out_handle, __u32 *out_priority);
int pyprobe_tc_detach(int netns_fd, int ifindex, int egress, __u32 handle, __u32 priority, int destroy_qdisc);
int pyprobe_probe_ifindex_link(int attach_type);
int pyprobe_probe_netfilter(void);
