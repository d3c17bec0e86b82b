/* DWARF CFI unwinder of copied user stacks (csrc/unwind.c). */
struct pyprobe_uw_module {
    uint64_t start, end;
    uint64_t bias;
    const uint8_t *eh_frame;
    uint64_t eh_frame_len, eh_frame_vaddr;
    const uint8_t *hdr;
    uint64_t hdr_len, hdr_vaddr;
};
struct pyprobe_uw_proc {
    uint32_t pid;
    uint32_t nmods;
    const struct pyprobe_uw_module *mods;
};
long pyprobe_uw_unwind(const struct pyprobe_uw_proc *proc, const uint64_t *regs_in, const uint8_t *stack,
                       uint64_t stack_len, uint64_t *ips, uint32_t max_frames, uint32_t *flags);
struct pyprobe_uw_cache_entry;
size_t pyprobe_uw_cache_entry_size(void);
long pyprobe_uw_batch(const struct pyprobe_uw_proc *procs, size_t nprocs, const uint8_t *buf, const uint32_t *offsets,
                      size_t n, uint32_t header, uint64_t *ips, uint32_t *nips, uint32_t *flags, uint32_t max_frames,
                      struct pyprobe_uw_cache_entry *cache, uint32_t cache_entries);
