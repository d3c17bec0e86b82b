/* struct bpf_program and the program syscalls. */
const char *bpf_program__name(const struct bpf_program *prog);
const char *bpf_program__section_name(const struct bpf_program *prog);
int bpf_program__type(const struct bpf_program *prog);
int bpf_program__set_type(struct bpf_program *prog, int type);
int bpf_program__expected_attach_type(const struct bpf_program *prog);
int bpf_program__set_expected_attach_type(struct bpf_program *prog, int type);
bool bpf_program__autoload(const struct bpf_program *prog);
int bpf_program__set_autoload(struct bpf_program *prog, bool autoload);
bool bpf_program__autoattach(const struct bpf_program *prog);
void bpf_program__set_autoattach(struct bpf_program *prog, bool autoattach);
size_t bpf_program__insn_cnt(const struct bpf_program *prog);
int bpf_program__fd(const struct bpf_program *prog);
int bpf_program__pin(struct bpf_program *prog, const char *path);
int bpf_program__unpin(struct bpf_program *prog, const char *path);
int bpf_program__set_attach_target(struct bpf_program *prog, int attach_prog_fd, const char *attach_func_name);
int bpf_program__set_log_level(struct bpf_program *prog, __u32 log_level);
struct bpf_link *bpf_program__attach(const struct bpf_program *prog);

struct bpf_prog_info {
    __u32 type;
    __u32 id;
    __u8 tag[8];
    __u32 jited_prog_len;
    __u32 xlated_prog_len;
    __u64 load_time;
    __u32 created_by_uid;
    __u32 nr_map_ids;
    char name[16];
    __u64 run_time_ns;
    __u64 run_cnt;
    __u32 verified_insns;
    ...;
};
int bpf_prog_get_info_by_fd(int prog_fd, struct bpf_prog_info *info, __u32 *info_len);

struct bpf_test_run_opts {
    size_t sz;
    const void *data_in;
    void *data_out;
    __u32 data_size_in;
    __u32 data_size_out;
    const void *ctx_in;
    void *ctx_out;
    __u32 ctx_size_in;
    __u32 ctx_size_out;
    __u32 retval;
    int repeat;
    __u32 duration;
    __u32 flags;
    __u32 cpu;
    __u32 batch_size;
    ...;
};
int bpf_prog_test_run_opts(int prog_fd, struct bpf_test_run_opts *opts);
int bpf_prog_get_fd_by_id(__u32 id);
int bpf_prog_get_next_id(__u32 start_id, __u32 *next_id);
