"""What the ring buffer and perf buffer tests share: the event struct and the producer programs of events.bpf.c."""

from __future__ import annotations

import ctypes
import struct
from typing import Any

import pyprobe
from conftest import test_object

# Flags of struct emit_args (tests/bpf/events.h).
EMIT_NO_WAKEUP = 1
EMIT_SECOND = 2
EMIT_SMALL = 4
EMIT_DISCARD_ODD = 8


class Event(ctypes.Structure):
    """struct event of tests/bpf/events.h (72 bytes)."""

    _fields_ = [
        ("seq", ctypes.c_uint64),
        ("ts", ctypes.c_uint64),
        ("pid", ctypes.c_uint32),
        ("cpu", ctypes.c_uint32),
        ("comm", ctypes.c_char * 16),
        ("args", ctypes.c_uint64 * 4),
    ]


assert ctypes.sizeof(Event) == 72


def load_events(ring_size: int | None = None, ring2_size: int | None = None) -> pyprobe.BpfObject:
    """events.bpf.o loaded, optionally with other ring sizes (bytes, a power of two >= 4096)."""
    obj = pyprobe.open(test_object("events"))
    if ring_size is not None:
        obj.maps["events"].max_entries = ring_size
    if ring2_size is not None:
        obj.maps["events2"].max_entries = ring2_size
    return obj.load()


def emit(obj: pyprobe.BpfObject, count: int, start: int = 0, flags: int = 0, threshold: int = 0) -> None:
    """Runs the SEC("syscall") producer: `count` events with sequence numbers from `start`."""
    obj.programs["emit"].test_run(ctx=struct.pack("<QQQQ", count, start, flags, threshold))


def perf_emit(obj: pyprobe.BpfObject, count: int, start: int = 0) -> None:
    """Runs the raw_tp producer: `count` samples into perf_events, sequence numbers from `start`."""
    obj.programs["perf_emit"].test_run(ctx=struct.pack("<QQ", count, start))


def stats(obj: pyprobe.BpfObject) -> tuple[int, int]:
    """(produced, dropped) counted by the BPF side."""
    raw = obj.maps["stats"].lookup_bytes(b"\0\0\0\0")
    assert raw is not None
    produced, dropped = struct.unpack("<QQ", raw)
    return int(produced), int(dropped)


def seq_of(event: Any) -> int:
    """The sequence number of a decoded or raw event."""
    if isinstance(event, bytes):
        return int(struct.unpack_from("<Q", event)[0])
    return int(event.seq)
