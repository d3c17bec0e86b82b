"""Typed maps against the real kernel: obj.maps.typed(), Map.set_types(), record types from BTF."""

from __future__ import annotations

import ctypes
from collections.abc import Iterator
from typing import Any

import pytest

import pyprobe
from conftest import test_object
from events_helpers import EMIT_SECOND, Event, emit, load_events, perf_emit

pytestmark = pytest.mark.bpf


class Value16(ctypes.Structure):
    """struct value16 of tests/bpf/maps.h, written by hand."""

    _fields_ = [("count", ctypes.c_uint64), ("pid", ctypes.c_uint32), ("flags", ctypes.c_uint32)]


class Point(ctypes.Structure):
    """struct point of tests/bpf/maps.h."""

    _fields_ = [("x", ctypes.c_uint32), ("y", ctypes.c_uint32)]


@pytest.fixture
def maps_obj() -> Iterator[pyprobe.BpfObject]:
    with pyprobe.load(test_object("maps")) as loaded:
        yield loaded


@pytest.fixture
def events_obj() -> Iterator[pyprobe.BpfObject]:
    with load_events() as loaded:
        yield loaded


# --- obj.maps.typed() ----------------------------------------------------------------


def test_typed_returns_the_map_itself(maps_obj: pyprobe.BpfObject) -> None:
    counts = maps_obj.maps.typed("lru", pyprobe.HashMap[int, int])  # an LRU hash is a HashMap
    assert counts is maps_obj.maps["lru"]
    counts[7] = 70
    assert counts[7] == 70 and dict(counts.items()) == {7: 70}
    assert maps_obj.maps.typed("hash", pyprobe.HashMap) is maps_obj.maps["hash"]
    assert maps_obj.maps.typed("hash", pyprobe.Map) is maps_obj.maps["hash"]
    ring = maps_obj.maps.typed("ring", pyprobe.RingBufMap[bytes])
    assert isinstance(ring, pyprobe.RingBufMap)
    per_cpu = maps_obj.maps.typed("pcpu_hash", pyprobe.PerCpuHashMap[int, int])
    per_cpu[1] = 5
    assert per_cpu[1] == [5] * len(per_cpu[1])
    assert maps_obj.maps.typed("pcpu_hash", pyprobe.HashMap[int, list[int]]) is per_cpu


def test_typed_names_the_map_its_kind_and_the_class_asked_for(maps_obj: pyprobe.BpfObject) -> None:
    with pytest.raises(TypeError) as info:
        maps_obj.maps.typed("hash", pyprobe.ArrayMap[int])
    assert str(info.value) == "map 'hash' of object 'maps' is a HashMap (hash map), not an ArrayMap"
    with pytest.raises(TypeError, match=r"map 'ring' of object 'maps' is a RingBufMap \(ringbuf map\), not a HashMap"):
        maps_obj.maps.typed("ring", pyprobe.HashMap[int, int])
    with pytest.raises(TypeError, match=r"map 'perf' .* PerfEventArrayMap \(perf_event_array map\), not a RingBufMap"):
        maps_obj.maps.typed("perf", pyprobe.RingBufMap[Event])
    with pytest.raises(TypeError, match=r"'pcpu_hash' .* PerCpuHashMap \(percpu_hash map\), whose values are lists"):
        maps_obj.maps.typed("pcpu_hash", pyprobe.HashMap[int, int])
    with pytest.raises(TypeError, match="typed\\(\\) takes a map class"):
        maps_obj.maps.typed("hash", int)  # type: ignore[type-var]
    with pytest.raises(KeyError, match="no map 'nope' in object 'maps'"):
        maps_obj.maps.typed("nope", pyprobe.HashMap)


# --- Map.set_types() ---------------------------------------------------------------


def test_set_types_decodes_into_the_given_structure(maps_obj: pyprobe.BpfObject) -> None:
    h = maps_obj.maps.typed("hash", pyprobe.HashMap[int, Value16])
    h[1] = {"count": 5, "pid": 7}  # the BTF-made type, before set_types
    h.set_types(value_type=Value16)
    assert h.value_type is Value16 and h.key_type is ctypes.c_uint32
    got = h[1]
    assert type(got) is Value16 and (got.count, got.pid, got.flags) == (5, 7, 0)
    h[2] = Value16(count=9, pid=1, flags=3)
    with pytest.raises(TypeError, match="value of map 'hash' must be Value16 or 16 raw bytes, not dict"):
        h[3] = {"count": 1}  # type: ignore[assignment]
    dumped = h.items(batch=True)
    assert all(type(v) is Value16 for v in dumped.value_list())
    assert sorted((k, v.count) for k, v in dumped) == [(1, 5), (2, 9)]
    h.set_types(key_type=ctypes.c_int32)  # the value type stays
    assert h.key_type is ctypes.c_int32 and h.value_type is Value16
    h.set_types(value_type=bytes)
    assert h[2] == bytes(Value16(count=9, pid=1, flags=3))


def test_set_types_checks_sizes_and_types(maps_obj: pyprobe.BpfObject) -> None:
    h = maps_obj.maps["hash"]
    with pytest.raises(ValueError) as info:
        h.set_types(value_type=Point)
    assert str(info.value) == "value_type Point of map 'hash' is 8 bytes, but the map's values are 16 bytes"
    with pytest.raises(ValueError, match="key_type c_ulong of map 'hash' is 8 bytes, but the map's keys are 4 bytes"):
        h.set_types(key_type=ctypes.c_uint64)
    with pytest.raises(TypeError, match="value_type of map 'hash' must be a ctypes type \\(or bytes\\), not dict"):
        h.set_types(value_type=dict)
    with pytest.raises(TypeError, match="must be a ctypes type"):
        h.set_types(value_type=3)  # type: ignore[arg-type]
    assert h.value_type.__name__ == "value16"  # unchanged by the refused calls


def test_set_types_on_a_per_cpu_map_types_one_cpu_value(maps_obj: pyprobe.BpfObject) -> None:
    pcpu = maps_obj.maps.typed("pcpu_array", pyprobe.PerCpuArrayMap[Point])
    pcpu.set_types(value_type=Point)  # 8 bytes: one CPU's value, not the whole per-CPU row
    pcpu[1] = Point(3, 4)
    row = pcpu[1]
    assert all(type(p) is Point and (p.x, p.y) == (3, 4) for p in row)
    batch = pcpu.items(batch=True).to_dict()
    assert [(p.x, p.y) for p in batch[1]] == [(3, 4)] * len(row)


def test_set_types_on_an_event_map_sets_the_record_type(events_obj: pyprobe.BpfObject) -> None:
    ring = events_obj.maps.typed("events", pyprobe.RingBufMap[Event])
    assert ring.event_type is None  # no PYPROBE_EVENT_TYPE for this map
    with pytest.raises(TypeError, match="map 'events' is a ringbuf map: it has no keys to type"):
        ring.set_types(key_type=ctypes.c_uint32)
    with pytest.raises(TypeError, match="must be a ctypes type"):
        ring.set_types(value_type=str)
    ring.set_types(value_type=Event)
    assert ring.event_type is Event
    with ring.reader() as rb:
        emit(events_obj, 3, start=40)
        batch = rb.read_batch(timeout=1.0)
    assert batch.event_type is Event and [type(e) for e in batch] == [Event] * 3
    assert [e.seq for e in batch] == [40, 41, 42]


# --- record types from PYPROBE_EVENT_TYPE ------------------------------------------------


def test_ring_reader_defaults_to_the_type_pyprobe_event_type_names(events_obj: pyprobe.BpfObject) -> None:
    ring = events_obj.maps.typed("events2", pyprobe.RingBufMap[Any])
    record = ring.event_type
    assert record is not None and record.__name__ == "event" and ctypes.sizeof(record) == 72
    assert record is events_obj.btf.type_by_name("struct event")
    with ring.reader() as rb:
        emit(events_obj, 3, start=5, flags=EMIT_SECOND)
        events = list(rb.events(timeout=0.5))
    assert [type(e) for e in events] == [record] * 3
    assert [e.seq for e in events] == [5, 6, 7] and events[0].comm == b"ev"
    with pyprobe.RingBuffer(events_obj.maps["events2"]) as rb:  # the constructor takes the same default
        emit(events_obj, 1, start=9, flags=EMIT_SECOND)
        assert [e.seq for e in rb.read_batch(timeout=1.0)] == [9]
    with ring.reader(event_type=bytes) as rb:  # bytes: the raw records despite the default
        emit(events_obj, 1, start=11, flags=EMIT_SECOND)
        (raw,) = rb.read_batch(timeout=1.0)
    assert isinstance(raw, bytes) and len(raw) == 72 and Event.from_buffer_copy(raw).seq == 11
    ring.set_types(value_type=bytes)  # set_types overrides BTF's type as well
    assert ring.event_type is None


def test_perf_reader_defaults_to_the_type_pyprobe_event_type_names(events_obj: pyprobe.BpfObject) -> None:
    perf = events_obj.maps.typed("perf_events", pyprobe.PerfEventArrayMap[Any])
    record = perf.event_type
    assert record is not None and record.__name__ == "event"
    assert events_obj.maps.typed("events", pyprobe.RingBufMap[Any]).event_type is None
    got: list[Any] = []
    with perf.reader(got.append) as pb:
        perf_emit(events_obj, 4, start=20)
        while len(got) < 4:
            assert pb.poll(timeout=1.0) > 0
    assert [type(e) for e in got] == [record] * 4  # cut to the type's size: no perf padding
    assert sorted(e.seq for e in got) == [20, 21, 22, 23]


def test_record_type_is_known_before_load() -> None:
    with pyprobe.open(test_object("events")) as spec:
        record = spec.maps.typed("events2", pyprobe.RingBufMap[Any]).event_type
        assert record is not None and record.__name__ == "event"


def test_an_unknown_event_type_name_says_how_to_export_it(events_obj: pyprobe.BpfObject) -> None:
    ring = events_obj.maps.typed("events", pyprobe.RingBufMap[Any])
    with pytest.raises(pyprobe.BtfError) as info:
        ring.reader(event_type="open_event")
    text = str(info.value)
    assert "no type named 'open_event'" in text and "event_type of map 'events'" in text
    assert "PYPROBE_EXPORT_TYPE(struct open_event);" in text
    assert "PYPROBE_EVENT_TYPE(events, struct open_event);" in text
    assert "<pyprobe/btf.h>" in text
    assert isinstance(info.value, LookupError)
    with pytest.raises(pyprobe.BtfError, match=r"PYPROBE_EXPORT_TYPE\(union u\);"):
        pyprobe.PerfBuffer(events_obj.maps["perf_events"], event_type="union u")
