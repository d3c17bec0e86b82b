"""Conversion between Python values and the raw bytes of map keys, map values and globals.

A :class:`Codec` is made once per map side from the ctypes type BTF gives
(or from the declared size when there is no BTF) and checks every value
before any system call: a wrong type raises TypeError, a wrong size or an
out-of-range number ValueError, each naming the map (or variable) at fault.
"""

from __future__ import annotations

import contextlib
import ctypes
import gc
import struct
import sys
from collections.abc import Iterator
from operator import itemgetter, methodcaller
from typing import Any

from pyprobe import btf
from pyprobe._ffi import ffi
from pyprobe.btf import _BtfComposite, fill_array, scalar_bounds, to_python

try:
    from pyprobe import _decode
except ImportError:  # a build without the C module: numpy, struct and zip below do the same, slower
    _decode = None  # type: ignore[assignment]

__all__ = ["Codec", "PerCpuCodec", "bulk", "bytes_column", "columns_dict", "dict_of", "hash_ordered", "numpy_if_worth"]


@contextlib.contextmanager
def bulk() -> Iterator[None]:
    """Pauses the cyclic garbage collector while a million objects are made, and spares them the young scans.

    Without the pause, creating them triggers collection passes that cost more
    than the decoding itself. Pausing alone only postpones the cost: the
    objects stay in the youngest generation, and the first allocation after
    the collector is re-enabled scans all of them, then the middle generation
    scans them again (about 120 ms per million structs and pairs). So on the
    way out they are moved straight to the oldest generation with
    ``gc.freeze()`` + ``gc.unfreeze()`` (two list splices, no scan): they are
    still collected, by full collections only, as long-lived objects are.
    Whatever else was young at that moment is promoted with them. Skipped when
    the collector was already disabled, and when the program has frozen
    objects of its own (unfreezing would release them).
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            if gc.get_freeze_count() == 0:
                gc.freeze()
                gc.unfreeze()
            gc.enable()


_SCALAR_CODES = set("bBhHiIlLqQ?fdc")
_INT_CODES = frozenset("bBhHiIlLqQ")  # not "?": bools
# From this many entries on, a dump goes into its dict in slot order (hash_ordered): below, the dict's tables
# stay in the caches and the sort costs what the insertion saves (even at 1,000,000; a third faster at 10,000,000).
_HASH_ORDER_FROM = 2_000_000
_SIGNED_INT_CODES = frozenset("bhilq")

# From this many values on, a column of bytes is cut by numpy (40 ns a value against 100 ns for
# struct.iter_unpack) even when numpy is not imported yet: its import costs what ~1,000,000 values save.
_NUMPY_WORTH_IMPORTING = 1_000_000
_first = itemgetter(0)
_before_nul = methodcaller("partition", b"\0")


def numpy_if_worth(count: int) -> Any:
    """numpy when it is imported already (or worth importing for ``count`` values) and installed, else None."""
    np = sys.modules.get("numpy")
    if np is None and count >= _NUMPY_WORTH_IMPORTING:
        try:
            import numpy as np
        except ImportError:
            return None
    return np


def bytes_column(view: memoryview, count: int, stride: int, size: int) -> list[bytes]:
    """``count`` bytes objects of ``size`` bytes each, found every ``stride`` bytes in ``view``.

    Made in C without a Python-level loop: by pyprobe._decode (about 20 ns a
    value), else by numpy's ``tolist()`` of a void array when numpy is there,
    else by ``struct.iter_unpack``. Raises ValueError when ``view`` is too
    short for the column.
    """
    if count == 0:
        return []
    if count < 0 or stride < size or (count - 1) * stride + size > view.nbytes:
        raise ValueError(f"a column of {count} values of {size} bytes every {stride} does not fit in {view.nbytes}")
    if _decode is not None:
        base = ffi.from_buffer(view)  # keeps the buffer alive and pinned until the list is made
        return _decode.bytes_column(_address(base), count, stride, size)
    np = numpy_if_worth(count)
    if np is not None:
        column: list[bytes] = np.ndarray(
            (count,), dtype=np.dtype((np.void, size)), buffer=view, strides=(stride,)
        ).tolist()
        return column
    fmt = f"{size}s{stride - size}x" if stride > size else f"{size}s"
    return list(map(_first, struct.iter_unpack(fmt, view[: count * stride])))


def dict_of(keys: list[Any], values: list[Any]) -> dict[Any, Any]:
    """``dict(zip(keys, values, strict=True))``, filled in C without a tuple per pair where pyprobe._decode is built."""
    if _decode is not None:
        return _decode.dict_of(keys, values)
    return dict(zip(keys, values, strict=True))


_uncleared = ffi.new_allocator(should_clear_after_alloc=False)


def _address(cdata: Any) -> int:
    """The address of cffi memory as pyprobe._decode takes it (the caller keeps ``cdata`` alive)."""
    return int(ffi.cast("uintptr_t", cdata))


def _decoded_as(codec: Codec, other: str | None) -> str | None:
    """pyprobe._decode's letter for ``codec``'s objects: "s"/"u" for signed/unsigned ints, else ``other``; None
    without pyprobe._decode or for a Codec subclass (they decode their own way)."""
    if _decode is None or type(codec) is not Codec:
        return None
    if codec.kind == "scalar" and codec.code in _INT_CODES:
        return "s" if codec.code in _SIGNED_INT_CODES else "u"
    return other


def _hash_kind(codec: Codec) -> str | None:
    """How pyprobe._decode hashes raw keys of ``codec`` as Python will hash the decoded ones, or None if it cannot."""
    c_hashed = codec.kind == "struct" and getattr(codec.ctype, "__hash__", None) in btf._C_HASHES
    return _decoded_as(codec, "r" if c_hashed else None)


def _column_kind(codec: Codec) -> str | None:
    """How pyprobe._decode.column_dict makes the objects of ``codec`` (ints, bytes), or None if it cannot."""
    return _decoded_as(codec, "b" if codec.kind == "raw" else None)


def _columns(raw_keys: Any, raw_values: Any, count: int, key: Codec, value: Codec) -> tuple[memoryview, memoryview]:
    keys, values = memoryview(raw_keys), memoryview(raw_values)
    if count < 0 or keys.nbytes < count * key.size or values.nbytes < count * value.size:
        raise ValueError(
            f"{count} entries of {key.size} + {value.size} bytes do not fit in {keys.nbytes} + {values.nbytes}"
        )
    return keys, values


def _slot_order(keys: memoryview, count: int, key: Codec) -> Any:
    """The order of the keys' slots in their dict (uint32 indexes, pyprobe._decode.hash_order), or None.

    None below ``_HASH_ORDER_FROM`` entries, where it does not pay, when
    pyprobe._decode is not built or the keys are of another kind (bytes keys'
    hashes are Python's own, randomized per process).
    """
    kind = _hash_kind(key)
    if kind is None or count < _HASH_ORDER_FROM:
        return None
    order = _uncleared("uint32_t[]", count)
    source = ffi.from_buffer(keys)  # alive and pinned during the call
    _decode.hash_order(_address(source), count, key.size, kind, _address(order))
    return order


def hash_ordered(raw_keys: Any, raw_values: Any, count: int, key: Codec, value: Codec) -> tuple[Any, Any] | None:
    """The ``count`` entries of two blobs copied in the order of their slots in the dict they will fill, or None.

    A dict of millions of entries inserted in the kernel's bucket order
    writes one random slot of its index table per key (a cache miss, most of
    an insertion's cost); in slot order it writes the table nearly in
    sequence. pyprobe._decode hashes the raw keys as Python hashes the decoded
    ones (integers by value, BTF structs by their C ``__hash__``) and sorts
    them by the low bits. None below 2,000,000 entries (where it does not
    pay), when it is not built or the keys are of another kind. The copies are
    private: structs decoded from them may share them
    (:meth:`Codec.decode_owned`). Raises ValueError when a blob is shorter
    than ``count`` entries.
    """
    keys, values = _columns(raw_keys, raw_values, count, key, value)
    order = _slot_order(keys, count, key) if value.size > 0 else None
    if order is None:
        return None
    out = []
    for view, size in ((keys, key.size), (values, value.size)):
        blob = _uncleared("char[]", max(count * size, 1))
        source = ffi.from_buffer(view)  # alive and pinned during the call
        _decode.gather(_address(source), count, size, _address(order), _address(blob))
        out.append(ffi.buffer(blob, count * size))
    return out[0], out[1]


def columns_dict(raw_keys: Any, raw_values: Any, count: int, key: Codec, value: Codec) -> dict[Any, Any] | None:
    """The entries of two blobs of integers or raw bytes as a dict made in C straight from them, or None.

    No list of keys or values in between, each object inserted while still in
    the cache; in the dump's order, or in the slots' order from 2,000,000
    entries on (see :func:`hash_ordered`). None when pyprobe._decode is not
    built or the keys or values are of another kind. Raises ValueError when a
    blob is shorter than ``count`` entries.
    """
    key_kind, value_kind = _column_kind(key), _column_kind(value)
    if key_kind is None or value_kind is None or value.size == 0:
        return None
    keys, values = _columns(raw_keys, raw_values, count, key, value)
    order = _slot_order(keys, count, key)
    key_source, value_source = ffi.from_buffer(keys), ffi.from_buffer(values)  # alive and pinned during the call
    made: dict[Any, Any] = _decode.column_dict(
        _address(key_source), key.size, key_kind, _address(value_source), value.size, value_kind,
        count, None if order is None else _address(order),
    )  # fmt: skip
    return made


class Codec:
    """Encodes and decodes one key or value type of ``size`` bytes."""

    def __init__(self, ctype: Any, size: int, what: str) -> None:
        self.what = what
        self.size = size
        self.ctype = ctype if ctype is not bytes else None
        self.kind = "raw"
        self._struct: struct.Struct | None = None
        ct = self.ctype
        if ct is not None and ctypes.sizeof(ct) != size:
            # BTF says one size, the map another (e.g. BTF-less value_size overrides): trust the map.
            self.ctype = ct = None
        if ct is None:
            return
        code = getattr(ct, "_type_", None)
        if isinstance(code, str) and code in _SCALAR_CODES and issubclass(ct, ctypes._SimpleCData):
            self.kind = "char" if code == "c" else "scalar"
            # floats at standard size: packing then raises OverflowError where native "f" stores inf
            self._struct = struct.Struct("=" + code if code in "fd" else code)
            self.code = code
        elif issubclass(ct, _BtfComposite) or issubclass(ct, (ctypes.Structure, ctypes.Union)):
            self.kind = "struct"
        elif issubclass(ct, ctypes.Array):
            self.kind = "chars" if ct._type_ is ctypes.c_char else "array"

    @property
    def python_type(self) -> Any:
        """The type users see: the ctypes type, or ``bytes`` when there is no BTF."""
        return self.ctype if self.ctype is not None else bytes

    def _bad_type(self, value: object, expected: str) -> TypeError:
        return TypeError(f"{self.what} must be {expected} or {self.size} raw bytes, not {type(value).__name__}")

    def encode(self, value: Any) -> bytes:  # noqa: PLR0911 - one return per kind of value
        """The raw bytes of ``value``; raises TypeError or ValueError naming the map side."""
        if isinstance(value, (bytes, bytearray, memoryview)) and self.kind != "chars":
            raw = bytes(value)
            if len(raw) != self.size:
                raise ValueError(f"{self.what} must be {self.size} bytes, not {len(raw)}")
            return raw
        kind = self.kind
        if kind == "scalar":
            assert self._struct is not None
            if isinstance(value, ctypes._SimpleCData):
                value = value.value
            if self.code in "fd":
                if not isinstance(value, (int, float)) or isinstance(value, bool):
                    raise self._bad_type(value, "a number")
            elif not isinstance(value, int):
                raise self._bad_type(value, "an int")
            try:
                return self._struct.pack(value)
            except (struct.error, OverflowError):
                raise self._out_of_range(value) from None
        if kind == "struct":
            if isinstance(value, self.ctype):  # type: ignore[arg-type]
                return bytes(value)
            from_dict = getattr(self.ctype, "from_dict", None)
            if isinstance(value, dict) and from_dict is not None:
                try:
                    return bytes(from_dict(value))
                except (TypeError, ValueError) as exc:  # a member named in the message: add the map
                    raise type(exc)(f"{self.what}: {exc}") from None
            accepted = " or a dict" if from_dict is not None else ""
            raise self._bad_type(value, f"{self.ctype.__name__}{accepted}")  # type: ignore[union-attr]
        if kind in ("chars", "char"):
            if isinstance(value, str):
                value = value.encode()
            if not isinstance(value, (bytes, bytearray, memoryview)):
                raise self._bad_type(value, "bytes or str")
            raw = bytes(value)
            if len(raw) > self.size:
                raise ValueError(f"{self.what} holds at most {self.size} bytes, not {len(raw)}")
            return raw.ljust(self.size, b"\0")
        if kind == "array":
            ct: Any = self.ctype
            if isinstance(value, ct):
                return bytes(value)
            if not isinstance(value, (list, tuple)):
                raise self._bad_type(value, "a list")
            inst = ct()
            fill_array(inst, value, self.what)  # each item range-checked; the error names its index
            return bytes(inst)
        raise self._bad_type(value, "bytes")

    def _out_of_range(self, value: object) -> ValueError:
        bounds = scalar_bounds(self.ctype)
        if isinstance(bounds, tuple):
            low, high = bounds
            return ValueError(f"{self.what}: {value!r} does not fit in {self.size} bytes ({low}..{high})")
        return ValueError(f"{self.what}: {value!r} is out of range for a {8 * self.size}-bit float")

    def decode(self, raw: Any) -> Any:
        """The Python value of ``size`` raw bytes."""
        kind = self.kind
        if kind == "scalar":
            assert self._struct is not None
            return self._struct.unpack_from(raw)[0]
        if kind == "struct":
            return self.ctype.from_buffer_copy(raw)  # type: ignore[union-attr]
        if kind in ("chars", "char"):
            return bytes(raw[: self.size]).split(b"\0", 1)[0]
        if kind == "array":
            return to_python(self.ctype.from_buffer_copy(raw))  # type: ignore[union-attr]
        return bytes(raw[: self.size])

    def decode_many(self, blob: Any, count: int, stride: int) -> list[Any]:
        """``count`` values laid out every ``stride`` bytes in ``blob`` (a writable buffer), decoded in bulk."""
        with bulk():
            return self._decode_many(blob, count, stride)

    def decode_owned(self, blob: Any, count: int) -> list[Any]:
        """As :meth:`decode_many` with ``stride == size``, from a writable blob nothing else will change or read.

        Structs are then made in place (they share the blob and keep it alive)
        instead of in a copy of it. Call it inside :func:`bulk`.
        """
        if self.kind == "struct" and type(self) is Codec:
            ct: Any = self.ctype
            structs: list[Any] = (ct * count).from_buffer(blob)[:] if count else []
            return structs
        return self._decode_many(blob, count, self.size)

    def _decode_many(self, blob: Any, count: int, stride: int) -> list[Any]:
        view = memoryview(blob)
        kind = self.kind
        if kind == "scalar" and self.code != "c" and stride % self.size == 0:
            column = view[: count * stride].cast(self.code)  # type: ignore[call-overload]
            ints: list[Any] = (column if stride == self.size else column[:: stride // self.size]).tolist()
            return ints
        if kind == "struct":
            ct: Any = self.ctype
            if stride == self.size:
                structs: list[Any] = (ct * count).from_buffer_copy(view[: count * stride])[:]  # slicing: fastest
                return structs
            return list(map(ct.from_buffer_copy, bytes_column(view, count, stride, self.size)))
        if kind == "raw":
            return bytes_column(view, count, stride, self.size)
        if kind in ("chars", "char"):  # a C string: the bytes up to the first NUL
            return list(map(_first, map(_before_nul, bytes_column(view, count, stride, self.size))))
        raw = view.tobytes()
        return [self.decode(raw[i * stride : i * stride + self.size]) for i in range(count)]


class PerCpuCodec(Codec):
    """Values of per-CPU maps: a list with one value per possible CPU, each padded to 8 bytes."""

    def __init__(self, inner: Codec, ncpus: int) -> None:
        self.inner = inner
        self.ncpus = ncpus
        self.stride = (inner.size + 7) // 8 * 8
        self.what = inner.what
        self.size = self.stride * ncpus
        self.ctype = inner.ctype
        self.kind = "percpu"

    def _is_per_cpu_list(self, value: Any) -> bool:
        if not isinstance(value, (list, tuple)):
            return False
        if self.inner.kind != "array":
            return True
        return len(value) == self.ncpus and all(isinstance(v, (list, tuple, bytes, bytearray)) for v in value)

    def encode(self, value: Any) -> bytes:
        if isinstance(value, (bytes, bytearray, memoryview)) and len(value) == self.size:
            return bytes(value)
        pad = b"\0" * (self.stride - self.inner.size)
        if self._is_per_cpu_list(value):
            if len(value) != self.ncpus:
                raise ValueError(
                    f"{self.what} is per-CPU: give one value per possible CPU ({self.ncpus}), not {len(value)}"
                )
            return b"".join(self.inner.encode(v) + pad for v in value)
        return (self.inner.encode(value) + pad) * self.ncpus

    def decode(self, raw: Any) -> Any:
        return [self.inner.decode(raw[i * self.stride : i * self.stride + self.inner.size]) for i in range(self.ncpus)]

    def _decode_many(self, blob: Any, count: int, stride: int) -> list[Any]:
        flat = self.inner._decode_many(blob, count * self.ncpus, self.stride)
        n = self.ncpus
        # one list per entry, cut in C (map of slices): no Python-level loop
        return list(map(flat.__getitem__, map(slice, range(0, count * n, n), range(n, count * n + 1, n))))
