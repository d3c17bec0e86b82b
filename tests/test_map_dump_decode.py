"""A batch dump decoded in bulk equals the same map read key by key, for every shape of key and value.

Each shape goes through both bulk paths of bytes columns: numpy's (when
installed) and the pure one (``struct.iter_unpack``), chosen by hiding numpy.
"""

from __future__ import annotations

import ctypes
import sys
from collections.abc import Callable
from typing import Any

import pytest

import pyprobe
from conftest import test_object
from pyprobe.btf import Btf
from pyprobe.maps import _codec

pytestmark = pytest.mark.bpf

N = 2000


class _Plain(ctypes.Structure):  # a user's type through key_type/value_type: 12 bytes, padded to 16 per CPU
    _fields_ = [("a", ctypes.c_uint32), ("b", ctypes.c_uint16), ("c", ctypes.c_uint8), ("d", ctypes.c_uint32)]


def _btf(name: str) -> Any:
    return Btf.from_file(test_object("maps")).type_by_name(name)


def _raw(k: int, size: int) -> bytes:
    """``size`` bytes made from ``k``, with NULs inside and at the end (0 gives all NULs)."""
    return bytes((k * 7 + i * 13) % 256 if (k + i) % 3 else 0 for i in range(size))


def _plain(k: int) -> _Plain:
    return _Plain(a=k, b=k & 0xFFFF, c=k & 0xFF, d=~k & 0xFFFFFFFF)


def _comparable(value: Any) -> Any:
    """Plain ctypes structs compare by identity: compare their bytes."""
    if isinstance(value, dict):
        return {k: _comparable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_comparable(v) for v in value]
    if isinstance(value, ctypes.Structure) and type(value).__eq__ is object.__eq__:
        return bytes(value)
    return value


# (map type, create() arguments, key of entry k, value of entry k; per-CPU maps get it per CPU with k + cpu)
Shape = tuple[str, Callable[[], dict[str, Any]], Callable[[int], Any], Callable[[int], Any]]
SHAPES: dict[str, Shape] = {
    "int keys, bytes values": (
        "hash",
        lambda: {"key_type": ctypes.c_uint32, "value_size": 16},
        int,
        lambda k: _raw(k, 16),
    ),
    "int keys, int values": (
        "hash",
        lambda: {"key_type": ctypes.c_uint32, "value_type": ctypes.c_uint64},
        int,
        lambda k: k * 1_000_003,
    ),
    "u64 keys from 2**61 on": (
        "hash",
        lambda: {"key_type": ctypes.c_uint64, "value_type": ctypes.c_uint32},
        lambda k: 2**61 - 3 + k if k < 6 else 2**64 - 1 - k * 0x9E3779B97F4A7,  # hash(2**61 - 1 + j) == j
        lambda k: k,
    ),
    "negative signed keys": (
        "hash",
        lambda: {"key_type": ctypes.c_int64, "value_type": ctypes.c_int32},
        lambda k: {1: -(2**63), 2: -1, 3: -2}.get(k, k if k % 5 == 0 else -(k * 0x9E3779B97F4A7) - 1),
        lambda k: -k,
    ),
    "int keys, odd-sized bytes": (
        "hash",
        lambda: {"key_type": ctypes.c_uint32, "value_size": 13},
        int,
        lambda k: _raw(k, 13),
    ),
    "struct keys and values": (
        "hash",
        lambda: {"key_type": _btf("struct point"), "value_type": _btf("struct value16")},
        lambda k: {"x": k, "y": k ^ 0x5A5A},
        lambda k: {"count": k << 33, "pid": k, "flags": k & 3},
    ),
    "bytes keys, plain struct values": (
        "hash",
        lambda: {"key_size": 6, "value_type": _Plain},
        lambda k: (k * 2654435761 & 0xFFFFFFFF).to_bytes(4, "little") + b"\0\1",
        _plain,
    ),
    "C strings": (
        "hash",
        lambda: {"key_type": ctypes.c_int16, "value_type": ctypes.c_char * 12},
        lambda k: k - 1000,
        lambda k: _raw(k, 12).rstrip(b"\0")[:11],
    ),
    "array of u16": ("array", lambda: {"value_type": ctypes.c_uint16}, int, lambda k: k * 31 & 0xFFFF),
    "per-CPU u32 (padded to 8)": (
        "percpu_hash",
        lambda: {"key_type": ctypes.c_uint32, "value_type": ctypes.c_uint32},
        int,
        lambda k: k * 3,
    ),
    "per-CPU bytes (12, padded to 16)": (
        "percpu_hash",
        lambda: {"key_type": ctypes.c_uint32, "value_size": 12},
        int,
        lambda k: _raw(k, 12),
    ),
    "per-CPU plain structs (padded)": (
        "percpu_hash",
        lambda: {"key_type": ctypes.c_uint64, "value_type": _Plain},
        int,
        _plain,
    ),
    "per-CPU BTF structs": (
        "percpu_array",
        lambda: {"value_type": _btf("struct value16")},
        int,
        lambda k: {"count": k, "pid": 1, "flags": 2},
    ),
}


C_COLUMNS = {  # shapes whose to_dict() is made in C straight from the columns
    "int keys, bytes values", "int keys, int values", "u64 keys from 2**61 on", "negative signed keys",
    "int keys, odd-sized bytes", "array of u16",
}  # fmt: skip


@pytest.fixture(params=["numpy", "pure", "slot order", "python"])
def column_path(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """numpy's columns, the pure ones, to_dict() in hash-slot order from the first entry on, or no C module."""
    if request.param == "numpy":
        pytest.importorskip("numpy")
    elif request.param == "pure":
        monkeypatch.setitem(sys.modules, "numpy", None)  # import numpy raises ImportError
    elif request.param == "slot order":
        monkeypatch.setattr(_codec, "_HASH_ORDER_FROM", 0)
    else:
        monkeypatch.setattr(_codec, "_decode", None)
        monkeypatch.setitem(sys.modules, "numpy", None)
    return str(request.param)


@pytest.mark.parametrize("shape", list(SHAPES))
def test_decoded_dump_equals_per_key_lookups(shape: str, column_path: str) -> None:
    kind, make, key_of, value_of = SHAPES[shape]
    per_cpu = kind.startswith("percpu")
    with pyprobe.Map.create(kind, max_entries=N, **make()) as m:
        ncpus = len(m.lookup(0, [0])) if kind == "percpu_array" else 0
        if per_cpu and not ncpus:
            probe = pyprobe.Map.create("percpu_array", key_size=4, value_size=4, max_entries=1)
            with probe:
                ncpus = len(probe[0])
        written = {}
        for k in range(N):
            value = [value_of(k + cpu) for cpu in range(ncpus)] if per_cpu else value_of(k)
            m[key_of(k)] = value
            written[k] = value
        items = m.items(batch=True)
        assert len(items) == N
        key_codec, value_codec = m._codec
        ordered = _codec.hash_ordered(items.raw_keys, items.raw_values, N, key_codec, value_codec)
        int_or_btf_keys = shape != "bytes keys, plain struct values"
        assert (ordered is not None) == (column_path == "slot order" and int_or_btf_keys)
        in_c = _codec.columns_dict(items.raw_keys, items.raw_values, N, key_codec, value_codec) is not None
        assert in_c == (column_path != "python" and shape in C_COLUMNS)
        decoded = items.to_dict()
        by_key = {key: m[key] for key in m}
        assert len(decoded) == len(by_key) == N
        assert _comparable(decoded) == _comparable(by_key)
        assert _comparable(dict(items)) == _comparable(by_key)
        assert _comparable(items.value_list()) == [_comparable(by_key[key]) for key in items.key_list()]
        # and both are what was written
        for k in (0, 1, 2, N // 2, N - 1):
            got, want = decoded[m._codec[0].decode(m._codec[0].encode(key_of(k)))], written[k]
            wanted = (
                [m._codec[1].inner.decode(m._codec[1].inner.encode(w)) for w in want]
                if per_cpu
                else (m._codec[1].decode(m._codec[1].encode(want)))
            )
            assert _comparable(got) == _comparable(wanted), (k, got, wanted)


def test_an_empty_dump_decodes_to_an_empty_dict(column_path: str) -> None:
    with pyprobe.Map.create("hash", key_type=ctypes.c_uint32, value_size=16, max_entries=8) as m:
        items = m.items(batch=True)
        assert len(items) == 0 and items.to_dict() == {} and items.key_list() == [] and items.value_list() == []
