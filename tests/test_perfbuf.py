"""PerfBuffer against the real kernel: consuming, lost samples and their accounting, wakeup sampling."""

from __future__ import annotations

import asyncio
import itertools
import os
import select
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

import pyprobe
from conftest import test_object
from events_helpers import Event, load_events, perf_emit, seq_of, stats

pytestmark = pytest.mark.bpf


@pytest.fixture
def obj() -> Iterator[pyprobe.BpfObject]:
    with load_events() as loaded:
        yield loaded


@pytest.fixture
def one_cpu() -> Iterator[int]:
    """Pins the test to one CPU, so every BPF_PROG_RUN writes into the same per-CPU buffer."""
    before = os.sched_getaffinity(0)
    cpu = min(before)
    os.sched_setaffinity(0, {cpu})
    yield cpu
    os.sched_setaffinity(0, before)


def test_poll_calls_the_callback_with_decoded_samples(obj: pyprobe.BpfObject, one_cpu: int) -> None:
    got: list[Event] = []
    with pyprobe.PerfBuffer(obj.maps["perf_events"], got.append, event_type=Event) as pb:
        perf_emit(obj, 50, start=100)
        handled = 0
        while handled < 50:
            handled += pb.poll(timeout=1.0)
    assert [e.seq for e in got] == list(range(100, 150))
    assert all(e.cpu == one_cpu and e.pid == os.getpid() for e in got)
    assert pb.lost_count == 0


def test_samples_read_as_bytes_are_padded(obj: pyprobe.BpfObject, one_cpu: int) -> None:
    with pyprobe.PerfBuffer(obj.maps["perf_events"], event_type=bytes) as pb:
        perf_emit(obj, 3)
        events = list(pb.events(timeout=0.2))
    # perf rounds a raw sample up so that its 4-byte size plus the data is a multiple of 8
    assert [len(e) for e in events] == [76, 76, 76]
    assert [seq_of(e) for e in events] == [0, 1, 2]


def test_read_batch_and_numpy(obj: pyprobe.BpfObject, one_cpu: int) -> None:
    pytest.importorskip("numpy")
    with pyprobe.PerfBuffer(obj.maps["perf_events"], event_type=Event, pages=16) as pb:
        perf_emit(obj, 100, start=1)
        batch = pb.read_batch(max_events=60, timeout=1.0)
        assert len(batch) == 60 and batch.map == "perf_events"
        assert batch.to_numpy()["seq"].tolist() == list(range(1, 61))
        assert len(batch.raw) == 60 * 72
        rest = pb.read_batch(timeout=1.0)
        assert [e.seq for e in rest] == list(range(61, 101))


def test_aevents(obj: pyprobe.BpfObject, one_cpu: int) -> None:
    async def main() -> list[int]:
        loop = asyncio.get_running_loop()
        loop.call_later(0.05, perf_emit, obj, 5, 0)
        with pyprobe.PerfBuffer(obj.maps["perf_events"], event_type=Event) as pb:
            return [e.seq async for e in pb.aevents(timeout=0.3)]

    assert asyncio.run(main()) == [0, 1, 2, 3, 4]


def test_overload_lost_counts_are_exact(obj: pyprobe.BpfObject, one_cpu: int) -> None:
    """One-page buffers flooded: produced == consumed + dropped, and the kernel reports every drop as lost."""
    consumed: list[int] = []
    lost_calls: list[int] = []
    with pyprobe.PerfBuffer(
        obj.maps["perf_events"], lambda e: consumed.append(e.seq), lost=lost_calls.append, pages=1, event_type=Event
    ) as pb:
        for run in range(20):
            perf_emit(obj, 500, start=run * 500)
            pb.consume()
        # the kernel writes a lost record before the next sample that fits: one more sample flushes it
        perf_emit(obj, 1, start=10_000)
        pb.consume()
        produced, dropped = stats(obj)
        assert produced == 10_001
        assert dropped > 0, "the buffer never overflowed: the test did not test overload"
        assert produced == len(consumed) + dropped
        assert pb.lost_count == dropped
        assert sum(lost_calls) == dropped
    assert all(a < b for a, b in itertools.pairwise(consumed))


def test_wakeup_sampling_defers_wakeups_and_the_timer_drains(obj: pyprobe.BpfObject, one_cpu: int) -> None:
    with pyprobe.PerfBuffer(obj.maps["perf_events"], event_type=Event, wakeup_events=1000, drain_interval=0.02) as pb:
        assert pb.wakeup_events == 1000
        perf_emit(obj, 10)
        assert select.select([pb.fileno()], [], [], 0.05)[0] == []
        assert [e.seq for e in pb.read_batch(timeout=1.0)] == list(range(10))
    with pyprobe.PerfBuffer(obj.maps["perf_events"], event_type=Event) as pb:
        perf_emit(obj, 1)
        assert select.select([pb.fileno()], [], [], 1.0)[0] == [pb.fileno()]
        assert [e.seq for e in pb.read_batch(timeout=1.0)] == [0]


def test_a_raising_lost_callback_keeps_the_samples(obj: pyprobe.BpfObject, one_cpu: int) -> None:
    def lost(count: int) -> None:
        raise RuntimeError(f"lost {count}")

    got: list[Any] = []
    with pyprobe.PerfBuffer(obj.maps["perf_events"], got.append, lost=lost, pages=1, event_type=Event) as pb:
        perf_emit(obj, 500)
        pb.consume()
        n_first = len(got)
        perf_emit(obj, 1, start=500)
        with pytest.raises(RuntimeError, match="lost"):
            pb.consume()
        assert pb.pending == 1
        assert pb.consume() == 1
    assert got[-1].seq == 500 and len(got) == n_first + 1


def test_bad_maps_and_arguments_raise_clear_errors(obj: pyprobe.BpfObject) -> None:
    with pytest.raises(TypeError, match="map 'events' is a ringbuf map, not a perf_event_array map"):
        pyprobe.PerfBuffer(obj.maps["events"])
    with pytest.raises(ValueError, match="power of two"):
        pyprobe.PerfBuffer(obj.maps["perf_events"], pages=3)
    with pytest.raises(ValueError, match="wakeup_events"):
        pyprobe.PerfBuffer(obj.maps["perf_events"], wakeup_events=0)
    with pytest.raises(TypeError, match="lost callback of map 'perf_events' must be callable"):
        pyprobe.PerfBuffer(obj.maps["perf_events"], lost=1)  # type: ignore[arg-type]
    with pyprobe.PerfBuffer(obj.maps["perf_events"]) as pb, pytest.raises(TypeError, match="has no callback"):
        pb.poll(timeout=0)
    spec = pyprobe.open(test_object("events"))
    try:
        with pytest.raises(pyprobe.MapError, match="load its object first"):
            pyprobe.PerfBuffer(spec.maps["perf_events"])
    finally:
        spec.close()


def test_close_frees_the_perf_events(no_fd_leak: None) -> None:
    with load_events() as obj:
        pb = pyprobe.PerfBuffer(obj.maps["perf_events"])
        assert pb.fileno() >= 0
        pb.close()
        pb.close()
        with pytest.raises(pyprobe.ClosedError):
            pb.read_batch(timeout=0)


def test_a_second_concurrent_reader_thread_is_refused_and_close_wakes_the_first(obj: pyprobe.BpfObject) -> None:
    pb = pyprobe.PerfBuffer(obj.maps["perf_events"], lambda e: None)
    raised: list[BaseException] = []
    started = threading.Event()

    def run() -> None:
        started.set()
        try:
            pb.poll(timeout=30)
        except BaseException as exc:
            raised.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    started.wait()
    time.sleep(0.05)
    with pytest.raises(pyprobe.ReaderBusyError, match="PerfBuffer 'perf_events'"):
        pb.read_batch(timeout=0)
    start = time.monotonic()
    pb.close()
    thread.join(5)
    assert not thread.is_alive() and time.monotonic() - start < 0.05
    assert len(raised) == 1 and isinstance(raised[0], pyprobe.ClosedError), raised
