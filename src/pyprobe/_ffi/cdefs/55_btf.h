/* struct btf: type records of an object's or the kernel's BTF (read field by field in btf.py). */
struct btf_ext;
struct btf_type {
    __u32 name_off;
    __u32 info;
    union {
        __u32 size;
        __u32 type;
    };
};
struct btf_member { __u32 name_off; __u32 type; __u32 offset; };
struct btf_array { __u32 type; __u32 index_type; __u32 nelems; };
struct btf_enum { __u32 name_off; __s32 val; };
struct btf_enum64 { __u32 name_off; __u32 val_lo32; __u32 val_hi32; };
struct btf_var { __u32 linkage; };
struct btf_var_secinfo { __u32 type; __u32 offset; __u32 size; };

struct btf *btf__parse(const char *path, struct btf_ext **btf_ext);
struct btf *btf__load_from_kernel_by_id(__u32 id);
struct btf *btf__new_empty(void);
void btf__free(struct btf *btf);
__u32 btf__type_cnt(const struct btf *btf);
const struct btf_type *btf__type_by_id(const struct btf *btf, __u32 id);
const char *btf__name_by_offset(const struct btf *btf, __u32 offset);
__s32 btf__find_by_name(const struct btf *btf, const char *type_name);
__s32 btf__find_by_name_kind(const struct btf *btf, const char *type_name, __u32 kind);
__s64 btf__resolve_size(const struct btf *btf, __u32 type_id);
int btf__resolve_type(const struct btf *btf, __u32 type_id);
size_t btf__pointer_size(const struct btf *btf);
int btf__fd(const struct btf *btf);
int btf__load_into_kernel(struct btf *btf);
int btf__add_int(struct btf *btf, const char *name, size_t byte_sz, int encoding);
int btf__add_array(struct btf *btf, int index_type_id, int elem_type_id, __u32 nr_elems);
int btf__add_struct(struct btf *btf, const char *name, __u32 sz);
int btf__add_field(struct btf *btf, const char *name, int field_type_id, __u32 bit_offset, __u32 bit_size);
