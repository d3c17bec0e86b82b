/* Attach helpers: kernel feature probes, perf_event_open, C++ demangling. */
#include <linux/perf_event.h>
#include <sys/syscall.h>

/* libstdc++'s demangler (the extension links libstdc++). */
extern char *__cxa_demangle(const char *mangled, char *out, size_t *length, int *status);

/* Demangles `mangled` into `out`; returns the length written, or -1 when it is no valid C++ name. */
int pyprobe_demangle(const char *mangled, char *out, size_t out_size)
{
    int status = 0;
    char *text = __cxa_demangle(mangled, NULL, NULL, &status);
    size_t n;

    if (status != 0 || text == NULL) {
        free(text);
        return -1;
    }
    n = strlen(text);
    if (n >= out_size) {
        free(text);
        return (int)n + 1; /* caller retries with a bigger buffer */
    }
    memcpy(out, text, n + 1);
    free(text);
    return (int)n;
}

/* Loads `r0 = 0; exit` as `prog_type` (attached to vmlinux function `btf_func` when given) and, with
 * `do_attach`, attaches it through a link and detaches it again. Returns 0 or a negative errno. */
int pyprobe_probe_prog(int prog_type, int attach_type, const char *btf_func, int do_attach)
{
    struct bpf_insn insns[2];
    LIBBPF_OPTS(bpf_prog_load_opts, opts);
    int fd, link, err = 0;

    memset(insns, 0, sizeof(insns));
    insns[0].code = BPF_ALU64 | BPF_MOV | BPF_K;
    insns[1].code = BPF_JMP | BPF_EXIT;
    opts.expected_attach_type = (enum bpf_attach_type)attach_type;
    if (btf_func) {
        int id = libbpf_find_vmlinux_btf_id(btf_func, (enum bpf_attach_type)attach_type);

        if (id < 0)
            return id;
        opts.attach_btf_id = (__u32)id;
    }
    fd = bpf_prog_load((enum bpf_prog_type)prog_type, NULL, "GPL", insns, 2, &opts);
    if (fd < 0)
        return -errno;
    if (do_attach) {
        link = bpf_link_create(fd, 0, (enum bpf_attach_type)attach_type, NULL);
        if (link < 0)
            err = -errno;
        else
            close(link);
    }
    close(fd);
    return err;
}

/* 1 when the kernel has uprobe_multi links, 0 when not, negative errno when the probe itself failed
 * (as libbpf probes it: a link on "/" must fail with EBADF). */
int pyprobe_probe_uprobe_multi(void)
{
    struct bpf_insn insns[2];
    LIBBPF_OPTS(bpf_prog_load_opts, load_opts, .expected_attach_type = BPF_TRACE_UPROBE_MULTI);
    LIBBPF_OPTS(bpf_link_create_opts, link_opts);
    unsigned long offset = 0;
    int fd, link, err;

    memset(insns, 0, sizeof(insns));
    insns[0].code = BPF_ALU64 | BPF_MOV | BPF_K;
    insns[1].code = BPF_JMP | BPF_EXIT;
    fd = bpf_prog_load(BPF_PROG_TYPE_KPROBE, NULL, "GPL", insns, 2, &load_opts);
    if (fd < 0)
        return -errno;
    link_opts.uprobe_multi.path = "/";
    link_opts.uprobe_multi.offsets = &offset;
    link_opts.uprobe_multi.cnt = 1;
    link = bpf_link_create(fd, -1, BPF_TRACE_UPROBE_MULTI, &link_opts);
    err = -errno;
    if (link >= 0)
        close(link);
    close(fd);
    return link < 0 && err == -EBADF;
}

/* perf_event_open(2) of a sampling event; `freq` makes `period` a frequency in Hz. Returns the fd
 * (close-on-exec) or a negative errno. */
int pyprobe_perf_event_open(__u32 type, __u64 config, __u64 period, int freq, int pid, int cpu)
{
    struct perf_event_attr attr;
    long fd;

    memset(&attr, 0, sizeof(attr));
    attr.size = sizeof(attr);
    attr.type = type;
    attr.config = config;
    attr.sample_period = period;
    attr.freq = freq ? 1 : 0;
    fd = syscall(__NR_perf_event_open, &attr, pid, cpu, -1, PERF_FLAG_FD_CLOEXEC);
    if (fd < 0)
        return -errno;
    return (int)fd;
}
