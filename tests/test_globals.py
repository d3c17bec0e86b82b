"""Global variables: typed from BTF, set before load, live kernel memory after load."""

from __future__ import annotations

import struct

import pytest

import pyprobe
from conftest import test_object

pytestmark = pytest.mark.bpf


def _step(obj: pyprobe.BpfObject, key: int = 0, x: int = 0) -> None:
    obj.programs["step"].test_run(ctx=struct.pack("<II", key, x))


def test_rodata_is_set_before_load_and_frozen_after() -> None:
    spec = pyprobe.open(test_object("maps"))
    with spec:
        assert spec.rodata.scale == 1
        assert spec.rodata.label == b"default"
        spec.rodata.scale = 3
        spec.rodata.label = b"custom"
        assert "scale" in spec.rodata and sorted(dir(spec.rodata)) == ["label", "scale"]
        obj = spec.load()
        assert obj.rodata.scale == 3 and obj.rodata.label == b"custom"
        _step(obj)
        assert obj.bss.total == 5 * 3  # bump (5) * scale (3)
        with pytest.raises(pyprobe.BpfError, match="frozen at load"):
            obj.rodata.scale = 4
        assert obj.rodata.scale == 3


def test_bss_and_data_are_live_kernel_memory() -> None:
    with pyprobe.load(test_object("maps")) as obj:
        assert obj.bss.to_dict() == {"last_point": {"x": 0, "y": 0}, "total": 0, "calls": 0}
        _step(obj, x=42)
        # the program's writes are visible at once
        assert obj.bss.calls == 1 and obj.bss.total == 5
        assert obj.bss.last_point.to_dict() == {"x": 42, "y": 1}
        # a change from Python is what the program uses next
        obj.data.bump = 100
        obj.bss.calls = 10
        _step(obj, x=7)
        assert obj.bss.total == 105 and obj.bss.calls == 11
        obj.bss.last_point = {"x": 1, "y": 2}
        assert obj.bss.last_point.y == 2


def test_globals_set_before_load_become_initial_values() -> None:
    with pyprobe.open(test_object("maps")) as spec:
        spec.data.bump = 7
        spec.bss.total = 1000
        obj = spec.load()
        _step(obj)
        assert obj.bss.total == 1007


def test_bad_global_access() -> None:
    with pyprobe.open(test_object("maps")) as spec:
        with pytest.raises(AttributeError, match=r"no global 'nope' in \.bss"):
            _ = spec.bss.nope
        with pytest.raises(AttributeError, match="it has: bump"):
            spec.data.nope = 1
        with pytest.raises(TypeError, match="global 'bump'"):
            spec.data.bump = "x"
        with pytest.raises(ValueError, match="global 'scale'"):
            spec.rodata.scale = -1
        with pytest.raises(ValueError, match="at most 8 bytes"):
            spec.rodata.label = b"far too long a label"
    with pytest.raises(pyprobe.ClosedError):
        _ = spec.bss.total


def test_struct_globals_are_range_checked() -> None:
    with pyprobe.load(test_object("maps")) as obj:
        with pytest.raises(ValueError, match=r"global 'last_point' in \.bss: member 'x' of struct point: 10995"):
            obj.bss.last_point = {"x": 2**40}
        with pytest.raises(ValueError, match=r"global 'calls' in \.bss.*1099511627776"):
            obj.bss.calls = 2**40
        point = type(obj.bss.last_point)
        with pytest.raises(ValueError, match=r"member 'y' of struct point: -1"):
            point(y=-1)
        assert obj.bss.last_point.to_dict() == {"x": 0, "y": 0} and obj.bss.calls == 0
        obj.bss.last_point = {"x": 2**32 - 1}
        assert obj.bss.last_point.x == 2**32 - 1


def test_object_without_section() -> None:
    with pyprobe.load(test_object("tailcall")) as obj:
        assert dir(obj.bss) == []
        with pytest.raises(AttributeError, match="no global"):
            _ = obj.bss.anything


def test_btf_of_object() -> None:
    with pyprobe.open(test_object("maps")) as spec:
        point = spec.btf.type_by_name("struct point")
        assert point(x=1, y=2).to_dict() == {"x": 1, "y": 2}
        assert spec.maps["hash"].value_type is spec.btf.type_by_name("struct value16")
