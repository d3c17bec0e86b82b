"""Standalone maps created with key and value types carry BTF: pinned, they reopen typed elsewhere."""

from __future__ import annotations

import ctypes
import json
import os
import subprocess
import sys
import textwrap
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

import pyprobe
from conftest import open_fds

pytestmark = pytest.mark.bpf


class Point(ctypes.Structure):
    _fields_ = [("x", ctypes.c_int32), ("y", ctypes.c_int32)]


class Record(ctypes.Structure):
    _fields_ = [
        ("count", ctypes.c_uint64),
        ("pid", ctypes.c_uint32),
        ("comm", ctypes.c_char * 12),
        ("where", Point),
        ("history", ctypes.c_uint16 * 3),
    ]


class Bits(ctypes.Structure):
    _fields_ = [("low", ctypes.c_uint32, 3), ("high", ctypes.c_uint32, 29)]


CHILD = textwrap.dedent(
    """
    import json, sys
    import pyprobe
    m = pyprobe.Map.from_pinned(sys.argv[1])
    out = {"key": m.key_type.__name__, "value": m.value_type.__name__, "members": list(m.value_type._btf_members_)}
    out["fetched"] = m[1].to_dict()
    out["fetched"]["comm"] = out["fetched"]["comm"].decode()
    out["pid_attr"] = m[1].pid
    m[7] = {"count": 70, "pid": 7, "comm": b"child", "where": {"x": -1, "y": 2}, "history": [1, 2, 3]}
    del m[2]
    out["keys"] = sorted(m)
    out["items"] = {k: v.count for k, v in m.items()}
    m.close()
    print(json.dumps(out))
    """
)


@pytest.fixture
def pin_path() -> Iterator[Path]:
    path = Path("/sys/fs/bpf") / f"pyprobe_mapbtf_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    yield path
    if path.exists():
        path.unlink()


def _child(code: str, path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", code, str(path)], check=False, capture_output=True, text=True, timeout=60
    )


def test_pinned_struct_map_reopens_typed_in_another_process(pin_path: Path) -> None:
    m = pyprobe.Map.create("hash", key_type=ctypes.c_uint32, value_type=Record, max_entries=16, name="records")
    with m:
        m[1] = Record(count=10, pid=100, comm=b"first", where=Point(3, 4))
        m[2] = Record(count=20, pid=200)
        m.pin(pin_path)
        run = _child(CHILD, pin_path)
        assert run.returncode == 0, run.stderr
        out = json.loads(run.stdout)
        assert out == {
            "key": "c_uint", "value": "Record", "members": ["count", "pid", "comm", "where", "history"],
            "fetched": {"count": 10, "pid": 100, "comm": "first", "where": {"x": 3, "y": 4}, "history": [0, 0, 0]},
            "pid_attr": 100, "keys": [1, 7], "items": {"1": 10, "7": 70},
        }  # fmt: skip
        seen = m[7]
        assert (seen.count, seen.pid, seen.comm, seen.where.x, list(seen.history)) == (70, 7, b"child", -1, [1, 2, 3])
        assert sorted(m) == [1, 7]
        m.unpin()
    assert not pin_path.exists()


def test_array_map_with_value_type_only_gets_btf(pin_path: Path) -> None:
    with pyprobe.Map.create("array", key_size=4, value_type=Point, max_entries=4) as m:
        m[2] = Point(5, 6)
        m.pin(pin_path)
        with pyprobe.Map.from_pinned(pin_path) as again:
            assert again.key_type is ctypes.c_uint32 and again.value_type.__name__ == "Point"
            assert again.btf is not None
            assert again[2].to_dict() == {"x": 5, "y": 6}
            again[3] = {"x": 7, "y": 8}
        assert (m[3].x, m[3].y) == (7, 8)
        m.unpin()


def test_percpu_map_reopens_with_struct_values(pin_path: Path) -> None:
    with pyprobe.Map.create("percpu_hash", key_type=ctypes.c_uint64, value_type=Point, max_entries=4) as m:
        m[9] = Point(1, 2)
        m.pin(pin_path)
        with pyprobe.Map.from_pinned(pin_path) as again:
            values = again[9]
            assert isinstance(values, list) and all(v.to_dict() == {"x": 1, "y": 2} for v in values)
        m.unpin()


def test_types_without_btf_still_create_the_map(pin_path: Path) -> None:
    with pyprobe.Map.create("hash", key_type=ctypes.c_uint32, value_type=Bits, max_entries=4) as m:
        v = Bits()
        v.low, v.high = 5, 1000
        m[1] = v
        assert (m[1].low, m[1].high) == (5, 1000)
        m.pin(pin_path)
        with pyprobe.Map.from_pinned(pin_path) as again:
            assert again.btf is None and again.value_type is bytes
            assert again[(1).to_bytes(4, "little")] == bytes(v)
        m.unpin()
    # only one side typed on a hash map: no BTF either, the map is made all the same
    with pyprobe.Map.create("hash", key_size=4, value_type=Point, max_entries=4) as m2:
        m2[b"\x01\x00\x00\x00"] = Point(1, 1)
        with pyprobe.Map.from_id(m2.id) as again:
            assert again.btf is None and again.value_type is bytes


def test_creating_typed_maps_leaks_no_fd() -> None:
    before = open_fds()
    for _ in range(20):
        with pyprobe.Map.create("hash", key_type=ctypes.c_uint32, value_type=Record, max_entries=2) as m:
            m[0] = Record(count=1)
    assert open_fds() - before == set()


def test_array_map_created_from_its_value_type_alone() -> None:
    with pyprobe.Map.create("array", value_type=ctypes.c_uint64, max_entries=4) as m:
        assert (m.key_size, m.value_size) == (4, 8)
        m[2] = 7
        assert m[2] == 7
