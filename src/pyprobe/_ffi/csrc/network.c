/* Network attach helpers: tcx and netkit links by ifindex, classic TC (clsact + bpf filter), probes. */
#include <fcntl.h>
#include <sched.h>

#ifndef CLONE_NEWNET
#define CLONE_NEWNET 0x40000000
#endif
extern int setns(int fd, int nstype); /* declared by sched.h only under _GNU_SOURCE */

/* A tcx or netkit link of `prog_fd` on `ifindex` (attach type BPF_TCX_* or BPF_NETKIT_*), placed by
 * `flags` (BPF_F_BEFORE / BPF_F_AFTER, BPF_F_LINK when `relative_fd` is a link). Returns the link's
 * fd or a negative errno. The direction is the caller's, not the program's expected attach type. */
int pyprobe_link_create_ifindex(int prog_fd, int ifindex, int attach_type, __u32 flags, __u32 relative_fd,
                                __u64 expected_revision)
{
    LIBBPF_OPTS(bpf_link_create_opts, opts);
    int fd;

    opts.flags = flags;
    /* tcx and netkit share the layout of their options in bpf_link_create_opts */
    opts.tcx.relative_fd = relative_fd;
    opts.tcx.expected_revision = expected_revision;
    fd = bpf_link_create(prog_fd, ifindex, (enum bpf_attach_type)attach_type, &opts);
    return fd < 0 ? -errno : fd;
}

/* Attaches `prog_fd` as a direct-action bpf filter on the clsact qdisc of `ifindex`, creating the
 * qdisc when it is missing (`*created` says so; it is removed again when the attach fails). Returns 0
 * with the filter's handle and priority, or a negative errno. */
int pyprobe_tc_attach(int ifindex, int egress, int prog_fd, __u32 handle, __u32 priority, int *created,
                      __u32 *out_handle, __u32 *out_priority)
{
    LIBBPF_OPTS(bpf_tc_hook, hook, .ifindex = ifindex, .attach_point = egress ? BPF_TC_EGRESS : BPF_TC_INGRESS);
    LIBBPF_OPTS(bpf_tc_opts, opts, .prog_fd = prog_fd, .handle = handle, .priority = priority);
    int err;

    *created = 0;
    err = bpf_tc_hook_create(&hook);
    if (err == 0)
        *created = 1;
    else if (err != -EEXIST)
        return err;
    err = bpf_tc_attach(&hook, &opts);
    if (err < 0) {
        if (*created) {
            hook.attach_point = BPF_TC_INGRESS | BPF_TC_EGRESS;
            bpf_tc_hook_destroy(&hook);
            *created = 0;
        }
        return err;
    }
    *out_handle = opts.handle;
    *out_priority = opts.priority;
    return 0;
}

/* Removes the filter `handle`/`priority` and, with `destroy_qdisc`, the clsact qdisc of `ifindex`,
 * inside the network namespace `netns_fd` (the one it was attached in; -1: the caller's). Returns 0 or
 * the first negative errno; the namespace of the calling thread is restored. */
int pyprobe_tc_detach(int netns_fd, int ifindex, int egress, __u32 handle, __u32 priority, int destroy_qdisc)
{
    LIBBPF_OPTS(bpf_tc_hook, hook, .ifindex = ifindex, .attach_point = egress ? BPF_TC_EGRESS : BPF_TC_INGRESS);
    LIBBPF_OPTS(bpf_tc_opts, opts, .handle = handle, .priority = priority);
    int here = -1, err, err2 = 0;

    if (netns_fd >= 0) {
        here = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
        if (here < 0)
            return -errno;
        if (setns(netns_fd, CLONE_NEWNET) < 0) {
            err = -errno;
            close(here);
            return err;
        }
    }
    err = bpf_tc_detach(&hook, &opts);
    if (destroy_qdisc) {
        hook.attach_point = BPF_TC_INGRESS | BPF_TC_EGRESS;
        err2 = bpf_tc_hook_destroy(&hook);
    }
    if (here >= 0) {
        if (setns(here, CLONE_NEWNET) < 0 && err == 0)
            err = -errno;
        close(here);
    }
    return err < 0 ? err : err2;
}

static int pyprobe_load_sched_cls(void)
{
    struct bpf_insn insns[2];
    int fd;

    memset(insns, 0, sizeof(insns));
    insns[0].code = BPF_ALU64 | BPF_MOV | BPF_K; /* r0 = 0: TC_ACT_OK / TCX_PASS */
    insns[1].code = BPF_JMP | BPF_EXIT;
    fd = bpf_prog_load(BPF_PROG_TYPE_SCHED_CLS, NULL, "GPL", insns, 2, NULL);
    return fd < 0 ? -errno : fd;
}

/* 1 when the kernel has links of `attach_type` (BPF_TCX_INGRESS, BPF_NETKIT_PRIMARY) on interfaces, 0
 * when not, a negative errno when the probe itself failed. As cilium/ebpf probes it: a link on an
 * ifindex no interface has fails with ENODEV where the kind exists, with EINVAL where it does not. */
int pyprobe_probe_ifindex_link(int attach_type)
{
    int fd = pyprobe_load_sched_cls(), link, err;

    if (fd < 0)
        return fd;
    link = bpf_link_create(fd, 0x7fffffff, (enum bpf_attach_type)attach_type, NULL);
    err = errno;
    if (link >= 0)
        close(link);
    close(fd);
    if (link >= 0 || err == ENODEV)
        return 1;
    if (err == EINVAL || err == EOPNOTSUPP)
        return 0;
    return -err;
}

/* 1 when the kernel has netfilter links, 0 when not, a negative errno when the probe itself failed:
 * a netfilter program loads, and a link for an unknown protocol family fails with EAFNOSUPPORT (the
 * program, which would drop every packet, is never attached). */
int pyprobe_probe_netfilter(void)
{
    struct bpf_insn insns[2];
    LIBBPF_OPTS(bpf_prog_load_opts, load_opts, .expected_attach_type = BPF_NETFILTER);
    LIBBPF_OPTS(bpf_link_create_opts, link_opts);
    int fd, link, err;

    memset(insns, 0, sizeof(insns));
    insns[0].code = BPF_ALU64 | BPF_MOV | BPF_K;
    insns[0].imm = 1; /* NF_ACCEPT */
    insns[1].code = BPF_JMP | BPF_EXIT;
    fd = bpf_prog_load(BPF_PROG_TYPE_NETFILTER, NULL, "GPL", insns, 2, &load_opts);
    if (fd < 0)
        return errno == EINVAL ? 0 : -errno;
    link_opts.netfilter.pf = 255;
    link_opts.netfilter.hooknum = 0;
    link_opts.netfilter.priority = 1;
    link = bpf_link_create(fd, 0, BPF_NETFILTER, &link_opts);
    err = errno;
    if (link >= 0)
        close(link);
    close(fd);
    if (link >= 0 || err == EAFNOSUPPORT || err == EPROTO)
        return 1;
    if (err == EINVAL || err == EOPNOTSUPP)
        return 0;
    return -err;
}
