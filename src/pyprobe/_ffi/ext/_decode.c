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
 *   hash_order(keys, values, count, key_size, value_size, kind, out_keys, out_values)
 *                                          the entries copied into ``out_*`` in the order of their dict slots
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

/* The entries, copied from ``keys``/``values`` into ``out_keys``/``out_values`` sorted by the low bits of their
 * keys' hashes: the index of the dict they go into (a power of two >= 1.5 * count slots) is then written nearly
 * in order, not at one random slot per key (a cache miss each); so is each smaller index the dict had while it
 * grew (one sweep after another). kind: 'u' or 's' for integer keys of 1, 2, 4 or 8 bytes (unsigned, signed:
 * hashed as Python hashes their int), 'r' for struct keys (raw_hash). The sort: the slot bits of every hash, a
 * counting sort of the indexes on the high half of them, then one on the low half inside each bucket (small
 * enough for the cache); about 12 bytes of scratch per entry. */
static PyObject *hash_order(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    const unsigned char *keys, *values;
    unsigned char *out_keys, *out_values;
    Py_ssize_t count, key_size, value_size;
    const char *kind;
    uint32_t *slots, *order, *bucket, *counts, *low_counts, mask;
    size_t largest = 0;
    unsigned bits, low_bits, high_bits;

    (void)module;
    if (nargs != 8) {
        PyErr_SetString(PyExc_TypeError, "hash_order(keys, values, count, key_size, value_size, kind, out_keys, "
                                         "out_values) takes eight arguments");
        return NULL;
    }
    keys = PyLong_AsVoidPtr(args[0]);
    values = PyLong_AsVoidPtr(args[1]);
    count = PyLong_AsSsize_t(args[2]);
    key_size = PyLong_AsSsize_t(args[3]);
    value_size = PyLong_AsSsize_t(args[4]);
    kind = PyUnicode_AsUTF8AndSize(args[5], NULL);
    out_keys = PyLong_AsVoidPtr(args[6]);
    out_values = PyLong_AsVoidPtr(args[7]);
    if (PyErr_Occurred())
        return NULL;
    if (count < 0 || count > (Py_ssize_t)UINT32_MAX || key_size <= 0 || value_size < 0 ||
        (count > 0 && (keys == NULL || out_keys == NULL || (value_size > 0 && (values == NULL || out_values == NULL)))) ||
        strlen(kind) != 1 || !strchr("usr", kind[0]) ||
        (kind[0] != 'r' && key_size != 1 && key_size != 2 && key_size != 4 && key_size != 8)) {
        PyErr_SetString(PyExc_ValueError, "hash_order: bad addresses, count, sizes or kind");
        return NULL;
    }
    if (count == 0)
        Py_RETURN_NONE;
    for (bits = 3; bits < 32 && ((Py_ssize_t)1 << bits) < count + count / 2; bits++)
        ;
    low_bits = bits / 2;
    high_bits = bits - low_bits;
    mask = (uint32_t)(((uint64_t)1 << bits) - 1);
    slots = PyMem_Malloc((size_t)count * sizeof(*slots));
    order = PyMem_Malloc((size_t)count * sizeof(*order));
    counts = PyMem_Calloc(((size_t)1 << high_bits) + 1, sizeof(*counts));
    low_counts = PyMem_Malloc(((size_t)1 << low_bits) * sizeof(*low_counts));
    bucket = NULL;
    if (slots == NULL || order == NULL || counts == NULL || low_counts == NULL)
        goto no_memory;
    for (Py_ssize_t i = 0; i < count; i++) {
        const unsigned char *key = keys + i * key_size;
        Py_hash_t hash = kind[0] == 'r' ? raw_hash(key, key_size) : int_hash(key, key_size, kind[0] == 's');

        slots[i] = (uint32_t)hash & mask;
        counts[(slots[i] >> low_bits) + 1]++;
    }
    for (size_t d = 1; d <= ((size_t)1 << high_bits); d++) {
        if (counts[d] > largest)
            largest = counts[d];
        counts[d] += counts[d - 1];
    }
    /* counts[d] is where bucket d starts: place every index, then counts[d] is where bucket d + 1 starts */
    for (Py_ssize_t i = 0; i < count; i++)
        order[counts[slots[i] >> low_bits]++] = (uint32_t)i;
    bucket = PyMem_Malloc((largest ? largest : 1) * sizeof(*bucket));
    if (bucket == NULL)
        goto no_memory;
    for (size_t d = 0, start = 0; d < ((size_t)1 << high_bits); start = counts[d], d++) {
        size_t n = counts[d] - start, at = 0;
        uint32_t low_mask = ((uint32_t)1 << low_bits) - 1;

        if (n < 2)
            continue;
        memset(low_counts, 0, ((size_t)1 << low_bits) * sizeof(*low_counts));
        for (size_t j = start; j < start + n; j++)
            low_counts[slots[order[j]] & low_mask]++;
        for (size_t v = 0; v <= low_mask; v++) {
            uint32_t k = low_counts[v];

            low_counts[v] = (uint32_t)at;
            at += k;
        }
        for (size_t j = start; j < start + n; j++)
            bucket[low_counts[slots[order[j]] & low_mask]++] = order[j];
        memcpy(order + start, bucket, n * sizeof(*bucket));
    }
    for (Py_ssize_t i = 0; i < count; i++) {
        size_t from = order[i];

        memcpy(out_keys + i * key_size, keys + from * key_size, key_size);
        if (value_size > 0)
            memcpy(out_values + i * value_size, values + from * value_size, value_size);
    }
    PyMem_Free(slots);
    PyMem_Free(order);
    PyMem_Free(counts);
    PyMem_Free(low_counts);
    PyMem_Free(bucket);
    Py_RETURN_NONE;
no_memory:
    PyMem_Free(slots);
    PyMem_Free(order);
    PyMem_Free(counts);
    PyMem_Free(low_counts);
    PyMem_Free(bucket);
    return PyErr_NoMemory();
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
     "hash_order(keys, values, count, key_size, value_size, kind, out_keys, out_values): the entries copied in "
     "the order of their dict slots."},
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
