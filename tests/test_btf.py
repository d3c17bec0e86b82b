"""pyprobe.btf: Python types made from a BPF object's BTF (pure Python: reads the .bpf.o file)."""

from __future__ import annotations

import ctypes
import struct
from pathlib import Path

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


def test_members_and_array_items_are_range_checked(btf: Btf) -> None:
    rich = btf.type_by_name("struct rich")
    with pytest.raises(ValueError, match=r"member 'tag' of struct rich: 256 is out of range for u8 \(0\.\.255\)"):
        rich(tag=256)
    r = rich()
    with pytest.raises(ValueError, match=r"member 'wide' of struct rich: -1 is out of range for u64"):
        r.wide = -1
    with pytest.raises(ValueError, match=r"member 'color'.*2147483648 is out of range for s32"):
        r.color = 2**31
    with pytest.raises(ValueError, match=r"member 'as_u32'"):  # promoted from the anonymous union
        r.as_u32 = 2**32
    with pytest.raises(ValueError, match=r"member 'pts' of struct rich\[0\]: member 'x'"):
        rich.from_dict({"pts": [{"x": 2**32}]})
    with pytest.raises(ValueError, match=r"member 'bytes' of struct rich\[2\]: 300"):
        rich.from_dict({"bytes": [1, 2, 300]})
    with pytest.raises(ValueError, match=r"member 'inner' of struct rich: member 'b'.*-1"):
        rich.from_dict({"inner": {"b": -1}})
    with pytest.raises(ValueError, match="member 'comm'"):
        r.comm = b"x" * 17
    assert r.to_dict() == rich().to_dict()  # nothing was written by the failed assignments
    r.wide, r.color, r.tag = 2**64 - 1, -(2**31), 255
    assert (r.wide, r.color, r.tag) == (2**64 - 1, -(2**31), 255)

    class Sample(BtfStruct):
        _btf_name_ = "struct sample"
        _btf_members_ = ("f", "d")
        _fields_ = (("f", ctypes.c_float), ("d", ctypes.c_double))

    with pytest.raises(ValueError, match=r"member 'f' of struct sample: 1e\+300 is out of range for a float"):
        Sample(f=1e300)
    s = Sample(f=float("inf"), d=1e300)
    assert s.f == float("inf") and s.d == 1e300
    with pytest.raises(ValueError, match="member 'd'"):
        s.d = 10**400


def _raw_btf(tmp_path: Path, types: list[bytes], strings: bytes) -> Btf:
    """A Btf read from a raw BTF file made of these type records and this string section."""
    body = b"".join(types)
    header = struct.pack("<HBBIIIII", 0xEB9F, 1, 0, 24, 0, len(body), len(body), len(strings))
    path = tmp_path / "hand.btf"
    path.write_bytes(header + body + strings)
    return Btf.from_file(path)


_STRINGS = b"\0int\0s\0m\0"  # offsets: int 1, s 5, m 7
_INT = struct.pack("<IIII", 1, 1 << 24, 4, (1 << 24) | 32)  # id 1: int, 4 bytes, signed


def _struct(name_off: int, size: int, *members: tuple[int, int, int]) -> bytes:
    head = struct.pack("<III", name_off, (4 << 24) | len(members), size)
    return head + b"".join(struct.pack("<III", *m) for m in members)


def test_a_struct_containing_itself_is_a_btf_error(tmp_path: Path) -> None:
    btf = _raw_btf(tmp_path, [_INT, _struct(5, 8, (7, 2, 0))], _STRINGS)  # struct s { struct s m; }
    with pytest.raises(BtfError, match=r"BTF type 2 \(s\) contains itself \(type ids 2 -> 2\)"):
        btf.type_by_id(2)
    typedefs = [_INT] + [struct.pack("<III", 0, 8 << 24, i) for i in range(1, 1001)]  # typedef chain 1000 deep
    deep = _raw_btf(tmp_path, typedefs, _STRINGS)
    with pytest.raises(BtfError, match="nested more than"):
        deep.type_by_id(1001)
    assert deep.type_by_id(50) is ctypes.c_int32
    loop = [_INT, struct.pack("<III", 0, 8 << 24, 3), struct.pack("<III", 0, 8 << 24, 2)]  # typedefs of each other
    with pytest.raises(BtfError, match="contains itself"):
        _raw_btf(tmp_path, loop, _STRINGS).type_by_id(2)


def test_unnamed_scalar_members_stay_unnamed(tmp_path: Path) -> None:
    btf = _raw_btf(tmp_path, [_INT, _struct(5, 8, (0, 1, 0), (7, 1, 32))], _STRINGS)  # struct s { int; int m; }
    s = btf.type_by_id(2)
    assert ctypes.sizeof(s) == 8 and s._btf_members_ == ("m",)
    value = s.from_buffer_copy(struct.pack("<ii", 1, 2))
    assert value.to_dict() == {"m": 2}


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
