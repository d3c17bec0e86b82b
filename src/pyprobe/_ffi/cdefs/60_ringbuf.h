/* BPF ring buffer consumer (csrc/ringbuf.c). */
struct pyprobe_ring;
struct pyprobe_ring *pyprobe_ring_new(int map_fd);
void pyprobe_ring_free(struct pyprobe_ring *r);
size_t pyprobe_ring_size(const struct pyprobe_ring *r);
size_t pyprobe_ring_avail(const struct pyprobe_ring *r);
long pyprobe_ring_drain(struct pyprobe_ring *r, char *out, size_t out_size, __u32 *offsets, size_t max_events,
                        size_t *need, size_t *uniform, size_t *idle);
