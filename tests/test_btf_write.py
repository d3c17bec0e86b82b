"""pyprobe._btf_write: BTF written from ctypes types, read back with pyprobe.btf (pure: no kernel)."""

from __future__ import annotations

import ctypes
from typing import Any

import pytest

from conftest import test_object
from pyprobe._btf_write import BtfWriter, UnsupportedType
from pyprobe.btf import Btf, BtfStruct, BtfUnion, Kind


class Inner(ctypes.Structure):
    _fields_ = [("x", ctypes.c_int16), ("name", ctypes.c_char * 6)]


class Either(ctypes.Union):
    _fields_ = [("as_u64", ctypes.c_uint64), ("as_f64", ctypes.c_double), ("raw", ctypes.c_uint8 * 8)]


class Value(ctypes.Structure):
    _fields_ = [
        ("count", ctypes.c_uint64),
        ("pid", ctypes.c_int32),
        ("inner", Inner),
        ("pts", Inner * 2),
        ("either", Either),
        ("ratio", ctypes.c_float),
        ("ok", ctypes.c_bool),
        ("tag", ctypes.c_uint8),
    ]


class Packed(ctypes.Structure):
    _pack_ = 1
    _fields_ = [("a", ctypes.c_uint8), ("b", ctypes.c_uint64)]


class Base(ctypes.Structure):
    _fields_ = [("a", ctypes.c_uint32)]


class Derived(Base):
    _fields_ = [("b", ctypes.c_uint16)]


class _Pair(ctypes.Structure):
    _fields_ = [("lo", ctypes.c_uint32), ("hi", ctypes.c_uint32)]


class WithAnonymous(ctypes.Structure):
    _anonymous_ = ("pair",)
    _fields_ = [("pair", _Pair), ("z", ctypes.c_uint64)]


def _read_back(ctype: Any) -> Any:
    with BtfWriter() as writer:
        type_id = writer.add(ctype)
        return writer.reader().type_by_id(type_id)


def _layout(ctype: Any, names: Any) -> list[tuple[str, int, int]]:
    return [(name, getattr(ctype, name).offset, getattr(ctype, name).size) for name, *_ in names]


def test_struct_round_trip_keeps_names_and_layout() -> None:
    back = _read_back(Value)
    assert issubclass(back, BtfStruct) and back.__name__ == "Value"
    assert ctypes.sizeof(back) == ctypes.sizeof(Value)
    assert back._btf_members_ == tuple(name for name, _ in Value._fields_)
    assert _layout(back, Value._fields_) == _layout(Value, Value._fields_)
    assert issubclass(type(back().either), BtfUnion)
    v = Value(count=7, pid=-3, ratio=1.5, ok=True, tag=9)
    v.inner.x, v.inner.name = -2, b"abc"
    v.pts[1].name = b"second"
    v.either.as_u64 = 0x1122334455667788
    decoded = back.from_buffer_copy(bytes(v)).to_dict()
    assert decoded == {
        "count": 7, "pid": -3, "inner": {"x": -2, "name": b"abc"},
        "pts": [{"x": 0, "name": b""}, {"x": 0, "name": b"second"}],
        "either": {"as_u64": 0x1122334455667788, "as_f64": v.either.as_f64, "raw": list(bytes(v.either))},
        "ratio": 1.5, "ok": True, "tag": 9,
    }  # fmt: skip


def test_scalars_and_arrays_read_back_as_the_same_types() -> None:
    for ctype in (ctypes.c_uint8, ctypes.c_int16, ctypes.c_uint32, ctypes.c_int64, ctypes.c_bool, ctypes.c_double):
        assert _read_back(ctype) is ctype
    assert _read_back(ctypes.c_char * 16)._type_ is ctypes.c_char
    arr = _read_back((ctypes.c_uint32 * 3) * 2)
    assert ctypes.sizeof(arr) == 24 and arr._length_ == 2 and arr._type_._length_ == 3


def test_packed_inherited_and_anonymous_members() -> None:
    packed = _read_back(Packed)
    assert ctypes.sizeof(packed) == 9 and packed.b.offset == 1
    derived = _read_back(Derived)
    assert derived._btf_members_ == ("a", "b") and ctypes.sizeof(derived) == ctypes.sizeof(Derived)
    anon = _read_back(WithAnonymous)
    assert anon._btf_members_ == ("lo", "hi", "z")
    inst = anon.from_buffer_copy(bytes(WithAnonymous(_Pair(1, 2), 3)))
    assert (inst.lo, inst.hi, inst.z) == (1, 2, 3)


def test_each_type_written_once() -> None:
    with BtfWriter() as writer:
        first = writer.add(Value)
        count = len(writer.reader())
        assert writer.add(Value) == first and writer.add(Inner) < first
        assert len(writer.reader()) == count
        rec = writer.reader().record(first)
        assert rec.kind == Kind.STRUCT and rec.name == "Value" and rec.size == ctypes.sizeof(Value)


def test_types_made_from_object_btf_round_trip() -> None:
    btf = Btf.from_file(test_object("maps"))
    for name in ("struct value16", "struct point"):
        original = btf.type_by_name(name)
        back = _read_back(original)
        assert back._btf_name_ == original._btf_name_ and back._btf_layout_ == original._btf_layout_
        assert ctypes.sizeof(back) == ctypes.sizeof(original)
    # struct rich has bitfields: BTF as pyprobe writes it cannot carry them
    with BtfWriter() as writer, pytest.raises(UnsupportedType, match="bitfields"):
        writer.add(btf.type_by_name("struct rich"))


class Bits(ctypes.Structure):
    _fields_ = [("a", ctypes.c_uint32, 3), ("b", ctypes.c_uint32, 5)]


class WithPointer(ctypes.Structure):
    _fields_ = [("p", ctypes.c_void_p)]


class Swapped(ctypes.BigEndianStructure):
    _fields_ = [("a", ctypes.c_uint32)]


@pytest.mark.parametrize(
    ("ctype", "match"),
    [
        (Bits, "bitfield"),
        (WithPointer, "c_void_p"),
        (ctypes.POINTER(ctypes.c_int), "no BTF description"),
        (ctypes.c_wchar * 4, "c_wchar"),
        (Swapped, "byte-swapped"),
        (ctypes.c_uint32.__ctype_be__, "byte-swapped"),
        (int, "no BTF description"),
    ],
)
def test_unsupported_types_raise(ctype: Any, match: str) -> None:
    with BtfWriter() as writer, pytest.raises(UnsupportedType, match=match):
        writer.add(ctype)


def test_closed_writer_raises() -> None:
    writer = BtfWriter()
    writer.close()
    writer.close()
    with pytest.raises(ValueError, match="closed"):
        writer.add(ctypes.c_uint32)
