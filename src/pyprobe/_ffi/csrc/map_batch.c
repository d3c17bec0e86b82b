/* Hot loops of map dumps and batch updates: the whole loop runs here, without the GIL. */
#include <stdlib.h>

enum {
    PYPROBE_WALK_BATCH = 0,
    PYPROBE_WALK_BATCH_NEXT = 1,
    PYPROBE_WALK_BATCH_DONE = 2,
    PYPROBE_WALK_KEYS = 3,
    PYPROBE_WALK_KEYS_NEXT = 4,
    PYPROBE_WALK_KEYS_DONE = 5,
};


static int pyprobe_batch_unsupported(int err)
{
    return err == -EINVAL || err == -ENOTSUP || err == -EOPNOTSUPP || err == -524 /* ENOTSUPP */;
}

/* Keys of the map by get_next_key, deduplicated against restarts by the caller's capacity bound. */
int pyprobe_map_dump_keys(int fd, __u32 key_size, __u32 capacity, void *keys, __u32 *count)
{
    char *out = keys;
    __u32 n = 0;
    int err;

    *count = 0;
    while (n < capacity) {
        err = bpf_map_get_next_key(fd, n ? out + (size_t)(n - 1) * key_size : NULL, out + (size_t)n * key_size);
        if (err == -ENOENT)
            break;
        if (err < 0) {
            *count = n;
            return err;
        }
        n++;
    }
    *count = n;
    return 0;
}

/*
 * Reads every entry into keys/values (capacity entries each) with BPF_MAP_LOOKUP_BATCH,
 * `chunk` entries per syscall (doubled when a hash bucket holds more). Falls back to
 * get_next_key + lookup when the kernel or map type has no batch lookup. Returns 0 or
 * -errno; *count says how many entries were written either way.
 */
int pyprobe_map_dump(int fd, __u32 key_size, __u32 value_size, __u32 capacity, __u32 chunk,
                     void *keys, void *values, __u32 *count)
{
    LIBBPF_OPTS(bpf_map_batch_opts, opts);
    size_t token_size = key_size > 8 ? key_size : 8;
    char *in = calloc(2, token_size), *out = in ? in + token_size : NULL, *tmp;
    char *k = keys, *v = values;
    __u32 total = 0, n;
    int err = 0, first = 1;

    *count = 0;
    if (!in)
        return -ENOMEM;
    if (chunk == 0)
        chunk = 1024;
    while (total < capacity) {
        n = capacity - total < chunk ? capacity - total : chunk;
        err = bpf_map_lookup_batch(fd, first ? NULL : in, out, k + (size_t)total * key_size,
                                   v + (size_t)total * value_size, &n, &opts);
        if (err == -ENOSPC && n == 0 && chunk < capacity) {
            chunk *= 2; /* a bucket holds more entries than one chunk */
            continue;
        }
        if (err < 0 && err != -ENOENT) {
            if (first && pyprobe_batch_unsupported(err))
                goto fallback;
            break;
        }
        total += n;
        if (err == -ENOENT) {
            err = 0;
            break;
        }
        first = 0;
        tmp = in;
        in = out;
        out = tmp;
    }
    free(in < out ? in : out);
    *count = total;
    return err;

fallback:
    free(in < out ? in : out);
    err = pyprobe_map_dump_keys(fd, key_size, capacity, keys, &n);
    if (err < 0)
        return err;
    for (__u32 i = 0; i < n; i++) {
        char *key = k + (size_t)i * key_size;
        int ret = bpf_map_lookup_elem(fd, key, v + (size_t)total * value_size);

        if (ret == -ENOENT)
            continue; /* deleted meanwhile */
        if (ret < 0) {
            *count = total;
            return ret;
        }
        if (total != i)
            memmove(k + (size_t)total * key_size, key, key_size);
        total++;
    }
    *count = total;
    return 0;
}

/*
 * Stores n pairs with BPF_MAP_UPDATE_BATCH, or one update per pair where the map type lacks it or
 * the flags are NOEXIST/EXIST (the batch command refuses every flag but BPF_F_LOCK). *done says
 * how many were stored before an error. A batch refused before its first pair leaves count as it
 * was (n): nothing was stored then.
 */
int pyprobe_map_update_many(int fd, __u32 key_size, __u32 value_size, __u32 n, const void *keys,
                            const void *values, __u64 flags, __u32 *done)
{
    LIBBPF_OPTS(bpf_map_batch_opts, opts, .elem_flags = flags);
    const char *k = keys, *v = values;
    __u32 count = n;
    int err;

    *done = 0;
    if (n == 0)
        return 0;
    if ((flags & ~(__u64)BPF_F_LOCK) == 0) {
        err = bpf_map_update_batch(fd, keys, values, &count, &opts);
        if (err == 0) {
            *done = n;
            return 0;
        }
        if (count >= n)
            count = 0;
        if (!pyprobe_batch_unsupported(err) || count != 0) {
            *done = count;
            return err;
        }
    }
    for (__u32 i = 0; i < n; i++) {
        err = bpf_map_update_elem(fd, k + (size_t)i * key_size, v + (size_t)i * value_size, flags);
        if (err < 0)
            return err;
        *done = i + 1;
    }
    return 0;
}

int pyprobe_map_delete_many(int fd, __u32 key_size, __u32 n, const void *keys, __u32 *done)
{
    LIBBPF_OPTS(bpf_map_batch_opts, opts);
    const char *k = keys;
    __u32 count = n;
    int err;

    *done = 0;
    if (n == 0)
        return 0;
    err = bpf_map_delete_batch(fd, keys, &count, &opts);
    if (err == 0) {
        *done = n;
        return 0;
    }
    if (count >= n)
        count = 0; /* refused before the first key (e.g. ENOTSUPP: no batch delete): nothing deleted */
    if (!pyprobe_batch_unsupported(err) || count != 0) {
        *done = count;
        return err;
    }
    for (__u32 i = 0; i < n; i++) {
        err = bpf_map_delete_elem(fd, k + (size_t)i * key_size);
        if (err < 0)
            return err;
        *done = i + 1;
    }
    return 0;
}

/* Number of keys, walking get_next_key (at most `limit` steps). */
int pyprobe_map_count(int fd, __u32 key_size, __u32 limit, __u32 *count)
{
    char buf[2][512];
    __u32 n = 0;
    int err, cur = 0;

    *count = 0;
    if (key_size > sizeof(buf[0]))
        return -E2BIG;
    err = bpf_map_get_next_key(fd, NULL, buf[cur]);
    while (err == 0 && n < limit) {
        n++;
        err = bpf_map_get_next_key(fd, buf[cur], buf[!cur]);
        cur = !cur;
    }
    *count = n;
    return err == -ENOENT || err == 0 ? 0 : err;
}

/*
 * One chunk of an iteration over the map, continued from `token` (2 * max(key_size, 8) bytes, kept
 * by the caller between calls). *state: PYPROBE_WALK_BATCH before the first chunk, then the
 * kernel's BPF_MAP_LOOKUP_BATCH token goes on in `token`; PYPROBE_WALK_KEYS walks get_next_key +
 * lookup instead (also where the kernel or map type has no batch lookup), the last key walked in
 * `token`; PYPROBE_WALK_BATCH_DONE or PYPROBE_WALK_KEYS_DONE once the map has been walked to its
 * end. At most *count entries go to keys/values; *count says how many did. Returns 0 or -errno; -ENOSPC with *count == 0: a hash
 * bucket holds more entries than *count, call again with room for more.
 */
int pyprobe_map_walk(int fd, __u32 key_size, __u32 value_size, void *token, int *state, void *keys,
                     void *values, __u32 *count)
{
    LIBBPF_OPTS(bpf_map_batch_opts, opts);
    size_t token_size = key_size > 8 ? key_size : 8;
    char *in = token, *out = in + token_size, *k = keys, *v = values;
    __u32 cap = *count, n = cap, steps = 0;
    int err;

    *count = 0;
    if (*state == PYPROBE_WALK_BATCH || *state == PYPROBE_WALK_BATCH_NEXT) {
        err = bpf_map_lookup_batch(fd, *state == PYPROBE_WALK_BATCH ? NULL : in, out, keys, values, &n, &opts);
        if (err < 0 && err != -ENOENT) {
            if (*state == PYPROBE_WALK_BATCH && pyprobe_batch_unsupported(err)) {
                *state = PYPROBE_WALK_KEYS;
                goto keys;
            }
            return err; /* -ENOSPC: n is 0 */
        }
        *count = n;
        if (err == -ENOENT) {
            *state = PYPROBE_WALK_BATCH_DONE;
        } else {
            *state = PYPROBE_WALK_BATCH_NEXT;
            memcpy(in, out, token_size);
        }
        return 0;
    }
    if (*state != PYPROBE_WALK_KEYS && *state != PYPROBE_WALK_KEYS_NEXT)
        return 0; /* done */
keys:
    n = 0;
    /* a deleted previous key sends get_next_key back to the first key: the caller drops repeats */
    while (n < cap && steps++ < 4 * cap + 16) {
        char *key = k + (size_t)n * key_size;

        err = bpf_map_get_next_key(fd, *state == PYPROBE_WALK_KEYS ? NULL : in, key);
        if (err == -ENOENT) {
            *state = PYPROBE_WALK_KEYS_DONE;
            break;
        }
        if (err < 0) {
            *count = n;
            return err;
        }
        *state = PYPROBE_WALK_KEYS_NEXT;
        memcpy(in, key, key_size);
        err = bpf_map_lookup_elem(fd, key, v + (size_t)n * value_size);
        if (err == -ENOENT)
            continue; /* deleted meanwhile */
        if (err < 0) {
            *count = n;
            return err;
        }
        n++;
    }
    *count = n;
    return 0;
}
