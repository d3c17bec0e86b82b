/* pyprobe._decode: the few bulk conversions of map dumps that cffi cannot do, because they make Python objects.
 *
 * A real CPython extension module built for the limited API of 3.10 (stable ABI, one abi3 binary for every
 * CPython >= 3.10), beside the cffi extension pyprobe._libbpf. Python (maps/_codec.py) checks every size and
 * keeps every buffer alive before calling in; this module only reads memory the caller vouched for.
 *
 *   dict_of(keys, values)                  a dict from two lists of equal length, in their order
 *   bytes_column(address, count, stride, size)
 *                                          ``count`` bytes objects of ``size`` bytes, one every ``stride``
 *   bytes_hash(cls)                        a ``__hash__`` method for ctypes types: hash(bytes(self)), in C
 */
#define PY_SSIZE_T_CLEAN
#ifndef Py_LIMITED_API
#define Py_LIMITED_API 0x030A0000
#endif
#include <Python.h>

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

/* __hash__ of ctypes structs and unions made from BTF: hash(bytes(self)) as the Python version computes it,
 * without the Python frame (a dict of a million struct keys calls it once per key). */
static PyObject *struct_hash(PyObject *self, PyObject *unused)
{
    PyObject *raw;
    Py_hash_t hash;

    (void)unused;
    raw = PyObject_Bytes(self);
    if (raw == NULL)
        return NULL;
    hash = PyObject_Hash(raw);
    Py_DECREF(raw);
    if (hash == -1)
        return NULL;
    return PyLong_FromSsize_t(hash);
}

static PyMethodDef hash_def = {"__hash__", struct_hash, METH_NOARGS, "hash(bytes(self)), computed in C."};

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
    {"bytes_hash", bytes_hash, METH_O, "bytes_hash(cls): a __hash__ method for cls returning hash(bytes(self))."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module_def = {
    PyModuleDef_HEAD_INIT, "pyprobe._decode", "Bulk conversions of map dumps into Python objects.", 0, methods,
    NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit__decode(void)
{
    return PyModuleDef_Init(&module_def);
}
