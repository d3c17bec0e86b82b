"""Bulk decoding of map blobs: the collector pause and what the decoded values are (no kernel needed)."""

from __future__ import annotations

import ctypes
import gc
import struct
import sys
import weakref
from collections.abc import Iterator
from typing import Any

import pytest

from conftest import test_object
from pyprobe.btf import Btf, BtfStruct, BtfUnion, _BtfComposite
from pyprobe.maps import _codec
from pyprobe.maps._codec import Codec, PerCpuCodec, bulk, bytes_column, dict_of, numpy_if_worth


@pytest.fixture
def gc_enabled() -> Iterator[None]:
    was = gc.isenabled()
    gc.enable()
    yield
    if not was:
        gc.disable()


class _Node:
    def __init__(self) -> None:
        self.me = self


def test_bulk_promotes_without_scanning_and_cycles_are_still_collected(gc_enabled: None) -> None:
    with bulk():
        assert not gc.isenabled()
        made = [_Node() for _ in range(5000)]
    assert gc.isenabled()
    assert gc.get_count()[0] < 700  # moved out of the youngest generation: no scan of 5000 objects pending
    probe = weakref.ref(made[0])
    del made
    assert probe() is not None  # reference cycles: only a collection frees them
    gc.collect()
    assert probe() is None


def test_bulk_keeps_the_programs_frozen_objects_frozen(gc_enabled: None) -> None:
    gc.freeze()
    try:
        frozen = gc.get_freeze_count()
        with bulk():
            kept = [_Node() for _ in range(100)]
        assert gc.get_freeze_count() == frozen and gc.isenabled()
    finally:
        gc.unfreeze()
    assert len(kept) == 100


def test_bulk_leaves_a_disabled_collector_disabled(gc_enabled: None) -> None:
    gc.disable()
    with bulk():
        pass
    assert not gc.isenabled()


def _value16() -> type:
    ct: type = Btf.from_file(test_object("maps")).type_by_name("struct value16")
    return ct


def test_decoded_structs_are_independent_btf_structs() -> None:
    ct = _value16()
    size = ctypes.sizeof(ct)
    layout = {name: off for name, off, _ in ct._btf_layout_}  # type: ignore[attr-defined]
    blob = bytearray(size * 3)
    for i in range(3):
        struct.pack_into("<Q", blob, i * size + layout["count"], 100 + i)
    values = Codec(ct, size, "value").decode_many(blob, 3, size)
    assert [type(v) for v in values] == [ct] * 3
    assert [v.count for v in values] == [100, 101, 102]
    assert values[1] == ct.from_buffer_copy(blob, size) and values[1].to_dict()["count"] == 101
    blob[size + layout["count"]] = 0  # a copy: the blob can change afterwards
    values[0].count = 7  # and each value is its own
    assert [v.count for v in values] == [7, 101, 102]
    last = values.pop()
    del values
    gc.collect()
    assert last.count == 102 and last.to_dict()["count"] == 102  # outlives the others and their array


def test_decoded_per_cpu_values_are_lists() -> None:
    ct = _value16()
    size = ctypes.sizeof(ct)
    offset = {name: off for name, off, _ in ct._btf_layout_}["count"]  # type: ignore[attr-defined]
    codec = PerCpuCodec(Codec(ct, size, "value"), 2)
    blob = bytearray(codec.size * 2)
    for slot, count in enumerate([1, 2, 3, 4]):
        struct.pack_into("<Q", blob, slot * codec.stride + offset, count)
    values = codec.decode_many(blob, 2, codec.size)
    assert [[v.count for v in cpus] for cpus in values] == [[1, 2], [3, 4]]
    keys = Codec(ctypes.c_uint32, 4, "key").decode_many(bytearray(struct.pack("<3I", 5, 6, 7)), 3, 4)
    assert keys == [5, 6, 7] and all(type(k) is int for k in keys)


@pytest.mark.parametrize("way", ["c", "numpy", "struct"])
@pytest.mark.parametrize(("count", "stride", "size"), [(0, 16, 16), (1, 1, 1), (5, 16, 16), (7, 16, 12), (300, 24, 13)])
def test_bytes_columns_are_the_slices_in_c_with_and_without_numpy(
    way: str, count: int, stride: int, size: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    if way != "c":
        monkeypatch.setattr(_codec, "_decode", None)  # the fallbacks of a build without pyprobe._decode
    if way == "numpy":
        pytest.importorskip("numpy")
    elif way == "struct":
        monkeypatch.setitem(sys.modules, "numpy", None)
    blob = bytearray((i * 31 + 7) % 256 if i % 5 else 0 for i in range(count * stride))
    column = bytes_column(memoryview(blob), count, stride, size)
    assert column == [bytes(blob[i * stride : i * stride + size]) for i in range(count)]
    assert all(type(b) is bytes for b in column)
    chars = Codec(ctypes.c_char * size, size, "value").decode_many(blob, count, stride)
    assert chars == [b.split(b"\0", 1)[0] for b in column]


def test_numpy_is_imported_only_for_columns_worth_it(monkeypatch: pytest.MonkeyPatch) -> None:
    np = pytest.importorskip("numpy")
    monkeypatch.delitem(sys.modules, "numpy")
    assert numpy_if_worth(1000) is None  # not imported yet: a small column is cut without it
    monkeypatch.setitem(sys.modules, "numpy", None)
    assert numpy_if_worth(10_000_000) is None  # not installed
    monkeypatch.setitem(sys.modules, "numpy", np)
    assert numpy_if_worth(1000) is np


def test_padded_per_cpu_scalars_and_structs_decode_every_slot() -> None:
    codec = PerCpuCodec(Codec(ctypes.c_uint16, 2, "value"), 3)
    assert codec.stride == 8
    blob = bytearray(codec.size * 2)
    for slot in range(6):
        struct.pack_into("<H", blob, slot * 8, 1000 + slot)
        blob[slot * 8 + 2 : slot * 8 + 8] = b"\xff" * 6  # padding: never read
    assert codec.decode_many(blob, 2, codec.size) == [[1000, 1001, 1002], [1003, 1004, 1005]]

    class Odd(ctypes.Structure):
        _fields_ = [("a", ctypes.c_uint32), ("b", ctypes.c_uint8), ("c", ctypes.c_uint32)]

    size = ctypes.sizeof(Odd)
    odd = PerCpuCodec(Codec(Odd, size, "value"), 2)
    assert (size, odd.stride) == (12, 16)
    blob = bytearray(odd.size * 3)
    for slot in range(6):
        struct.pack_into("<IB", blob, slot * odd.stride, slot * 11, slot)
    decoded = odd.decode_many(blob, 3, odd.size)
    assert [[(v.a, v.b) for v in cpus] for cpus in decoded] == [
        [(0, 0), (11, 1)],
        [(22, 2), (33, 3)],
        [(44, 4), (55, 5)],
    ]


def test_the_c_module_is_built_and_used() -> None:
    from pyprobe import _decode

    assert _codec._decode is _decode
    assert BtfStruct.__dict__["__hash__"] is not _BtfComposite.__dict__["__hash__"]


@pytest.mark.parametrize("in_c", [True, False])
def test_dict_of_is_dict_of_zip_in_order(in_c: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    if not in_c:
        monkeypatch.setattr(_codec, "_decode", None)
    keys = [5, 3, 9, 3, 1 << 70]
    values = [b"a", b"b", b"c", b"d", None]
    got = dict_of(keys, values)
    assert got == dict(zip(keys, values, strict=True)) and list(got) == [5, 3, 9, 1 << 70]
    assert got[3] == b"d"  # the later value of a repeated key wins, as in dict()
    assert dict_of([], []) == {}
    with pytest.raises(ValueError):
        dict_of([1, 2], [1])
    with pytest.raises(TypeError, match="unhashable"):
        dict_of([[1]], [1])


def test_dict_of_passes_on_what_a_hash_raises_and_survives_lists_changed_by_it() -> None:
    class Bad:
        def __hash__(self) -> int:
            raise RuntimeError("no hash")

    with pytest.raises(RuntimeError, match="no hash"):
        _codec._decode.dict_of([1, Bad()], [1, 2])
    keys: list[object] = []
    values: list[object] = []

    class Shrinks:
        def __hash__(self) -> int:
            keys.clear()
            values.clear()
            return 1

    keys[:] = [Shrinks(), 2, 3]
    values[:] = [1, 2, 3]
    with pytest.raises(IndexError):
        _codec._decode.dict_of(keys, values)
    with pytest.raises(TypeError):
        _codec._decode.dict_of((1,), [1])


def test_bytes_column_refuses_a_view_too_short_before_reading_it() -> None:
    blob = memoryview(bytearray(64))
    assert len(bytes_column(blob, 4, 16, 16)) == 4
    assert bytes_column(blob, 5, 13, 12)[-1] == bytes(12)  # 65 bytes of strides: the last needs only its own 12
    for count, stride, size in [(5, 16, 16), (4, 16, 17), (2, 8, 16), (-1, 16, 16)]:
        with pytest.raises(ValueError, match="does not fit"):
            bytes_column(blob, count, stride, size)
    with pytest.raises(ValueError):
        _codec._decode.bytes_column(0, 1, 16, 16)  # a NULL address


@pytest.mark.parametrize("base", [BtfStruct, BtfUnion])
def test_struct_hash_in_c_is_the_key_hash_of_the_bytes(base: type) -> None:
    class Pair(base):  # type: ignore[valid-type, misc]
        _fields_ = [("a", ctypes.c_uint32), ("b", ctypes.c_uint64)]  # noqa: RUF012 - ctypes reads a list

    one, same, other = Pair(a=1), Pair(a=1), Pair(a=2)
    assert hash(one) == _codec._decode.key_hash(bytes(one)) == base.__hash__(one)
    assert _BtfComposite.__hash__(one) == hash(bytes(one))  # the Python method, without pyprobe._decode
    assert hash(one) == hash(same) and one == same and hash(one) != hash(other)
    assert {one: 1}[same] == 1 and same in {one} and other not in {one}
    ct = _value16()
    size = ctypes.sizeof(ct)
    values = Codec(ct, size, "value").decode_many(bytearray(range(size)) * 3, 3, size)
    assert dict_of(values, [1, 2, 3]) == {values[0]: 3}  # three equal keys: one entry
    with pytest.raises(TypeError):
        BtfStruct.__dict__["__hash__"](7)  # the method checks its instance


def _slots_in_order(keys: list[object], table_bits: int) -> bool:
    """The keys' slots in a table of ``2**table_bits`` come window by window (4096 windows: sorted below that)."""
    windows = [(hash(k) & ((1 << table_bits) - 1)) >> max(0, table_bits - 12) for k in keys]
    return windows == sorted(windows)


def _address(buffer: Any) -> int:
    from pyprobe._ffi import ffi

    return int(ffi.cast("uintptr_t", ffi.from_buffer(buffer)))


INT_KEYS = [
    ("Q", "u", [0, 1, 2**61 - 2, 2**61 - 1, 2**61, 2**63 + 12345, 2**64 - 1, *range(3, 300, 7)]),
    ("q", "s", [0, -1, -2, 2**61 - 1, -(2**61) + 1, -(2**61), -(2**63), 2**63 - 1, *range(-300, 300, 11)]),
    ("I", "u", [0, 2**32 - 1, 2**31, *range(1, 500, 3)]),
    ("i", "s", [-(2**31), -1, 2**31 - 1, *range(-500, 500, 9)]),
    ("h", "s", [-(2**15), -1, -2, 2**15 - 1, *range(-90, 90, 5)]),
    ("H", "u", [2**16 - 1, *range(0, 900, 7)]),
    ("B", "u", list(range(256))),
    ("Q", "u", [k * 0x9E3779B97F4A7C15 % 2**64 for k in range(20000)]),  # 2**15 slots: 4096 windows of 8
    ("b", "s", list(range(-128, 128))),
]


@pytest.mark.parametrize(("code", "kind", "keys"), INT_KEYS)
def test_hash_order_sorts_integer_keys_by_their_python_hash(code: str, kind: str, keys: list[int]) -> None:
    n, size = len(keys), struct.calcsize(code)
    raw_keys = bytearray(struct.pack(f"={n}{code}", *keys))
    order, out = bytearray(4 * n), bytearray(len(raw_keys))
    _codec._decode.hash_order(_address(raw_keys), n, size, kind, _address(order))
    indexes = list(struct.unpack(f"={n}I", order))
    _codec._decode.gather(_address(raw_keys), n, size, _address(order), _address(out))
    got = list(struct.unpack(f"={n}{code}", out))
    assert sorted(indexes) == list(range(n)) and got == [keys[i] for i in indexes]
    assert _slots_in_order(got, max(3, (n + n // 2 - 1).bit_length()))


@pytest.mark.parametrize(("code", "kind", "keys"), INT_KEYS)
@pytest.mark.parametrize("ordered", [False, True])
def test_column_dict_is_the_dict_of_the_decoded_columns(
    code: str, kind: str, keys: list[int], ordered: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    n = len(keys)
    if ordered:
        monkeypatch.setattr(_codec, "_HASH_ORDER_FROM", 0)
    raw_keys = bytearray(struct.pack(f"={n}{code}", *keys))
    size = struct.calcsize(code)
    key = Codec(_CTYPES[code], size, "key")
    for value, raw_values in [
        (Codec(bytes, 5, "value"), bytearray(b"".join(i.to_bytes(5, "little") for i in range(n)))),
        (Codec(ctypes.c_int16, 2, "value"), bytearray(struct.pack(f"={n}h", *(i - n // 2 for i in range(n))))),
    ]:
        made = _codec.columns_dict(raw_keys, raw_values, n, key, value)
        assert made is not None
        assert made == dict(zip(keys, value.decode_many(raw_values, n, value.size), strict=True))
        if ordered:
            assert _slots_in_order(list(made), max(3, (n + n // 2 - 1).bit_length()))
        else:
            assert list(made) == keys  # the dump's order
        with pytest.raises(ValueError, match="do not fit"):
            _codec.columns_dict(raw_keys[:-1], raw_values, n, key, value)
    assert _codec.columns_dict(raw_keys, raw_keys, n, key, Codec(ctypes.c_char * size, size, "value")) is None
    assert _codec.columns_dict(raw_keys, raw_keys, n, key, Codec(ctypes.c_float, 4, "value")) is None


_CTYPES: dict[str, Any] = {
    "Q": ctypes.c_uint64, "q": ctypes.c_int64, "I": ctypes.c_uint32, "i": ctypes.c_int32,
    "h": ctypes.c_int16, "H": ctypes.c_uint16, "B": ctypes.c_uint8, "b": ctypes.c_int8,
}  # fmt: skip


def test_hash_ordered_struct_keys_follow_their_hash_and_refuses_short_blobs(monkeypatch: pytest.MonkeyPatch) -> None:
    ct = Btf.from_file(test_object("maps")).type_by_name("struct point")
    key, value = Codec(ct, 8, "key"), Codec(ctypes.c_uint32, 4, "value")
    n = 1000
    raw_keys = bytearray(b"".join(bytes(ct(x=i * 7919, y=i ^ 0x5A5A)) for i in range(n)))
    raw_values = bytearray(struct.pack(f"={n}I", *range(n)))
    assert _codec.hash_ordered(raw_keys, raw_values, n, key, value) is None  # too few entries to pay
    monkeypatch.setattr(_codec, "_HASH_ORDER_FROM", 0)
    ordered = _codec.hash_ordered(raw_keys, raw_values, n, key, value)
    assert ordered is not None
    with bulk():
        keys, values = key.decode_owned(ordered[0], n), value.decode_owned(ordered[1], n)
    assert all(bytes(k) == raw_keys[v * 8 : v * 8 + 8] for k, v in zip(keys, values, strict=True))
    assert sorted(values) == list(range(n)) and _slots_in_order(keys, (n + n // 2 - 1).bit_length())
    assert keys[0] == ct.from_buffer_copy(bytes(keys[0])) and isinstance(keys[0], ct)
    with pytest.raises(ValueError, match="do not fit"):
        _codec.hash_ordered(raw_keys[:-1], raw_values, n, key, value)
    with pytest.raises(ValueError, match="do not fit"):
        _codec.hash_ordered(raw_keys, raw_values[:-1], n, key, value)
    assert _codec.hash_ordered(raw_keys, raw_values, n, Codec(bytes, 8, "key"), value) is None  # bytes keys
    assert _codec.columns_dict(raw_keys, raw_values, n, key, value) is None  # structs: not columns of C objects
    monkeypatch.setattr(_codec, "_decode", None)
    assert _codec.hash_ordered(raw_keys, raw_values, n, key, value) is None
    assert _codec.columns_dict(raw_values, raw_values, n, value, value) is None


def test_the_order_functions_check_their_arguments() -> None:
    blob = bytearray(16)
    a = _address(blob)
    decode = _codec._decode
    for args in [(a, -1, 8, "u", a), (a, 2, 3, "u", a), (a, 2, 8, "x", a), (0, 2, 8, "u", a), (a, 2, 0, "r", a)]:
        with pytest.raises(ValueError, match="hash_order"):
            decode.hash_order(*args)
    with pytest.raises(TypeError):
        decode.hash_order(a, 2)
    decode.hash_order(0, 0, 8, "u", 0)  # nothing to do: no address read
    order = bytearray(struct.pack("=2I", 1, 2))  # index 2 of 2 entries: refused before any copy
    with pytest.raises(ValueError, match="beyond 2 entries"):
        decode.gather(a, 2, 8, _address(order), a)
    with pytest.raises(ValueError, match="beyond 2 entries"):
        decode.column_dict(a, 4, "u", a, 4, "u", 2, _address(order))
    for args in [(a, 3, "u", a, 4, "u", 2, None), (a, 4, "x", a, 4, "u", 2, None), (0, 4, "u", a, 4, "b", 2, None),
                 (a, 4, "u", a, -1, "b", 2, None), (a, 4, "u", a, 4, "u", -1, None)]:  # fmt: skip
        with pytest.raises(ValueError, match="column_dict"):
            decode.column_dict(*args)
    assert decode.column_dict(a, 4, "u", a, 4, "b", 2, None) == {0: bytes(4)}  # two equal keys: one entry
    assert decode.column_dict(0, 4, "u", 0, 4, "b", 0, None) == {}
