"""BTF written from ctypes types, so that standalone maps carry their key and value types.

:class:`BtfWriter` describes ctypes types in a new, empty libbpf ``struct btf``:
integer types (``c_int8`` ... ``c_uint64``, ``c_bool``, ``c_char``), ``c_float``
and ``c_double``, :class:`ctypes.Structure` / :class:`ctypes.Union` subclasses
(nested, inherited, with ``_anonymous_`` members, packed), arrays, ``char``
arrays, and the types :mod:`pyprobe.btf` makes from an object's BTF (their
padding members are left out again). Each Python type is written once.

What BTF (or :mod:`pyprobe.btf` reading it back) cannot express raises
:class:`UnsupportedType`: bitfields, pointers (``c_void_p``, ``POINTER(...)``,
``c_char_p``), ``c_wchar``, ``c_longdouble``, byte-swapped types
(``BigEndianStructure`` on a little-endian host), member names that are not C
identifiers. Read back by :mod:`pyprobe.btf`, a lone ``c_char`` member comes
back as ``c_uint8`` (``char`` arrays still as bytes) and integer types as their
fixed-size equivalents (``c_longlong`` as ``c_int64``). Nothing here makes a
system call except :meth:`BtfWriter.load`.
"""

from __future__ import annotations

import ctypes
import errno
import re
import sys
from typing import Any

from pyprobe._ffi import ffi, lib
from pyprobe.btf import Btf, BtfError, _BtfComposite
from pyprobe.errors import check_int

__all__ = ["BtfWriter", "UnsupportedType"]

_BTF_INT_SIGNED, _BTF_INT_CHAR, _BTF_INT_BOOL = 1, 2, 4
# ctypes type code -> (C name, BTF int encoding)
_INT_CODES = {
    "b": ("signed char", _BTF_INT_SIGNED), "B": ("unsigned char", 0),
    "h": ("short", _BTF_INT_SIGNED), "H": ("unsigned short", 0),
    "i": ("int", _BTF_INT_SIGNED), "I": ("unsigned int", 0),
    "l": ("long", _BTF_INT_SIGNED), "L": ("unsigned long", 0),
    "q": ("long long", _BTF_INT_SIGNED), "Q": ("unsigned long long", 0),
    "?": ("_Bool", _BTF_INT_BOOL), "c": ("char", _BTF_INT_CHAR),
}  # fmt: skip
_FLOAT_CODES = {"f": "float", "d": "double"}
_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,127}")
_BTF_PADDING = re.compile(r"_pad\d+|_pad_end")
_NATIVE_ORDER = "__ctype_le__" if sys.byteorder == "little" else "__ctype_be__"
_SWAPPED_BASES: tuple[type, ...] = tuple(
    getattr(ctypes, n)
    for n in (
        ("BigEndianStructure", "BigEndianUnion")
        if sys.byteorder == "little"
        else ("LittleEndianStructure", "LittleEndianUnion")
    )
    if hasattr(ctypes, n)
)


class UnsupportedType(TypeError):
    """A ctypes type that BTF (as pyprobe writes and reads it) cannot describe."""


def _describe(t: Any) -> str:
    return getattr(t, "__name__", repr(t))


class BtfWriter:
    """A new BTF blob being written from ctypes types (owns a libbpf ``struct btf``).

    :meth:`add` returns the BTF type id of a ctypes type; :meth:`load` hands
    the blob to the kernel (the fd stays owned by this writer); :meth:`close`
    frees the blob and closes that fd. Use as a context manager. Minimum
    kernel for :meth:`load`: 5.2 (BTF), 5.13 for floats.
    """

    def __init__(self) -> None:
        self._ptr: Any = ffi.NULL
        ptr = lib.btf__new_empty()
        if ptr == ffi.NULL:
            raise MemoryError("cannot allocate a BTF blob")
        self._ptr = ptr
        self._ids: dict[Any, int] = {}

    def __enter__(self) -> BtfWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Frees the blob (and closes its kernel fd, if loaded). Idempotent."""
        ptr, self._ptr = self._ptr, ffi.NULL
        if ptr != ffi.NULL:
            lib.btf__free(ptr)

    def _live(self) -> Any:
        if self._ptr == ffi.NULL:
            raise ValueError("the BTF writer is closed")
        return self._ptr

    def _ret(self, ret: int, what: str) -> int:
        return check_int(ret, f"write BTF for {what}", BtfError)

    # --- writing -----------------------------------------------------------------
    def add(self, ctype: Any) -> int:
        """The BTF type id describing ``ctype``, written on first use.

        Raises :class:`UnsupportedType` for what BTF cannot express (nothing
        is then guaranteed about the blob's content: discard it).
        """
        self._live()
        key: Any = ctype
        found = self._ids.get(key)
        if found is not None:
            return found
        type_id = self._write(ctype)
        self._ids[key] = type_id
        return type_id

    def _write(self, t: Any) -> int:
        if not isinstance(t, type):
            raise UnsupportedType(f"{t!r} is not a ctypes type")
        if issubclass(t, ctypes._SimpleCData):
            return self._write_scalar(t)
        if issubclass(t, ctypes.Array):
            return self._write_array(t)
        if issubclass(t, (ctypes.Structure, ctypes.Union)):
            return self._write_composite(t)
        raise UnsupportedType(f"{_describe(t)} has no BTF description (pointers and functions are not written)")

    def _write_scalar(self, t: Any) -> int:
        code = getattr(t, "_type_", None)
        if getattr(t, _NATIVE_ORDER, t) is not t:
            raise UnsupportedType(f"{_describe(t)} is byte-swapped")
        size = ctypes.sizeof(t)
        if code in _INT_CODES:
            name, encoding = _INT_CODES[code]
            return self._ret(lib.btf__add_int(self._live(), name.encode(), size, encoding), name)
        if code in _FLOAT_CODES and size in (4, 8):
            name = _FLOAT_CODES[code]
            return self._ret(lib.btf__add_float(self._live(), name.encode(), size), name)
        raise UnsupportedType(f"{_describe(t)} (ctypes code {code!r}) has no BTF description")

    def _write_array(self, t: Any) -> int:
        elem = self.add(t._type_)
        index = self.add(ctypes.c_uint32)
        return self._ret(lib.btf__add_array(self._live(), index, elem, int(t._length_)), _describe(t))

    def _members(self, t: Any) -> list[tuple[str, Any, int]]:
        """(BTF member name, ctype, byte offset) of every member of ``t``, base classes' first."""
        if _SWAPPED_BASES and issubclass(t, _SWAPPED_BASES):
            raise UnsupportedType(f"{_describe(t)} is byte-swapped")
        btf_made = issubclass(t, _BtfComposite)
        if btf_made and any(isinstance(v, property) for v in vars(t).values()):
            raise UnsupportedType(f"{_describe(t)} has bitfields")
        out: list[tuple[str, Any, int]] = []
        for klass in reversed(t.__mro__):
            fields = vars(klass).get("_fields_")
            if fields is None:
                continue
            anonymous = set(vars(klass).get("_anonymous_", ()))
            for spec in fields:
                name, ftype = spec[0], spec[1]
                if len(spec) > 2:
                    raise UnsupportedType(f"member {name!r} of {_describe(t)} is a bitfield")
                if btf_made and (_BTF_PADDING.fullmatch(name) or (name == "_raw" and issubclass(t, ctypes.Union))):
                    continue
                if not _IDENT.fullmatch(name):
                    raise UnsupportedType(f"member {name!r} of {_describe(t)} is not a C identifier")
                offset = int(getattr(t, name).offset)
                out.append(("" if name in anonymous else name, ftype, offset))
        return out

    def _write_composite(self, t: Any) -> int:
        members = self._members(t)
        member_ids = [(name, self.add(ftype), offset) for name, ftype, offset in members]
        if issubclass(t, _BtfComposite):
            label = t._btf_name_.split(" ", 1)[-1]
            name = "" if label.startswith("<") else label
        else:
            name = t.__name__
        if not _IDENT.fullmatch(name):
            name = ""
        size = ctypes.sizeof(t)
        ptr = self._live()
        add = lib.btf__add_union if issubclass(t, ctypes.Union) else lib.btf__add_struct
        type_id = self._ret(add(ptr, name.encode(), size), _describe(t))
        for mname, mid, offset in member_ids:
            self._ret(lib.btf__add_field(ptr, mname.encode(), mid, offset * 8, 0), f"{_describe(t)}.{mname}")
        return type_id

    # --- using it ----------------------------------------------------------------
    def reader(self) -> Btf:
        """A :class:`~pyprobe.btf.Btf` reading this blob (valid while the writer is open)."""
        return Btf(self._live(), check=self._live)

    def load(self) -> int:
        """Loads the blob into the kernel; returns its BTF fd, owned by this writer.

        Blocks for one bpf() call. Raises :class:`~pyprobe.BtfError` when the
        kernel refuses it (the kernel's reason goes to the ``pyprobe.libbpf`` log).
        """
        ptr = self._live()
        check_int(lib.btf__load_into_kernel(ptr), "load written BTF into the kernel", BtfError)
        fd = int(lib.btf__fd(ptr))
        if fd < 0:
            raise BtfError(errno.EBADF, "the loaded BTF has no fd", context="load written BTF into the kernel")
        return fd
