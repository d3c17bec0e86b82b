/* Attach APIs of every program kind, feature probes, perf_event_open, C++ demangling. */
enum probe_attach_mode {
    PROBE_ATTACH_MODE_DEFAULT = 0,
    PROBE_ATTACH_MODE_LEGACY,
    PROBE_ATTACH_MODE_PERF,
    PROBE_ATTACH_MODE_LINK,
};

struct bpf_uprobe_multi_opts {
    size_t sz;
    const char **syms;
    const unsigned long *offsets;
    const unsigned long *ref_ctr_offsets;
    const __u64 *cookies;
    size_t cnt;
    bool retprobe;
    ...;
};
struct bpf_link *bpf_program__attach_uprobe_multi(const struct bpf_program *prog, pid_t pid,
                                                  const char *binary_path, const char *func_pattern,
                                                  const struct bpf_uprobe_multi_opts *opts);

struct bpf_usdt_opts {
    size_t sz;
    __u64 usdt_cookie;
    ...;
};
struct bpf_link *bpf_program__attach_usdt(const struct bpf_program *prog, pid_t pid, const char *binary_path,
                                          const char *usdt_provider, const char *usdt_name,
                                          const struct bpf_usdt_opts *opts);

struct bpf_kprobe_opts {
    size_t sz;
    __u64 bpf_cookie;
    size_t offset;
    bool retprobe;
    enum probe_attach_mode attach_mode;
    ...;
};
struct bpf_link *bpf_program__attach_kprobe_opts(const struct bpf_program *prog, const char *func_name,
                                                 const struct bpf_kprobe_opts *opts);

struct bpf_tracepoint_opts {
    size_t sz;
    __u64 bpf_cookie;
    ...;
};
struct bpf_link *bpf_program__attach_tracepoint_opts(const struct bpf_program *prog, const char *tp_category,
                                                     const char *tp_name, const struct bpf_tracepoint_opts *opts);

struct bpf_raw_tracepoint_opts {
    size_t sz;
    __u64 cookie;
    ...;
};
struct bpf_link *bpf_program__attach_raw_tracepoint_opts(const struct bpf_program *prog, const char *tp_name,
                                                         struct bpf_raw_tracepoint_opts *opts);

struct bpf_trace_opts {
    size_t sz;
    __u64 cookie;
    ...;
};
struct bpf_link *bpf_program__attach_trace_opts(const struct bpf_program *prog, const struct bpf_trace_opts *opts);
struct bpf_link *bpf_program__attach_lsm(const struct bpf_program *prog);
struct bpf_link *bpf_program__attach_freplace(const struct bpf_program *prog, int target_fd,
                                              const char *attach_func_name);

struct bpf_perf_event_opts {
    size_t sz;
    __u64 bpf_cookie;
    ...;
};
struct bpf_link *bpf_program__attach_perf_event_opts(const struct bpf_program *prog, int pfd,
                                                     const struct bpf_perf_event_opts *opts);
struct bpf_link *bpf_program__attach_xdp(const struct bpf_program *prog, int ifindex);


/* Helpers of csrc/attach.c. */
int pyprobe_probe_prog(int prog_type, int attach_type, const char *btf_func, int do_attach);
int pyprobe_probe_uprobe_multi(void);
int pyprobe_perf_event_open(__u32 type, __u64 config, __u64 period, int freq, int pid, int cpu);
int pyprobe_uprobe_event_open(__u32 type, __u64 config, const char *path, __u64 offset, int pid);
void pyprobe_uprobe_events_open(__u32 type, const __u64 *configs, const char *const *paths, const __u64 *offsets,
                                int pid, int *out, size_t count);
int pyprobe_demangle(const char *mangled, char *out, size_t out_size);
