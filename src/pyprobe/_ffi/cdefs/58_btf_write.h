/* Writing BTF from Python types (btf__new_empty, btf__add_int/struct/field/array, btf__load_into_kernel
   and btf__fd are declared in 55_btf.h). */
int btf__add_union(struct btf *btf, const char *name, __u32 sz);
int btf__add_float(struct btf *btf, const char *name, size_t byte_sz);
