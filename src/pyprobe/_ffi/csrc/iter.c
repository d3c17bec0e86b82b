/* BPF iterators and user ring buffers: the loops that would cost a Python call per record. */

/* One record of `size` bytes: reserved (waiting up to timeout_ms when the ring is full; 0 does not
 * wait, -1 waits forever), copied and submitted. Returns 0 or a negative errno (ENOSPC: full). */
int pyprobe_user_ring_write_one(struct user_ring_buffer *rb, const char *data, __u32 size, int timeout_ms)
{
    void *slot = timeout_ms == 0 ? user_ring_buffer__reserve(rb, size)
                                 : user_ring_buffer__reserve_blocking(rb, size, timeout_ms);

    if (!slot)
        return -(errno ? errno : ENOSPC);
    memcpy(slot, data, size);
    user_ring_buffer__submit(rb, slot);
    return 0;
}

/* `count` records of `record_size` bytes each, back to back in `data`. Stops at the first record that
 * does not fit (after waiting up to timeout_ms for it); returns the number written, or a negative errno
 * when not even the first one could be. */
long pyprobe_user_ring_write(struct user_ring_buffer *rb, const char *data, size_t record_size, size_t count,
                             int timeout_ms)
{
    size_t i;

    for (i = 0; i < count; i++) {
        int err = pyprobe_user_ring_write_one(rb, data + i * record_size, (__u32)record_size, timeout_ms);

        if (err < 0)
            return i ? (long)i : err;
    }
    return (long)i;
}

/* 1 when the kernel has BPF iterators of `target` ("task", "tcp"...), 0 when not, negative errno when
 * the probe failed otherwise. A BPF_PROG_TYPE_TRACING program of attach type BPF_TRACE_ITER needs the
 * BTF function bpf_iter_<target>, which the kernel has exactly when it has that iterator. */
int pyprobe_probe_iter(const char *target)
{
    struct bpf_insn insns[2];
    LIBBPF_OPTS(bpf_prog_load_opts, opts, .expected_attach_type = BPF_TRACE_ITER);
    int fd, id;

    id = libbpf_find_vmlinux_btf_id(target, BPF_TRACE_ITER); /* libbpf adds the bpf_iter_ prefix */
    if (id < 0)
        return id == -ESRCH || id == -ENOENT ? 0 : id;
    memset(insns, 0, sizeof(insns));
    insns[0].code = BPF_ALU64 | BPF_MOV | BPF_K;
    insns[1].code = BPF_JMP | BPF_EXIT;
    opts.attach_btf_id = (__u32)id;
    fd = bpf_prog_load(BPF_PROG_TYPE_TRACING, NULL, "GPL", insns, 2, &opts);
    if (fd < 0)
        return -errno;
    close(fd);
    return 1;
}

/* 1 when the kernel has BPF_MAP_TYPE_USER_RINGBUF (Linux 6.1), 0 when not, negative errno otherwise. */
int pyprobe_probe_user_ringbuf(void)
{
    return libbpf_probe_bpf_map_type(BPF_MAP_TYPE_USER_RINGBUF, NULL);
}
