/* BPF perf buffer consumer (csrc/perfbuf.c). */
struct pyprobe_perf;
struct pyprobe_perf *pyprobe_perf_new(int map_fd, size_t pages, __u32 wakeup_events, size_t truncate);
void pyprobe_perf_free(struct pyprobe_perf *p);
int pyprobe_perf_epoll_fd(const struct pyprobe_perf *p);
int pyprobe_perf_consume(struct pyprobe_perf *p);
char *pyprobe_perf_staged(const struct pyprobe_perf *p, __u32 **offsets, size_t *n, size_t *uniform);
__u64 pyprobe_perf_reset(struct pyprobe_perf *p);
