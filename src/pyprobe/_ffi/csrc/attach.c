/* Attach helpers: kernel feature probes, perf_event_open, C++ demangling. */
#include <linux/perf_event.h>
#include <setjmp.h>
#include <sys/syscall.h>

/* libstdc++'s demangler, the callback form (from libstdc++.a's cp-demangle.o, linked in): it hands the
 * output to a sink in chunks of at most 256 bytes and allocates nothing on the heap (its tables live on
 * the stack, sized by the input), so the sink may stop it with longjmp once the output is too long. */
extern int __gcclibcxx_demangle_callback(const char *mangled, void (*sink)(const char *, size_t, void *),
                                         void *opaque);

struct pyprobe_demangle_out {
    char *buf;
    size_t cap; /* bytes the output may take, the NUL excluded */
    size_t len;
    jmp_buf too_long;
};

static void pyprobe_demangle_sink(const char *text, size_t n, void *opaque)
{
    struct pyprobe_demangle_out *out = opaque;

    if (n > out->cap - out->len)
        longjmp(out->too_long, 1);
    memcpy(out->buf + out->len, text, n);
    out->len += n;
}

/* Demangles `mangled` into `out` (NUL-terminated). Returns the length written, -1 when it is no valid
 * C++ name, -2 when the demangled name would not fit in `out_size` bytes: the demangler stops there, so
 * time and memory are bounded by `out_size` and strlen(mangled) whatever the name. */
int pyprobe_demangle(const char *mangled, char *out, size_t out_size)
{
    struct pyprobe_demangle_out sink;

    if (out_size == 0)
        return -2;
    sink.buf = out;
    sink.cap = out_size - 1;
    sink.len = 0;
    if (setjmp(sink.too_long) != 0)
        return -2;
    if (__gcclibcxx_demangle_callback(mangled, pyprobe_demangle_sink, &sink) != 0)
        return -1;
    out[sink.len] = '\0';
    return (int)sink.len;
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

/* perf_event_open(2) of `attr` (given its type and config here), close-on-exec: the fd or a negative errno. */
static int open_event(struct perf_event_attr *attr, __u32 type, __u64 config, int pid, int cpu)
{
    long fd;

    attr->size = sizeof(*attr);
    attr->type = type;
    attr->config = config;
    fd = syscall(__NR_perf_event_open, attr, pid, cpu, -1, PERF_FLAG_FD_CLOEXEC);
    return fd < 0 ? -errno : (int)fd;
}

/* perf_event_open(2) of a sampling event; `freq` makes `period` a frequency in Hz. Returns the fd
 * (close-on-exec) or a negative errno. */
int pyprobe_perf_event_open(__u32 type, __u64 config, __u64 period, int freq, int pid, int cpu)
{
    struct perf_event_attr attr;

    memset(&attr, 0, sizeof(attr));
    attr.sample_period = period;
    attr.freq = freq ? 1 : 0;
    return open_event(&attr, type, config, pid, cpu);
}

/* perf_event_open(2) of a uprobe (or, with the retprobe bit in `config`, a uretprobe) at `offset` in the file
 * `path`, through the uprobe PMU of type `type`; pid -1 traces every process. Created enabled and without a
 * program: it fires only once a program is attached to it. Returns the fd (close-on-exec) or a negative errno. */
int pyprobe_uprobe_event_open(__u32 type, __u64 config, const char *path, __u64 offset, int pid)
{
    struct perf_event_attr attr;

    memset(&attr, 0, sizeof(attr));
    attr.config1 = (__u64)(uintptr_t)path; /* uprobe_path */
    attr.config2 = offset;                 /* probe_offset */
    return open_event(&attr, type, config, pid < 0 ? -1 : pid, pid < 0 ? 0 : -1);
}

/* pyprobe_uprobe_event_open for `count` probes in one call (the caller does not hold the GIL between them):
 * out[i] receives the fd or a negative errno. */
void pyprobe_uprobe_events_open(__u32 type, const __u64 *configs, const char *const *paths, const __u64 *offsets,
                                int pid, int *out, size_t count)
{
    for (size_t i = 0; i < count; i++)
        out[i] = pyprobe_uprobe_event_open(type, configs[i], paths[i], offsets[i], pid);
}
