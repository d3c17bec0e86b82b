/* Cgroup helpers: the filesystem type behind an fd, and the probe for cgroup bpf_links. */
#include <sys/vfs.h>

/* Stores the f_type of the filesystem holding `fd` (CGROUP2_SUPER_MAGIC...). Returns 0 or -errno. */
int pyprobe_fs_magic(int fd, long long *magic)
{
    struct statfs st;

    if (fstatfs(fd, &st) < 0)
        return -errno;
    *magic = (long long)st.f_type;
    return 0;
}

/* Whether the kernel makes cgroup bpf_links (Linux 5.7): a cgroup_skb program linked to no cgroup
 * (fd -1) fails with EBADF where BPF_LINK_CREATE knows cgroups, EINVAL where it does not.
 * Returns 1, 0, or a negative errno when the program cannot be loaded. */
int pyprobe_probe_cgroup_link(void)
{
    struct bpf_insn insns[2];
    LIBBPF_OPTS(bpf_prog_load_opts, opts);
    int fd, link, err;

    memset(insns, 0, sizeof(insns));
    insns[0].code = BPF_ALU64 | BPF_MOV | BPF_K;
    insns[0].imm = 1;
    insns[1].code = BPF_JMP | BPF_EXIT;
    opts.expected_attach_type = BPF_CGROUP_INET_INGRESS;
    fd = bpf_prog_load(BPF_PROG_TYPE_CGROUP_SKB, NULL, "GPL", insns, 2, &opts);
    if (fd < 0)
        return -errno;
    link = bpf_link_create(fd, -1, BPF_CGROUP_INET_INGRESS, NULL);
    err = errno;
    if (link >= 0)
        close(link);
    close(fd);
    return link < 0 && err == EBADF ? 1 : 0;
}
