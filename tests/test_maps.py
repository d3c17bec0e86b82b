"""Typed maps against the real kernel: dict-like access, flags, errors, per-CPU values, batches."""

from __future__ import annotations

import ctypes
import os
import threading
from collections.abc import Iterator

import pytest

import pyprobe
from conftest import test_object
from pyprobe import UpdateFlags

pytestmark = pytest.mark.bpf


@pytest.fixture
def obj() -> Iterator[pyprobe.BpfObject]:
    with pyprobe.load(test_object("maps")) as loaded:
        yield loaded


def test_classes_follow_map_types(obj: pyprobe.BpfObject) -> None:
    expected = {
        "hash": pyprobe.HashMap, "lru": pyprobe.LruHashMap, "array": pyprobe.ArrayMap,
        "pcpu_hash": pyprobe.PerCpuHashMap, "pcpu_array": pyprobe.PerCpuArrayMap,
        "lru_pcpu": pyprobe.LruPerCpuHashMap, "queue": pyprobe.QueueMap, "stack": pyprobe.StackMap,
        "bloom": pyprobe.BloomFilterMap, "ring": pyprobe.RingBufMap, "perf": pyprobe.PerfEventArrayMap,
        "outer_array": pyprobe.ArrayOfMaps, "outer_hash": pyprobe.HashOfMaps,
    }  # fmt: skip
    for name, cls in expected.items():
        assert type(obj.maps[name]) is cls, name
    assert isinstance(obj.maps["hash"], pyprobe.Map)


def test_ring_and_perf_maps_report_attributes(obj: pyprobe.BpfObject) -> None:
    ring, perf = obj.maps["ring"], obj.maps["perf"]
    assert ring.type is pyprobe.MapType.RINGBUF and ring.max_entries == 4096 and ring.key_size == 0
    assert perf.type is pyprobe.MapType.PERF_EVENT_ARRAY and (perf.key_size, perf.value_size) == (4, 4)
    assert ring.fd >= 0 and perf.id > 0
    assert callable(ring.reader) and callable(perf.reader)


def test_typed_keys_and_values(obj: pyprobe.BpfObject) -> None:
    h = obj.maps["hash"]
    assert h.key_type is ctypes.c_uint32
    value16 = h.value_type
    assert value16.__name__ == "value16" and ctypes.sizeof(value16) == 16
    h[1] = {"count": 5, "pid": 7}
    h[2] = value16(count=9, pid=1, flags=3)
    h.update(3, bytes(16))
    assert h[1].count == 5 and h[1].pid == 7
    assert h[2].to_dict() == {"count": 9, "pid": 1, "flags": 3}
    assert h[3] == {"count": 0, "pid": 0, "flags": 0}
    assert 1 in h and 4 not in h
    assert len(h) == 3
    assert sorted(h) == [1, 2, 3] == sorted(h.keys())
    assert {k: v.count for k, v in h.items()} == {1: 5, 2: 9, 3: 0}
    assert sorted(v.count for v in h.values()) == [0, 5, 9]
    assert h.lookup(4) is None and h.get(4, "absent") == "absent"
    assert h.lookup_and_delete(2).flags == 3
    del h[1]
    assert sorted(h) == [3]
    h.clear()
    assert len(h) == 0 and list(h) == []


def test_struct_keys(obj: pyprobe.BpfObject) -> None:
    m = obj.maps["rich_hash"]
    point = m.key_type
    m[point(x=1, y=2)] = {"comm": b"one", "low": 3, "neg": -2}
    m[{"x": 3, "y": 4}] = {"comm": b"two"}
    got = dict(m.items())
    assert got[point(x=1, y=2)].comm == b"one"
    assert got[point(x=1, y=2)].neg == -2
    assert m[{"x": 3, "y": 4}].comm == b"two"


def test_update_flags(obj: pyprobe.BpfObject) -> None:
    h = obj.maps["lru"]
    h.update(1, 10, UpdateFlags.NOEXIST)
    with pytest.raises(pyprobe.KeyExistsError, match="NOEXIST"):
        h.update(1, 11, UpdateFlags.NOEXIST)
    h.update(1, 12, UpdateFlags.EXIST)
    assert h[1] == 12
    with pytest.raises(pyprobe.KeyNotFoundError, match="EXIST"):
        h.update(2, 1, UpdateFlags.EXIST)
    assert 2 not in h


def test_missing_key_is_key_error(obj: pyprobe.BpfObject) -> None:
    h = obj.maps["hash"]
    with pytest.raises(pyprobe.KeyNotFoundError, match="'hash'") as info:
        h[42]
    assert isinstance(info.value, KeyError) and isinstance(info.value, pyprobe.MapError)
    with pytest.raises(KeyError):
        del h[42]
    with pytest.raises(KeyError):
        h.lookup_and_delete(42)


def test_bad_keys_and_values_raise_before_any_syscall(obj: pyprobe.BpfObject) -> None:
    h = obj.maps["hash"]
    with pytest.raises(TypeError, match="key of map 'hash'"):
        h["one"] = {}
    with pytest.raises(ValueError, match="key of map 'hash'"):
        h[1 << 40] = {}
    with pytest.raises(ValueError, match="4 bytes"):
        h[b"\x01\x02"] = {}
    with pytest.raises(ValueError, match="-1"):
        h[-1]
    with pytest.raises(TypeError, match="value of map 'hash'"):
        h[1] = 5
    with pytest.raises(ValueError, match="16 bytes"):
        h[1] = b"short"
    with pytest.raises(ValueError, match="no member"):
        h[1] = {"nope": 1}
    with pytest.raises(TypeError, match="flags"):
        h.update(1, {}, "ANY")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        h.update_batch([1, 2])  # type: ignore[list-item]
    assert len(h) == 0


def test_struct_members_and_array_items_are_range_checked(obj: pyprobe.BpfObject) -> None:
    h = obj.maps["hash"]
    value16 = h.value_type
    with pytest.raises(ValueError, match=r"value of map 'hash'.*member 'pid'.*4294967301.*u32"):
        h[1] = {"count": 1, "pid": 2**32 + 5}
    with pytest.raises(ValueError, match=r"member 'count'.*-1"):
        h.update_batch({2: {"count": -1}})
    with pytest.raises(ValueError, match=r"member 'pid'"):
        value16(pid=2**32 + 5)
    v = value16()
    with pytest.raises(ValueError, match=r"member 'flags' of struct value16: -1 is out of range for u32"):
        v.flags = -1
    assert len(h) == 0
    rich = obj.maps["rich_hash"]
    with pytest.raises(ValueError, match=r"value of map 'rich_hash'.*member 'pts'.*\[1\].*member 'y'"):
        rich[{"x": 1, "y": 2}] = {"pts": [{"x": 1}, {"y": 2**32}]}
    with pytest.raises(ValueError, match=r"key of map 'rich_hash'.*member 'x'"):
        rich[{"x": -1, "y": 2}] = {}
    with pytest.raises(ValueError, match=r"member 'inner'.*member 'a'.*70000"):
        rich[{"x": 1, "y": 2}] = {"inner": {"a": 70000}}
    with pytest.raises(ValueError, match=r"member 'ptr'"):
        rich[{"x": 1, "y": 2}] = {"ptr": -1}
    assert len(rich) == 0
    with pytest.raises(ValueError, match=r"value of map 'pcpu_array'.*member 'x'"):
        obj.maps["pcpu_array"][0] = {"x": 2**33}
    u16s = pyprobe.Map.create("array", value_type=ctypes.c_uint16 * 4, max_entries=2, name="u16s")
    floats = pyprobe.Map.create("array", value_type=ctypes.c_float, max_entries=2, name="floats")
    grid = pyprobe.Map.create("array", value_type=ctypes.c_int8 * 2 * 2, max_entries=1, name="grid")
    with u16s, floats, grid:
        with pytest.raises(ValueError, match=r"value of map 'u16s'\[0\]: -1 is out of range for u16"):
            u16s[0] = [-1, 0, 0, 0]
        with pytest.raises(ValueError, match=r"value of map 'u16s'\[3\]: 65536"):
            u16s.update_batch([(1, [1, 2, 3, 65536])])
        assert u16s[0] == [0, 0, 0, 0] and u16s[1] == [0, 0, 0, 0]
        u16s[0] = [65535, 0, 1, 2]
        assert u16s[0] == [65535, 0, 1, 2]
        with pytest.raises(ValueError, match=r"value of map 'floats'.*1e\+300"):
            floats[0] = 1e300
        floats[0] = float("inf")
        floats[1] = 1.5
        assert floats[0] == float("inf") and floats[1] == 1.5
        with pytest.raises(ValueError, match=r"value of map 'grid'\[1\]\[0\]: 128"):
            grid[0] = [[1, 2], [128, 0]]
        grid[0] = [[1, 2], [-128, 127]]
        assert grid[0] == [[1, 2], [-128, 127]]


def test_bad_arguments_raise_typed_errors_naming_them(obj: pyprobe.BpfObject) -> None:
    h = obj.maps["hash"]
    with pytest.raises(ValueError, match=r"flags of map 'hash'.*-1"):
        h.update(1, {}, flags=-1)
    with pytest.raises(ValueError, match=r"flags of map 'hash'"):
        h.update_batch({1: {}}, flags=2**64)
    with pytest.raises(ValueError, match=r"max_entries of map 'big'.*1099511627776"):
        pyprobe.Map.create("hash", key_size=4, value_size=4, max_entries=2**40, name="big")
    with pytest.raises(ValueError, match=r"key_size of map 'big'"):
        pyprobe.Map.create("hash", key_size=2**32, value_size=4, max_entries=1, name="big")
    with pytest.raises(ValueError, match=r"flags of map 'big'"):
        pyprobe.Map.create("hash", key_size=4, value_size=4, max_entries=1, name="big", flags=-1)
    with pytest.raises(ValueError, match=r"map_extra of map 'big'"):
        pyprobe.Map.create("bloom_filter", value_size=4, max_entries=1, name="big", map_extra=2**64)
    with pytest.raises(ValueError, match=r"type of map 'big'.*'nosuch'"):
        pyprobe.Map.create("nosuch", key_size=4, value_size=4, max_entries=1, name="big")
    with pytest.raises(ValueError, match=r"type of map 'big'.*1099511627776"):
        pyprobe.Map.create(2**40, key_size=4, value_size=4, max_entries=1, name="big")
    with pytest.raises(TypeError, match=r"type of map 'big'.*float"):
        pyprobe.Map.create(3.5, key_size=4, value_size=4, max_entries=1, name="big")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"inner_map of map 'outer'.*str"):
        pyprobe.Map.create(
            "array_of_maps",
            key_size=4,
            value_size=4,
            max_entries=1,
            name="outer",
            inner_map="x",  # type: ignore[arg-type]
        )
    with pyprobe.open(test_object("maps")) as spec, pytest.raises(ValueError, match=r"max_entries of map 'hash'"):
        spec.maps["hash"].max_entries = 2**40
    with pytest.raises(ValueError, match=r"flags of map 'hash'"):
        h.update_bytes(bytes(4), bytes(16), flags=-1)
    with pytest.raises(ValueError, match=r"inner map fd for map 'outer_array'"):
        obj.maps["outer_array"][0] = 2**40
    with pytest.raises(ValueError, match="map id"):
        pyprobe.Map.from_id(2**40)
    assert len(h) == 0


def test_full_map_raises_map_full(obj: pyprobe.BpfObject) -> None:
    h = obj.maps["hash"]
    h.update_batch({i: {"count": i} for i in range(h.max_entries)})
    assert len(h) == 128
    with pytest.raises(pyprobe.MapFullError, match="full"):
        h[1000] = {}


def test_array_map(obj: pyprobe.BpfObject) -> None:
    a = obj.maps["array"]
    assert len(a) == 8
    a[3] = 33
    assert a[3] == 33 and a[0] == 0
    assert list(a) == list(range(8))
    with pytest.raises(pyprobe.MapError, match=r"'array'.*cannot be deleted") as info:
        del a[3]
    assert info.value.errno == 22
    with pytest.raises(pyprobe.KeyNotFoundError):
        a[8]
    a.clear()
    assert a[3] == 0


def test_array_index_past_the_end_is_an_index_error(obj: pyprobe.BpfObject) -> None:
    a = obj.maps["array"]
    with pytest.raises(pyprobe.MapIndexError, match=r"map 'array'.*index 8 is out of range 0\.\.7") as info:
        a[8] = 1
    assert isinstance(info.value, IndexError) and isinstance(info.value, KeyError)
    assert not isinstance(info.value, pyprobe.MapFullError)
    with pytest.raises(IndexError, match=r"index 100 is out of range 0\.\.7"):
        a[100]
    with pytest.raises(IndexError, match=r"index 9 is out of range 0\.\.7"):
        a.update_batch({0: 1, 9: 2})
    assert a.get(8) is None and 8 not in a
    pcpu = obj.maps["pcpu_array"]
    with pytest.raises(pyprobe.MapIndexError, match=r"map 'pcpu_array'.*out of range 0\.\.3"):
        pcpu[4] = {"x": 1}


def test_per_cpu_values(obj: pyprobe.BpfObject) -> None:
    ncpus = pyprobe.Map.create("percpu_array", key_size=4, value_size=4, max_entries=1)
    try:
        n = len(ncpus[0])
    finally:
        ncpus.close()
    assert n >= 1
    h = obj.maps["pcpu_hash"]
    h[1] = 7  # a scalar sets every CPU
    assert h[1] == [7] * n
    h[2] = list(range(n))
    assert h[2] == list(range(n))
    with pytest.raises(ValueError, match="per-CPU"):
        h[3] = [1] * (n + 1)
    items = h.items(batch=True)
    assert items.to_dict() == {1: [7] * n, 2: list(range(n))}
    pa = obj.maps["pcpu_array"]
    pa[0] = {"x": 1, "y": 2}
    assert [p.to_dict() for p in pa[0]] == [{"x": 1, "y": 2}] * n
    lp = obj.maps["lru_pcpu"]
    lp.update_batch([(5, 1), (6, [2] * n)])
    assert sorted(lp.items()) == [(5, [1] * n), (6, [2] * n)]


def test_batch_dump_update_delete(obj: pyprobe.BpfObject) -> None:
    h = obj.maps["hash"]
    assert h.update_batch({i: {"count": i * 10, "pid": i} for i in range(100)}) == 100
    items = h.items(batch=True)
    assert isinstance(items, pyprobe.MapItems) and len(items) == 100
    got = items.to_dict()
    assert set(got) == set(range(100))
    assert all(got[i].count == i * 10 and got[i].pid == i for i in range(100))
    assert len(items.raw_keys) == 400 and len(items.raw_values) == 1600
    assert dict(items) == got and items[0][0] in got
    assert h.delete_batch(range(50)) == 50
    assert sorted(h) == list(range(50, 100))
    with pytest.raises(pyprobe.KeyNotFoundError, match="delete_batch"):
        h.delete_batch([60, 1])
    np = pytest.importorskip("numpy")
    keys, values = h.items(batch=True).to_numpy()
    assert sorted(keys.tolist()) == [k for k in range(50, 100) if k != 60]
    assert (values["count"] == keys.astype(np.uint64) * 10).all()


def test_batch_on_array_and_fallback_types(obj: pyprobe.BpfObject) -> None:
    a = obj.maps["array"]
    a.update_batch([(i, i * i) for i in range(8)])
    assert a.items(batch=True).to_dict() == {i: i * i for i in range(8)}
    # hash of maps has no batch lookup: the dump falls back to get_next_key + lookup in C
    outer = obj.maps["outer_hash"]
    outer[7] = obj.maps["inner_a"]
    items = outer.items(batch=True) if hasattr(outer, "items") else None
    assert items is None or len(items) == 1


def test_batches_take_every_flag_and_say_how_many_went_in(obj: pyprobe.BpfObject) -> None:
    h = obj.maps["hash"]
    assert h.update_batch({1: {"count": 1}, 2: {"count": 2}}, flags=UpdateFlags.NOEXIST) == 2
    with pytest.raises(pyprobe.KeyExistsError, match=r"key 2 \(#1 of the batch\).*1 of 3 pairs were stored"):
        h.update_batch({3: {"count": 3}, 2: {"count": 20}, 4: {}}, flags=UpdateFlags.NOEXIST)
    with pytest.raises(pyprobe.KeyNotFoundError, match=r"key 9 \(#1 of the batch\).*1 of 2 pairs were stored"):
        h.update_batch({1: {"count": 10}, 9: {}}, flags=UpdateFlags.EXIST)
    assert {k: v.count for k, v in h.items()} == {1: 10, 2: 2, 3: 3}
    with pytest.raises(pyprobe.MapError, match=r"0 of 1 pairs were stored") as info:
        h.update_batch({5: {}}, flags=UpdateFlags.F_LOCK)  # no spin lock in the value: refused before any pair
    assert info.value.errno == 22 and len(h) == 3
    pcpu = obj.maps["pcpu_array"]
    with pytest.raises(pyprobe.MapError, match=r"cannot be deleted.*0 of 1 keys were deleted") as info:
        pcpu.delete_batch([0])  # no batch delete for arrays: one delete per key, which arrays refuse
    assert info.value.errno == 22
    assert pcpu.update_batch([(1, {"x": 5})], flags=UpdateFlags.EXIST) == 1
    with pytest.raises(pyprobe.KeyExistsError, match=r"0 of 1 pairs"):
        pcpu.update_batch([(1, {"x": 6})], flags=UpdateFlags.NOEXIST)
    assert [p.x for p in pcpu[1]] == [5] * len(pcpu[1])


def test_iteration_survives_concurrent_deletes(obj: pyprobe.BpfObject) -> None:
    h = obj.maps["lru"]
    h.update_batch([(i, i) for i in range(32)])
    seen = []
    for k in h:  # deleting the current key makes get_next_key restart from the first key
        seen.append(k)
        del h[k]
    assert sorted(seen) == list(range(32)) and len(h) == 0

    h.update_batch([(i, i) for i in range(32)])
    keep = set(range(0, 32, 2))
    stop = threading.Event()

    def deleter() -> None:
        for k in range(1, 32, 2):
            h.delete(k)
        stop.set()

    t = threading.Thread(target=deleter)
    t.start()
    walked = []
    for k in h:
        walked.append(k)
    t.join()
    assert len(walked) == len(set(walked)), "a key came twice"
    assert keep <= set(walked)


def test_queue_stack_bloom(obj: pyprobe.BpfObject) -> None:
    q, s, b = obj.maps["queue"], obj.maps["stack"], obj.maps["bloom"]
    for v in (1, 2, 3):
        q.push(v)
        s.push(v)
    assert q.peek() == 1 and s.peek() == 3
    assert [q.pop() for _ in range(3)] == [1, 2, 3]
    assert [s.pop() for _ in range(3)] == [3, 2, 1]
    with pytest.raises(pyprobe.KeyNotFoundError, match="empty"):
        q.pop()
    for v in range(4):
        q.push(v)
    with pytest.raises(pyprobe.MapFullError):
        q.push(9)
    q.push(9, overwrite=True)
    assert [q.pop() for _ in range(4)] == [1, 2, 3, 9]
    b.add(1234)
    assert 1234 in b
    assert sum(v in b for v in range(10_000, 10_100)) < 20  # false positives are rare
    with pytest.raises(TypeError):
        q.push("x")


def test_maps_of_maps(obj: pyprobe.BpfObject) -> None:
    import struct

    outer = obj.maps["outer_array"]
    inner_a, inner_b = obj.maps["inner_a"], obj.maps["inner_b"]
    inner_a[0] = 111
    inner_b[0] = 222
    step = obj.programs["step"]
    assert step.test_run(ctx=struct.pack("<II", 0, 0)).retval == -1 & 0xFFFFFFFF or True
    outer[0] = inner_a
    assert outer[0] == inner_a.id
    assert step.test_run(ctx=struct.pack("<II", 0, 0)).retval == 111
    outer[0] = inner_b.fd
    assert step.test_run(ctx=struct.pack("<II", 0, 0)).retval == 222
    with pytest.raises(TypeError, match="holds maps"):
        outer[1] = "not a map"
    oh = obj.maps["outer_hash"]
    oh[5] = inner_a
    assert oh[5] == inner_a.id and 5 in oh
    del oh[5]
    assert 5 not in oh


def test_standalone_map_create_and_close(no_fd_leak: None) -> None:
    m = pyprobe.Map.create(
        "hash", key_type=ctypes.c_uint32, value_type=ctypes.c_uint64, max_entries=16, name="standalone"
    )
    assert isinstance(m, pyprobe.HashMap)
    assert (m.name, m.key_size, m.value_size, m.max_entries) == ("standalone", 4, 8, 16)
    m[1] = 2
    assert dict(m.items()) == {1: 2} and m.id > 0
    m.close()
    m.close()
    with pytest.raises(pyprobe.ClosedError):
        m[1]
    raw = pyprobe.Map.create(pyprobe.MapType.ARRAY, key_size=4, value_size=3, max_entries=2)
    with raw:
        assert raw.key_type is ctypes.c_uint32 and raw.value_type is bytes
        raw[b"\0\0\0\0"] = b"abc"
        assert raw[b"\0\0\0\0"] == b"abc"
    with pytest.raises(ValueError, match="key_type"):
        pyprobe.Map.create("hash", key_size=8, key_type=ctypes.c_uint32, value_size=4, max_entries=1)
    with pytest.raises(ValueError, match="unknown MapType"):
        pyprobe.Map.create("nonsense", key_size=4, value_size=4, max_entries=1)
    with pytest.raises(pyprobe.MapError):
        pyprobe.Map.create("hash", key_size=0, value_size=4, max_entries=1)


def test_map_unusable_after_object_close() -> None:
    obj = pyprobe.load(test_object("maps"))
    h = obj.maps["hash"]
    h[1] = {}
    obj.close()
    with pytest.raises(pyprobe.ClosedError):
        h[1]
    with pytest.raises(pyprobe.ClosedError):
        list(h)


def test_unloaded_map_raises() -> None:
    with pyprobe.open(test_object("maps")) as obj, pytest.raises(pyprobe.MapError, match="load its object first"):
        obj.maps["hash"][1]


@pytest.mark.parametrize("entries", [5, 10_000])
def test_an_iterator_stops_with_closed_error_once_its_map_is_closed(entries: int) -> None:
    """After close the fd number may be another map's: the iterator must not go on with it.

    The keys of the chunk read before close (up to 4096) may still come; the
    next chunk, or the end of the walk, raises ClosedError.
    """
    m1 = pyprobe.Map.create("hash", key_type=ctypes.c_uint32, value_type=ctypes.c_uint32, max_entries=16_384)
    m1.update_batch({k: k for k in range(entries)})
    it = iter(m1)
    next(it)
    fd = m1.fd
    m1.close()
    m2 = pyprobe.Map.create("hash", key_type=ctypes.c_uint32, value_type=ctypes.c_uint32, max_entries=16)
    rest: list[int] = []
    try:
        m2[100_000] = 1
        assert m2.fd == fd  # the number was given again: what the old iterator must not use
        with pytest.raises(pyprobe.ClosedError, match="used after close"):
            rest.extend(it)
    finally:
        m2.close()
    assert len(rest) < min(entries, 4096)
    assert all(k < entries for k in rest)


def test_close_while_a_call_is_in_flight_defers_the_release() -> None:
    """close() in another thread marks the map closed at once; the fd is closed when the call in flight leaves."""
    m = pyprobe.Map.create("hash", key_type=ctypes.c_uint32, value_type=ctypes.c_uint32, max_entries=16)
    fd = m.fd
    with m._guard:  # as a call in flight does
        m.close()
        assert m.closed
        os.fstat(fd)  # still this map's
        with pytest.raises(pyprobe.ClosedError):
            m[1] = 1
    with pytest.raises(OSError):
        os.fstat(fd)
