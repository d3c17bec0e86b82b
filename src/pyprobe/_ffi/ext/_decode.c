/* pyprobe._decode: the few bulk conversions of map dumps that cffi cannot do, because they make Python objects.
 *
 * A real CPython extension module built for the limited API of 3.10 (stable ABI, one abi3 binary for every
 * CPython >= 3.10), beside the cffi extension pyprobe._libbpf. Python (maps/_codec.py) checks every size and
 * keeps every buffer alive before calling in; this module only reads memory the caller vouched for.
 *
 *   dict_of(keys, values)                  a dict from two lists of equal length, in their order
 *   bytes_column(address, count, stride, size)
 *                                          ``count`` bytes objects of ``size`` bytes, one every ``stride``
 *   bytes_hash(cls)                        a ``__hash__`` method for ctypes types: key_hash of their bytes, in C
 *   key_hash(data)                         the hash of a struct key from its raw bytes (SipHash-1-3, keyed per
 *                                          process from Python's own hash of bytes: PYTHONHASHSEED applies)
 *   hash_order(keys, count, key_size, kind, out_order)
 *                                          the order of the keys' slots in a dict, as uint32 indexes
 *   gather(src, count, size, order, out)   a column copied in that order
 *   column_dict(keys, key_size, key_kind, values, value_size, value_kind, count, order)
 *                                          a dict straight from two raw columns of ints or bytes
 */
#define PY_SSIZE_T_CLEAN
#ifndef Py_LIMITED_API
#define Py_LIMITED_API 0x030A0000
#endif
#include <Python.h>
#include <stdint.h>
#include <string.h>

#if defined(Py_LIMITED_API) && Py_LIMITED_API + 0 < 0x030B0000
/* The buffer protocol's C side: exported by libpython since 3.0 and part of the limited API from 3.11 on, but
 * the 3.10 limited API headers do not declare it. Py_buffer's layout is the same in CPython 3.10 to 3.13 (3.11
 * made it part of the stable ABI as it was); only this file's declarations stand in for the 3.11 headers'. */
typedef struct {
    void *buf;
    PyObject *obj;
    Py_ssize_t len;
    Py_ssize_t itemsize;
    int readonly;
    int ndim;
    char *format;
    Py_ssize_t *shape;
    Py_ssize_t *strides;
    Py_ssize_t *suboffsets;
    void *internal;
} Py_buffer;
PyAPI_FUNC(int) PyObject_GetBuffer(PyObject *obj, Py_buffer *view, int flags);
PyAPI_FUNC(void) PyBuffer_Release(Py_buffer *view);
#define PyBUF_SIMPLE 0
#endif

/* dict(zip(keys, values)) without the tuple made for every pair: about a third of the insertion's cost. */
static PyObject *dict_of(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    PyObject *keys, *values, *dict;
    Py_ssize_t n;

    (void)module;
    if (nargs != 2 || !PyList_Check(args[0]) || !PyList_Check(args[1])) {
        PyErr_SetString(PyExc_TypeError, "dict_of(keys, values) takes two lists");
        return NULL;
    }
    keys = args[0];
    values = args[1];
    n = PyList_Size(keys);
    if (PyList_Size(values) != n) {
        PyErr_Format(PyExc_ValueError, "dict_of: %zd keys but %zd values", n, PyList_Size(values));
        return NULL;
    }
    dict = PyDict_New();
    if (dict == NULL)
        return NULL;
    for (Py_ssize_t i = 0; i < n; i++) {
        /* a __hash__ or __eq__ in Python may change the lists: hold both items, and a list shrunk under the
         * loop shows as an IndexError from PyList_GetItem */
        PyObject *key = PyList_GetItem(keys, i), *value = PyList_GetItem(values, i);
        int err;

        if (key == NULL || value == NULL) {
            Py_DECREF(dict);
            return NULL;
        }
        Py_INCREF(key);
        Py_INCREF(value);
        err = PyDict_SetItem(dict, key, value);
        Py_DECREF(key);
        Py_DECREF(value);
        if (err < 0) {
            Py_DECREF(dict);
            return NULL;
        }
    }
    return dict;
}

/* The bytes objects of a column of fixed-size fields: keys or values left as bytes, C strings before their cut. */
static PyObject *bytes_column(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    Py_ssize_t count, stride, size;
    const char *base;
    PyObject *list;

    (void)module;
    if (nargs != 4) {
        PyErr_SetString(PyExc_TypeError, "bytes_column(address, count, stride, size) takes four arguments");
        return NULL;
    }
    base = PyLong_AsVoidPtr(args[0]);
    count = PyLong_AsSsize_t(args[1]);
    stride = PyLong_AsSsize_t(args[2]);
    size = PyLong_AsSsize_t(args[3]);
    if (PyErr_Occurred())
        return NULL;
    if (count < 0 || size < 0 || stride < size || (count > 0 && base == NULL)) {
        PyErr_SetString(PyExc_ValueError, "bytes_column: bad address, count, stride or size");
        return NULL;
    }
    list = PyList_New(count);
    if (list == NULL)
        return NULL;
    for (Py_ssize_t i = 0; i < count; i++) {
        PyObject *item = PyBytes_FromStringAndSize(base + i * stride, size);

        if (item == NULL) {
            Py_DECREF(list);
            return NULL;
        }
        PyList_SetItem(list, i, item); /* steals the reference; cannot fail on a fresh list */
    }
    return list;
}

/* SipHash-1-3 (as CPython hashes bytes since 3.11), with a key of this module's own made at import from
 * Python's hash of two constants: random per process unless PYTHONHASHSEED fixes it. */
static uint64_t sip_k0, sip_k1;

#define ROTL(x, b) (uint64_t)(((x) << (b)) | ((x) >> (64 - (b))))
#define SIPROUND                                                                                                   \
    do {                                                                                                           \
        v0 += v1;                                                                                                  \
        v1 = ROTL(v1, 13);                                                                                         \
        v1 ^= v0;                                                                                                  \
        v0 = ROTL(v0, 32);                                                                                         \
        v2 += v3;                                                                                                  \
        v3 = ROTL(v3, 16);                                                                                         \
        v3 ^= v2;                                                                                                  \
        v0 += v3;                                                                                                  \
        v3 = ROTL(v3, 21);                                                                                         \
        v3 ^= v0;                                                                                                  \
        v2 += v1;                                                                                                  \
        v1 = ROTL(v1, 17);                                                                                         \
        v1 ^= v2;                                                                                                  \
        v2 = ROTL(v2, 32);                                                                                         \
    } while (0)

static uint64_t siphash13(const unsigned char *src, size_t len)
{
    uint64_t v0 = sip_k0 ^ 0x736f6d6570736575ULL, v1 = sip_k1 ^ 0x646f72616e646f6dULL;
    uint64_t v2 = sip_k0 ^ 0x6c7967656e657261ULL, v3 = sip_k1 ^ 0x7465646279746573ULL;
    uint64_t b = (uint64_t)len << 56, m;
    unsigned char tail[8] = {0};

    for (; len >= 8; src += 8, len -= 8) {
        memcpy(&m, src, 8);
        v3 ^= m;
        SIPROUND;
        v0 ^= m;
    }
    memcpy(tail, src, len);
    for (size_t i = 0; i < len; i++)
        b |= (uint64_t)tail[i] << (8 * i);
    v3 ^= b;
    SIPROUND;
    v0 ^= b;
    v2 ^= 0xff;
    SIPROUND;
    SIPROUND;
    SIPROUND;
    return v0 ^ v1 ^ v2 ^ v3;
}

/* The hash of a struct key from its bytes: what __hash__ below returns, and what hash_order() sorts raw keys by. */
static Py_hash_t raw_hash(const void *src, Py_ssize_t len)
{
    Py_hash_t hash = (Py_hash_t)siphash13(src, (size_t)len);

    return hash == -1 ? -2 : hash;
}

/* __hash__ of ctypes structs and unions made from BTF: raw_hash() of their bytes, read in place through the
 * buffer protocol (no bytes object). A dict of a million struct keys (a map dump) calls it once per key. */
static PyObject *struct_hash(PyObject *self, PyObject *unused)
{
    Py_buffer view;
    Py_hash_t hash;

    (void)unused;
    if (PyObject_GetBuffer(self, &view, PyBUF_SIMPLE) < 0)
        return NULL;
    hash = raw_hash(view.buf, view.len);
    PyBuffer_Release(&view);
    return PyLong_FromSsize_t(hash);
}

static PyObject *key_hash(PyObject *module, PyObject *data)
{
    (void)module;
    if (!PyBytes_Check(data)) {
        PyErr_SetString(PyExc_TypeError, "key_hash(data) takes bytes");
        return NULL;
    }
    return PyLong_FromSsize_t(raw_hash(PyBytes_AsString(data), PyBytes_Size(data)));
}

/* The hash CPython gives an int: its value modulo 2**61 - 1, with the sign of the int, and -2 for -1. */
#define HASH_MODULUS (((uint64_t)1 << 61) - 1)

static uint64_t mod_p(uint64_t x)
{
    x = (x & HASH_MODULUS) + (x >> 61); /* 2**61 = 1 (mod p) */
    return x >= HASH_MODULUS ? x - HASH_MODULUS : x;
}

static Py_hash_t int_hash(const unsigned char *src, Py_ssize_t size, int is_signed)
{
    uint64_t u = 0;
    int64_t s = 0;

    switch (size) {
    case 1: {
        uint8_t v;
        memcpy(&v, src, 1);
        u = v;
        s = (int8_t)v;
        break;
    }
    case 2: {
        uint16_t v;
        memcpy(&v, src, 2);
        u = v;
        s = (int16_t)v;
        break;
    }
    case 4: {
        uint32_t v;
        memcpy(&v, src, 4);
        u = v;
        s = (int32_t)v;
        break;
    }
    default: {
        uint64_t v;
        memcpy(&v, src, 8);
        u = v;
        s = (int64_t)v;
        break;
    }
    }
    if (!is_signed || s >= 0)
        return (Py_hash_t)mod_p(is_signed ? (uint64_t)s : u);
    {
        Py_hash_t hash = -(Py_hash_t)mod_p((uint64_t)0 - (uint64_t)s);

        return hash == -1 ? -2 : hash;
    }
}

static int int_size(Py_ssize_t size)
{
    return size == 1 || size == 2 || size == 4 || size == 8;
}

static Py_hash_t hash_at(const unsigned char *key, Py_ssize_t key_size, char kind)
{
    return kind == 'r' ? raw_hash(key, key_size) : int_hash(key, key_size, kind == 's');
}

/* The order of ``count`` raw keys in the slots of the dict they go into (a power of two >= 1.5 * count slots),
 * written as uint32 indexes into ``out_order``: inserted in that order, the dict's index is written window by
 * window, not at one random slot per key (a cache and TLB miss each); so is each smaller index the dict had
 * while it grew. kind: 'u' or 's' for integer keys of 1, 2, 4 or 8 bytes (unsigned, signed: hashed as Python
 * hashes their int), 'r' for struct keys (raw_hash). One counting sort on the high ORDER_BITS bits of the slots:
 * the keys of a bucket share a window of slots small enough for the cache (512 slots and their entries for a
 * million keys, 4096 for ten million), inside which their order does not matter. No scratch memory. */
#define ORDER_BITS 12

static PyObject *hash_order(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    const unsigned char *keys;
    Py_ssize_t count, key_size;
    const char *kind;
    uint32_t *order, mask;
    size_t counts[((size_t)1 << ORDER_BITS) + 1] = {0};
    unsigned bits, low_bits;

    (void)module;
    if (nargs != 5) {
        PyErr_SetString(PyExc_TypeError, "hash_order(keys, count, key_size, kind, out_order) takes five arguments");
        return NULL;
    }
    keys = PyLong_AsVoidPtr(args[0]);
    count = PyLong_AsSsize_t(args[1]);
    key_size = PyLong_AsSsize_t(args[2]);
    kind = PyUnicode_AsUTF8AndSize(args[3], NULL);
    order = PyLong_AsVoidPtr(args[4]);
    if (PyErr_Occurred())
        return NULL;
    if (count < 0 || count > (Py_ssize_t)UINT32_MAX || key_size <= 0 || (count > 0 && (keys == NULL || order == NULL)) ||
        strlen(kind) != 1 || !strchr("usr", kind[0]) || (kind[0] != 'r' && !int_size(key_size))) {
        PyErr_SetString(PyExc_ValueError, "hash_order: bad addresses, count, key size or kind");
        return NULL;
    }
    if (count == 0)
        Py_RETURN_NONE;
    for (bits = 3; bits < 32 && ((Py_ssize_t)1 << bits) < count + count / 2; bits++)
        ;
    low_bits = bits > ORDER_BITS ? bits - ORDER_BITS : 0;
    mask = (uint32_t)(((uint64_t)1 << bits) - 1);
    /* the slot of each key is computed twice (counted, then placed): cheaper than storing it */
    for (Py_ssize_t i = 0; i < count; i++)
        counts[(((uint32_t)hash_at(keys + i * key_size, key_size, kind[0]) & mask) >> low_bits) + 1]++;
    for (size_t d = 1; d <= ((size_t)1 << ORDER_BITS); d++)
        counts[d] += counts[d - 1];
    /* counts[d] is where bucket d starts */
    for (Py_ssize_t i = 0; i < count; i++)
        order[counts[((uint32_t)hash_at(keys + i * key_size, key_size, kind[0]) & mask) >> low_bits]++] = (uint32_t)i;
    Py_RETURN_NONE;
}

/* How many entries ahead a walk in hash order asks for the key and value it reads at random */
#define PREFETCH 16

/* Reads ``count`` uint32 indexes at ``address``, each below ``limit`` (checked: they index caller memory). */
static const uint32_t *order_arg(PyObject *address, Py_ssize_t count, Py_ssize_t limit)
{
    const uint32_t *order = PyLong_AsVoidPtr(address);

    if (order == NULL)
        return NULL;
    for (Py_ssize_t i = 0; i < count; i++)
        if ((Py_ssize_t)order[i] >= limit) {
            PyErr_Format(PyExc_ValueError, "order: index %zd is %u, beyond %zd entries", i, order[i], limit);
            return NULL;
        }
    return order;
}

/* out[i] = src[order[i]] for ``count`` fields of ``size`` bytes: a blob in the order hash_order() gave. */
static PyObject *gather(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    const unsigned char *src;
    unsigned char *out;
    const uint32_t *order;
    Py_ssize_t count, size;

    (void)module;
    if (nargs != 5) {
        PyErr_SetString(PyExc_TypeError, "gather(src, count, size, order, out) takes five arguments");
        return NULL;
    }
    src = PyLong_AsVoidPtr(args[0]);
    count = PyLong_AsSsize_t(args[1]);
    size = PyLong_AsSsize_t(args[2]);
    out = PyLong_AsVoidPtr(args[4]);
    if (PyErr_Occurred())
        return NULL;
    if (count < 0 || size <= 0 || (count > 0 && (src == NULL || out == NULL))) {
        PyErr_SetString(PyExc_ValueError, "gather: bad addresses, count or size");
        return NULL;
    }
    if (count == 0)
        Py_RETURN_NONE;
    order = order_arg(args[3], count, count);
    if (order == NULL)
        return PyErr_Occurred() ? NULL : (PyErr_SetString(PyExc_ValueError, "gather: no order"), NULL);
    for (Py_ssize_t i = 0; i < count; i++) {
        if (i + PREFETCH < count)
            __builtin_prefetch(src + (size_t)order[i + PREFETCH] * size);
        memcpy(out + i * size, src + (size_t)order[i] * size, size);
    }
    Py_RETURN_NONE;
}

/* One key or value of a column: an int of 1, 2, 4 or 8 bytes ('u' unsigned, 's' signed) or bytes ('b'). */
static PyObject *column_item(const unsigned char *src, Py_ssize_t size, char kind)
{
    if (kind == 'b')
        return PyBytes_FromStringAndSize((const char *)src, size);
    switch (size) {
    case 1:
        return kind == 's' ? PyLong_FromLong(*(const int8_t *)src) : PyLong_FromUnsignedLong(*src);
    case 2: {
        uint16_t v;

        memcpy(&v, src, 2);
        return kind == 's' ? PyLong_FromLong((int16_t)v) : PyLong_FromUnsignedLong(v);
    }
    case 4: {
        uint32_t v;

        memcpy(&v, src, 4);
        return kind == 's' ? PyLong_FromLong((int32_t)v) : PyLong_FromUnsignedLong(v);
    }
    default: {
        uint64_t v;

        memcpy(&v, src, 8);
        return kind == 's' ? PyLong_FromLongLong((int64_t)v) : PyLong_FromUnsignedLongLong(v);
    }
    }
}

static int column_kind(const char *kind, Py_ssize_t size)
{
    if (kind == NULL || strlen(kind) != 1)
        return 0;
    if (kind[0] == 'b')
        return size >= 0;
    return (kind[0] == 'u' || kind[0] == 's') && int_size(size);
}

/* A dict made straight from two raw columns, without the lists of keys and values (8 bytes and a page fault
 * every 512 entries each) and with every object inserted while it is still in the cache. Entries in the order of
 * the uint32 indexes at ``order`` (0: the columns' order). */
static PyObject *column_dict(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    const unsigned char *keys, *values;
    Py_ssize_t key_size, value_size, count;
    const char *key_kind, *value_kind;
    const uint32_t *order = NULL;
    PyObject *dict;

    (void)module;
    if (nargs != 8) {
        PyErr_SetString(PyExc_TypeError, "column_dict(keys, key_size, key_kind, values, value_size, value_kind, "
                                         "count, order) takes eight arguments");
        return NULL;
    }
    keys = PyLong_AsVoidPtr(args[0]);
    key_size = PyLong_AsSsize_t(args[1]);
    key_kind = PyUnicode_AsUTF8AndSize(args[2], NULL);
    values = PyLong_AsVoidPtr(args[3]);
    value_size = PyLong_AsSsize_t(args[4]);
    value_kind = PyUnicode_AsUTF8AndSize(args[5], NULL);
    count = PyLong_AsSsize_t(args[6]);
    if (PyErr_Occurred())
        return NULL;
    if (count < 0 || !column_kind(key_kind, key_size) || !column_kind(value_kind, value_size) ||
        (count > 0 && (keys == NULL || values == NULL))) {
        PyErr_SetString(PyExc_ValueError, "column_dict: bad addresses, count, sizes or kinds");
        return NULL;
    }
    if (args[7] != Py_None) {
        order = order_arg(args[7], count, count);
        if (order == NULL && (count > 0 || PyErr_Occurred()))
            return PyErr_Occurred() ? NULL : (PyErr_SetString(PyExc_ValueError, "column_dict: no order"), NULL);
    }
    dict = PyDict_New();
    if (dict == NULL)
        return NULL;
    for (Py_ssize_t i = 0; i < count; i++) {
        size_t at = order != NULL ? order[i] : (size_t)i;
        PyObject *key, *value;
        int err;

        if (order != NULL && i + PREFETCH < count) {
            __builtin_prefetch(keys + (size_t)order[i + PREFETCH] * key_size);
            __builtin_prefetch(values + (size_t)order[i + PREFETCH] * value_size);
        }
        key = column_item(keys + at * key_size, key_size, key_kind[0]);
        if (key == NULL)
            goto fail;
        value = column_item(values + at * value_size, value_size, value_kind[0]);
        if (value == NULL) {
            Py_DECREF(key);
            goto fail;
        }
        err = PyDict_SetItem(dict, key, value);
        Py_DECREF(key);
        Py_DECREF(value);
        if (err < 0)
            goto fail;
    }
    return dict;
fail:
    Py_DECREF(dict);
    return NULL;
}

static PyMethodDef hash_def = {"__hash__", struct_hash, METH_NOARGS, "key_hash(bytes(self)), computed in place."};

static PyObject *bytes_hash(PyObject *module, PyObject *cls)
{
    (void)module;
    if (!PyType_Check(cls)) {
        PyErr_SetString(PyExc_TypeError, "bytes_hash(cls) takes a class");
        return NULL;
    }
    return PyDescr_NewMethod((PyTypeObject *)cls, &hash_def);
}

static PyMethodDef methods[] = {
    {"dict_of", (PyCFunction)(void (*)(void))dict_of, METH_FASTCALL,
     "dict_of(keys, values): a dict from two lists of equal length, in their order."},
    {"bytes_column", (PyCFunction)(void (*)(void))bytes_column, METH_FASTCALL,
     "bytes_column(address, count, stride, size): count bytes objects of size bytes, one every stride."},
    {"bytes_hash", bytes_hash, METH_O, "bytes_hash(cls): a __hash__ method for cls returning key_hash(bytes(self))."},
    {"key_hash", key_hash, METH_O, "key_hash(data): the hash of a struct key from its raw bytes."},
    {"hash_order", (PyCFunction)(void (*)(void))hash_order, METH_FASTCALL,
     "hash_order(keys, count, key_size, kind, out_order): the order of the keys' dict slots, as uint32 indexes."},
    {"gather", (PyCFunction)(void (*)(void))gather, METH_FASTCALL,
     "gather(src, count, size, order, out): out[i] = src[order[i]] for count fields of size bytes."},
    {"column_dict", (PyCFunction)(void (*)(void))column_dict, METH_FASTCALL,
     "column_dict(keys, key_size, key_kind, values, value_size, value_kind, count, order): a dict of two raw "
     "columns of ints or bytes, in the order given (None: theirs)."},
    {NULL, NULL, 0, NULL},
};

/* The SipHash key: Python's (randomized) hash of two constants, so PYTHONHASHSEED=0 makes it reproducible. */
static int module_exec(PyObject *module)
{
    static const char *const names[2] = {"pyprobe._decode k0", "pyprobe._decode k1"};
    uint64_t *const keys[2] = {&sip_k0, &sip_k1};

    (void)module;
    for (int i = 0; i < 2; i++) {
        PyObject *name = PyBytes_FromString(names[i]);
        Py_hash_t hash;

        if (name == NULL)
            return -1;
        hash = PyObject_Hash(name);
        Py_DECREF(name);
        if (hash == -1)
            return -1;
        *keys[i] = (uint64_t)hash;
    }
    return 0;
}

static PyModuleDef_Slot slots[] = {
    {Py_mod_exec, module_exec},
    {0, NULL},
};

static struct PyModuleDef module_def = {
    PyModuleDef_HEAD_INIT, "pyprobe._decode", "Bulk conversions of map dumps into Python objects.", 0, methods,
    slots, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit__decode(void)
{
    return PyModuleDef_Init(&module_def);
}
