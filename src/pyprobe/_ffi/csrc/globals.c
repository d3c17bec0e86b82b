/* After load, point libbpf's image of a global-data map at the kernel's memory (what the skeleton does). */
#include <sys/mman.h>

int pyprobe_map_remap(struct bpf_map *map, int writable)
{
    size_t size = 0, page = (size_t)sysconf(_SC_PAGE_SIZE), mmap_sz;
    void *image = bpf_map__initial_value(map, &size), *mapped;
    int fd = bpf_map__fd(map);

    if (!image || fd < 0)
        return -ENOENT;
    if (!(bpf_map__map_flags(map) & BPF_F_MMAPABLE))
        return -EOPNOTSUPP;
    mmap_sz = ((size + 7) / 8 * 8 * bpf_map__max_entries(map) + page - 1) / page * page;
    mapped = mmap(image, mmap_sz, writable ? PROT_READ | PROT_WRITE : PROT_READ, MAP_SHARED | MAP_FIXED, fd, 0);
    if (mapped == MAP_FAILED)
        return -errno;
    return 0;
}
