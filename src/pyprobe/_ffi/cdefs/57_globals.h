/* Global-variable sections: map the loaded map's kernel memory over libbpf's image (csrc/globals.c). */
int pyprobe_map_remap(struct bpf_map *map, int writable);
