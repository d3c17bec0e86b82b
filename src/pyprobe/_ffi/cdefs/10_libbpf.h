/* libbpf core: version, errors, printing. */
__u32 libbpf_major_version(void);
__u32 libbpf_minor_version(void);
const char *libbpf_version_string(void);
int libbpf_strerror(int err, char *buf, size_t size);
const char *libbpf_bpf_prog_type_str(int t);
const char *libbpf_bpf_map_type_str(int t);
const char *libbpf_bpf_attach_type_str(int t);
const char *libbpf_bpf_link_type_str(int t);
int libbpf_num_possible_cpus(void);
int libbpf_probe_bpf_prog_type(int prog_type, const void *opts);
int libbpf_probe_bpf_map_type(int map_type, const void *opts);
int libbpf_probe_bpf_helper(int prog_type, int helper_id, const void *opts);

/* Built-against version and the print bridge (csrc/print.c). */
extern const int pyprobe_built_major;
extern const int pyprobe_built_minor;
extern "Python" void _pyprobe_log(int level, const char *msg);
void pyprobe_set_print_level(int level);
void pyprobe_install_print(void);
