"""pyprobe.btf: Python types made from a BPF object's BTF (pure Python: reads the .bpf.o file)."""

from __future__ import annotations

import ctypes

import pytest

from conftest import test_object
from pyprobe.btf import Btf, BtfError, BtfStruct, numpy_dtype


@pytest.fixture(scope="module")
def btf() -> Btf:
    return Btf.from_file(test_object("maps"))


def test_struct_layout_matches_btf(btf: Btf) -> None:
    rich = btf.type_by_name("struct rich")
    assert issubclass(rich, BtfStruct)
    rec = btf.record(btf.find("struct rich"))
    assert ctypes.sizeof(rich) == rec.size == btf.size_of(rec.id)
    offsets = {m.name: m.bit_offset // 8 for m in rec.members if m.name and not m.bitfield_size}
    for name, offset in offsets.items():
        assert getattr(rich, name).offset == offset, name


def test_types_are_built_once(btf: Btf) -> None:
    assert btf.type_by_name("struct point") is btf.type_by_name("point")
    assert btf.type_by_id(btf.find("struct point")) is btf.type_by_name("struct point")


def test_scalar_types(btf: Btf) -> None:
    assert btf.type_by_name("__u32") is ctypes.c_uint32
    assert btf.type_by_name("__u64") is ctypes.c_uint64
    assert btf.type_by_name("__u8") is ctypes.c_uint8
    assert btf.type_by_name("_Bool") is ctypes.c_bool
    assert btf.type_by_name("int") is ctypes.c_int32
    # enum color has a negative value: signed, 4 bytes
    assert btf.type_by_name("enum color") is ctypes.c_int32
    assert btf.enum_values("color") == {"RED": 1, "GREEN": 2, "BLUE": -1}


def test_struct_members_bitfields_unions_arrays(btf: Btf) -> None:
    rich = btf.type_by_name("struct rich")
    r = rich.from_dict(
        {
            "tag": 7,
            "wide": 1 << 40,
            "comm": b"python",
            "pts": [{"x": 1, "y": 2}, {"x": 3, "y": 4}],
            "low": 5,
            "mid": 31,
            "neg": -8,
            "color": -1,
            "as_u32": 0x01020304,
            "inner": {"a": 9, "b": 10},
            "ptr": 0xFFFF8880DEADBEEF,
            "ok": True,
        }
    )
    d = r.to_dict()
    assert d["comm"] == b"python"
    assert d["pts"] == [{"x": 1, "y": 2}, {"x": 3, "y": 4}]
    assert (d["low"], d["mid"], d["neg"]) == (5, 31, -8)
    assert d["bytes"] == [4, 3, 2, 1]  # the anonymous union's other member
    assert d["inner"] == {"a": 9, "b": 10}
    assert d["ptr"] == 0xFFFF8880DEADBEEF and d["ok"] is True
    # bitfields live in the bytes between the regular members, and decode back
    again = rich.from_buffer_copy(bytes(r))
    assert again == r and again.low == 5 and again.neg == -8
    again.mid = 0
    assert (again.low, again.mid, again.neg) == (5, 0, -8)


def test_bad_values_raise_typed_errors(btf: Btf) -> None:
    rich = btf.type_by_name("struct rich")
    r = rich()
    with pytest.raises(ValueError, match="3 bits"):
        r.low = 8
    with pytest.raises(TypeError, match="int"):
        r.low = "x"
    with pytest.raises(ValueError, match="no member 'nope'"):
        rich.from_dict({"nope": 1})
    with pytest.raises(BtfError, match="no type named"):
        btf.type_by_name("struct missing")
    with pytest.raises(TypeError):
        btf.type_by_name(42)  # type: ignore[arg-type]
    with pytest.raises(BtfError, match="no BTF type id"):
        btf.type_by_id(10**6)


def test_arrays_and_char_arrays(btf: Btf) -> None:
    rich = btf.type_by_name("struct rich")
    comm = rich.comm
    assert comm.size == 16
    r = rich(comm=b"abc")
    assert r.comm == b"abc"


def test_numpy_dtype_matches_layout(btf: Btf) -> None:
    np = pytest.importorskip("numpy")
    rich = btf.type_by_name("struct rich")
    dt = numpy_dtype(rich)
    assert dt.itemsize == ctypes.sizeof(rich)
    r = rich.from_dict({"tag": 3, "wide": 99, "comm": b"np", "inner": {"a": 1, "b": 2}})
    arr = np.frombuffer(bytes(r) * 2, dtype=dt)
    assert arr["wide"].tolist() == [99, 99]
    assert arr["comm"][0] == b"np"
    assert arr["inner"]["b"][1] == 2
    assert numpy_dtype(ctypes.c_uint32) == np.dtype("uint32")


def test_missing_file() -> None:
    with pytest.raises(BtfError, match="No such file"):
        Btf.from_file("/nonexistent.bpf.o")
