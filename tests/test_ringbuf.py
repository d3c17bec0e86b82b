"""RingBuffer against the real kernel: the four ways to consume, decoding, errors, no-wakeup mode, overload."""

from __future__ import annotations

import asyncio
import ctypes
import gc
import itertools
import os
import select
import signal
import threading
import time
import traceback
from typing import Any

import pytest

import pyprobe
from conftest import test_object
from events_helpers import (
    EMIT_DISCARD_ODD,
    EMIT_NO_WAKEUP,
    EMIT_SECOND,
    EMIT_SMALL,
    Event,
    emit,
    load_events,
    seq_of,
    stats,
)
from pyprobe.batch import Batch

pytestmark = pytest.mark.bpf


@pytest.fixture
def obj() -> Any:
    with load_events() as loaded:
        yield loaded


def test_poll_calls_the_callback_with_decoded_events_in_order(obj: pyprobe.BpfObject) -> None:
    got: list[Event] = []
    with pyprobe.RingBuffer(obj.maps["events"], got.append, event_type=Event) as rb:
        emit(obj, 100, start=1000)
        assert rb.poll(timeout=1.0) == 100
    assert [e.seq for e in got] == list(range(1000, 1100))
    first = got[0]
    assert isinstance(first, Event)
    assert first.pid == os.getpid()
    assert first.comm == b"ev"
    assert list(first.args) == [2000, 3000, (~1000) & (2**64 - 1), 72]


def test_poll_times_out_with_zero_and_consume_does_not_wait(obj: pyprobe.BpfObject) -> None:
    got: list[bytes] = []
    with pyprobe.RingBuffer(obj.maps["events"], got.append) as rb:
        assert rb.poll(timeout=0.05) == 0
        assert rb.consume() == 0
        emit(obj, 5)
        assert rb.consume() == 5
    assert all(isinstance(e, bytes) and len(e) == 72 for e in got)
    assert [seq_of(e) for e in got] == [0, 1, 2, 3, 4]


def test_events_iterator_yields_then_ends_after_the_timeout(obj: pyprobe.BpfObject) -> None:
    with pyprobe.RingBuffer(obj.maps["events"], event_type=Event) as rb:
        emit(obj, 30, start=7)
        seqs = [e.seq for e in rb.events(timeout=0.2)]
    assert seqs == list(range(7, 37))


def test_events_left_in_a_broken_loop_come_first_next_time(obj: pyprobe.BpfObject) -> None:
    with pyprobe.RingBuffer(obj.maps["events"], event_type=Event) as rb:
        emit(obj, 20)
        it = rb.events(timeout=0.2)
        first = [next(it).seq for _ in range(5)]
        it.close()
        assert rb.pending == 15
        emit(obj, 5, start=20)
        rest = [e.seq for e in rb.events(timeout=0.2)]
    assert first + rest == list(range(25))


def test_aevents_runs_in_asyncio_without_blocking_the_loop(obj: pyprobe.BpfObject) -> None:
    async def main() -> tuple[list[int], int]:
        ticks = 0

        async def ticker() -> None:
            nonlocal ticks
            while True:
                await asyncio.sleep(0.01)
                ticks += 1

        tick_task = asyncio.create_task(ticker())
        loop = asyncio.get_running_loop()
        loop.call_later(0.05, emit, obj, 10, 0)
        loop.call_later(0.15, emit, obj, 10, 10)
        seqs = []
        with pyprobe.RingBuffer(obj.maps["events"], event_type=Event) as rb:
            async for event in rb.aevents(timeout=0.5):
                seqs.append(event.seq)
        tick_task.cancel()
        return seqs, ticks

    seqs, ticks = asyncio.run(main())
    assert seqs == list(range(20))
    assert ticks > 10  # the loop kept running while aevents waited


def test_read_batch_gives_raw_offsets_iteration_and_numpy(obj: pyprobe.BpfObject) -> None:
    np = pytest.importorskip("numpy")
    with pyprobe.RingBuffer(obj.maps["events"], event_type=Event) as rb:
        assert len(rb.read_batch(timeout=0)) == 0
        emit(obj, 1000, start=5)
        batch = rb.read_batch(max_events=600, timeout=1.0)
        assert isinstance(batch, Batch)
        assert len(batch) == 600
        assert batch.map == "events"
        assert len(batch.raw) == 600 * 72
        assert list(batch.offsets[:3]) == [0, 72, 144]
        assert batch.offsets[600] == len(batch.raw)
        assert [e.seq for e in batch] == list(range(5, 605))
        assert batch[-1].seq == 604
        arr = batch.to_numpy()
        assert arr.dtype.itemsize == 72
        assert arr["seq"].tolist() == list(range(5, 605))
        assert (arr["pid"] == os.getpid()).all()
        assert np.array_equal(arr["args"][:, 3], np.full(600, 72))
        rest = rb.read_batch(timeout=0)
        assert [e.seq for e in rest] == list(range(605, 1005))
        sub = rest[10:20]
        assert len(sub) == 10 and list(sub.offsets) == [72 * i for i in range(11)]
        assert sub.raw == rest.raw[720:1440]
        assert sub.to_numpy()["seq"].tolist() == list(range(615, 625))


def test_batches_kept_alive_keep_their_events_while_later_reads_reuse_memory(obj: pyprobe.BpfObject) -> None:
    np = pytest.importorskip("numpy")
    with pyprobe.RingBuffer(obj.maps["events"], event_type=Event) as rb:
        kept: list[Any] = []
        for round_ in range(12):
            emit(obj, 500, start=round_ * 500)
            batch = rb.read_batch(timeout=1.0)
            assert len(batch) == 500
            # What holds a batch's memory: the batch, a slice of it, a numpy view of it.
            kept.append((round_, [batch, batch[100:200], batch.to_numpy()][round_ % 3]))
            del batch
            gc.collect()  # batches no one holds are gone: their memory is reused by the next read
        for round_, held in kept:
            seqs = held["seq"].tolist() if isinstance(held, np.ndarray) else [e.seq for e in held]
            first = round_ * 500 + (100 if round_ % 3 == 1 else 0)
            assert seqs == list(range(first, first + len(seqs)))
        view = kept[2][1]
        assert not view.flags.writeable
        raw = kept[0][1].raw
        assert isinstance(raw, bytes) and len(raw) == 500 * 72


def test_rings_of_one_reader_share_its_copy_buffers_and_held_batches_keep_their_events(
    obj: pyprobe.BpfObject,
) -> None:
    with pyprobe.RingBuffer(obj.maps["events"], event_type=Event) as rb:
        rb.add(obj.maps["events2"])
        kept: list[tuple[int, Any]] = []
        for round_ in range(8):
            second = round_ % 2 == 1
            emit(obj, 300, start=round_ * 300, flags=EMIT_SECOND if second else 0)
            batch = rb.read_batch(timeout=1.0)
            assert len(batch) == 300 and batch.map == ("events2" if second else "events")
            if round_ in (2, 3):  # one held batch of each ring: the next reads must copy elsewhere
                kept.append((round_, batch))
            seqs = [e.seq if isinstance(e, Event) else seq_of(e) for e in batch]
            assert seqs == list(range(round_ * 300, round_ * 300 + 300))
            del batch
            gc.collect()
        for round_, held in kept:
            seqs = [e.seq if isinstance(e, Event) else seq_of(e) for e in held]
            assert seqs == list(range(round_ * 300, round_ * 300 + 300))
        pools = {id(ring.pool) for ring in rb._rings}
        assert len(pools) == 1 and 1 <= len(rb._rings[0].pool) <= 4


def test_records_of_different_sizes_and_discarded_records(obj: pyprobe.BpfObject) -> None:
    with pyprobe.RingBuffer(obj.maps["events"]) as rb:
        emit(obj, 10, flags=EMIT_SMALL)
        batch = rb.read_batch(timeout=1.0)
        assert [len(e) for e in batch] == [72, 8] * 5
        assert [seq_of(e) for e in batch] == list(range(10))
        with pytest.raises(ValueError, match="differ in size"):
            batch.to_numpy()
        emit(obj, 10, start=100, flags=EMIT_DISCARD_ODD)
        assert [seq_of(e) for e in rb.events(timeout=0.1)] == [100, 102, 104, 106, 108]
    with pyprobe.RingBuffer(obj.maps["events"], event_type=Event) as rb:
        emit(obj, 4, flags=EMIT_SMALL)
        events = list(rb.read_batch(timeout=1.0))
        # the 8-byte records decode zero-padded: seq set, everything else 0
        assert [(e.seq, e.args[3]) for e in events] == [(0, 72), (1, 0), (2, 72), (3, 0)]


def test_one_reader_over_two_rings_with_their_own_callbacks(obj: pyprobe.BpfObject) -> None:
    first: list[int] = []
    second: list[int] = []
    with pyprobe.RingBuffer(obj.maps["events"], lambda e: first.append(e.seq), event_type=Event) as rb:
        rb.add(obj.maps["events2"], lambda e: second.append(seq_of(e)))
        assert rb.maps == ["events", "events2"]
        emit(obj, 10, start=0)
        emit(obj, 7, start=50, flags=EMIT_SECOND)
        handled = 0
        while handled < 17:
            handled += rb.poll(timeout=1.0)
    assert first == list(range(10))
    assert second == list(range(50, 57))


def test_a_raising_callback_stops_the_poll_and_loses_no_event(obj: pyprobe.BpfObject) -> None:
    seen: list[int] = []

    def handler(event: Event) -> None:
        seen.append(event.seq)
        if event.seq == 10:
            raise RuntimeError("bad event 10")

    with pyprobe.RingBuffer(obj.maps["events"], handler, event_type=Event) as rb:
        emit(obj, 50)
        with pytest.raises(RuntimeError, match="bad event 10") as info:
            rb.poll(timeout=1.0)
        frames = [f.name for f in traceback.extract_tb(info.value.__traceback__)]
        assert frames[0] == "test_a_raising_callback_stops_the_poll_and_loses_no_event"
        assert frames[-1] == "handler"
        assert seen == list(range(11))
        assert rb.pending == 39
        assert rb.poll(timeout=1.0) == 39
    assert seen == list(range(50))


@pytest.mark.parametrize("bad", [0, 255, 256, 700, 1999])
def test_a_callback_raising_anywhere_in_a_batch_keeps_exactly_the_events_after_it(
    obj: pyprobe.BpfObject, bad: int
) -> None:
    # Events are made a run at a time (batch.PIECE): a raise at a run's
    # first or last event, or in a later run, leaves exactly the rest pending.
    seen: list[int] = []

    def handler(event: Event) -> None:
        seen.append(event.seq)
        if event.seq == bad and len(seen) == bad + 1:
            raise RuntimeError(f"bad event {bad}")

    with pyprobe.RingBuffer(obj.maps["events"], handler, event_type=Event) as rb:
        emit(obj, 2000)
        with pytest.raises(RuntimeError, match=f"bad event {bad}"):
            rb.consume()
        assert seen == list(range(bad + 1))
        assert rb.pending == 2000 - bad - 1
        assert rb.consume() == 2000 - bad - 1
        assert rb.pending == 0
    assert seen == list(range(2000))


def test_events_kept_from_callbacks_stay_valid_while_later_polls_run(obj: pyprobe.BpfObject) -> None:
    kept: list[Event] = []
    with pyprobe.RingBuffer(obj.maps["events"], kept.append, event_type=Event) as rb:
        for round_ in range(10):
            emit(obj, 1000, start=round_ * 1000)
            assert rb.consume() == 1000
            gc.collect()
        assert all(type(e) is Event for e in kept)
        assert [e.seq for e in kept] == list(range(10_000))
        kept[5].seq = 77  # each event is its own object: changing one changes no other
        assert [e.seq for e in kept[4:7]] == [4, 77, 6]


def test_events_broken_off_past_the_first_run_come_first_next_time(obj: pyprobe.BpfObject) -> None:
    with pyprobe.RingBuffer(obj.maps["events"], event_type=Event) as rb:
        emit(obj, 1000)
        it = rb.events(timeout=0.2)
        first = [next(it).seq for _ in range(600)]
        it.close()
        assert rb.pending == 400
        rest = [e.seq for e in rb.events(timeout=0.2)]
    assert first + rest == list(range(1000))


def test_poll_needs_a_callback(obj: pyprobe.BpfObject) -> None:
    with pyprobe.RingBuffer(obj.maps["events"]) as rb:
        emit(obj, 3)
        with pytest.raises(TypeError, match="map 'events' has no callback"):
            rb.poll(timeout=0)
        assert len(rb.read_batch(timeout=1.0)) == 3  # nothing was taken


def test_no_wakeup_submits_are_drained_on_the_reader_timer(obj: pyprobe.BpfObject) -> None:
    with pyprobe.RingBuffer(obj.maps["events"], event_type=Event, drain_interval=0.02) as rb:
        emit(obj, 10, flags=EMIT_NO_WAKEUP, threshold=1 << 20)
        # no wakeup came: the epoll fd is not readable, yet the events are there
        assert select.select([rb.fileno()], [], [], 0.05)[0] == []
        assert [e.seq for e in rb.read_batch(timeout=1.0)] == list(range(10))
        # past the threshold the helper wakes the reader
        emit(obj, 10, start=10, flags=EMIT_NO_WAKEUP, threshold=72 * 5)
        assert select.select([rb.fileno()], [], [], 1.0)[0] == [rb.fileno()]
        assert [e.seq for e in rb.read_batch(timeout=1.0)] == list(range(10, 20))


def test_a_reader_that_caught_up_waits_for_a_wakeup_or_its_timer_not_for_each_record(
    obj: pyprobe.BpfObject,
) -> None:
    seen: list[int] = []
    with pyprobe.RingBuffer(obj.maps["events"], seen.append, event_type=Event, drain_interval=60) as rb:
        emit(obj, 10, flags=EMIT_NO_WAKEUP)
        assert [e.seq for e in rb.read_batch(timeout=1.0)] == list(range(10))  # caught up
        # Records submitted without a wakeup stay in the ring for the wait:
        # the reader takes them at the wait's deadline (drain_interval is far).
        emit(obj, 10, start=10, flags=EMIT_NO_WAKEUP)
        start = time.monotonic()
        assert [e.seq for e in rb.read_batch(timeout=0.2)] == list(range(10, 20))
        assert time.monotonic() - start >= 0.15
        # consume() takes what is there at once
        emit(obj, 10, start=20, flags=EMIT_NO_WAKEUP)
        assert rb.consume() == 10
        assert [e.seq for e in seen] == list(range(20, 30))
        # A record submitted with a wakeup into the emptied ring ends the wait
        # at once: the 30 s timeout bounds a reader that would miss the
        # wakeup, not the test.
        emit(obj, 1, start=30)
        start = time.monotonic()
        assert [e.seq for e in rb.read_batch(timeout=30)] == [30]
        assert time.monotonic() - start < 10


def test_overload_accounting_is_exact() -> None:
    """A 16 KiB ring flooded while Python reads slowly: produced == consumed + dropped."""
    with load_events(ring_size=16384) as obj:
        consumed: list[int] = []
        done = threading.Event()

        def produce() -> None:
            for run in range(40):
                emit(obj, 1000, start=run * 1000)
            done.set()

        producer = threading.Thread(target=produce)
        with pyprobe.RingBuffer(obj.maps["events"], lambda e: consumed.append(e.seq), event_type=Event) as rb:
            producer.start()
            while not done.is_set():
                rb.poll(timeout=0.01)
                time.sleep(0.002)
            producer.join()
            rb.consume()
        produced, dropped = stats(obj)
    assert produced == 40_000
    assert dropped > 0, "the ring never overflowed: the test did not test overload"
    assert len(consumed) > 0
    assert produced == len(consumed) + dropped
    assert all(a < b for a, b in itertools.pairwise(consumed))


def _interrupt_after(delay: float) -> threading.Timer:
    main = threading.main_thread().ident
    assert main is not None
    timer = threading.Timer(delay, signal.pthread_kill, (main, signal.SIGINT))
    timer.start()
    return timer


@pytest.mark.parametrize("how", ["poll", "events", "read_batch"])
def test_ctrl_c_interrupts_a_blocking_wait(obj: pyprobe.BpfObject, how: str) -> None:
    if threading.current_thread() is not threading.main_thread():
        pytest.skip("signals reach the main thread only")
    with pyprobe.RingBuffer(obj.maps["events"], lambda e: None) as rb:
        timer = _interrupt_after(0.2)
        start = time.monotonic()
        with pytest.raises(KeyboardInterrupt):
            if how == "poll":
                rb.poll()
            elif how == "events":
                list(rb.events())
            else:
                rb.read_batch()
        timer.join()
        assert time.monotonic() - start < 5  # it returned at all: the wait was interrupted


def test_bad_maps_and_arguments_raise_clear_errors(obj: pyprobe.BpfObject) -> None:
    with pytest.raises(TypeError, match="map 'stats' is a array map, not a ringbuf map"):
        pyprobe.RingBuffer(obj.maps["stats"])
    with pytest.raises(TypeError, match="takes a pyprobe map"):
        pyprobe.RingBuffer("events")
    with pytest.raises(TypeError, match="callback of map 'events' must be callable"):
        pyprobe.RingBuffer(obj.maps["events"], 42)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="event_type of map 'events' must be"):
        pyprobe.RingBuffer(obj.maps["events"], event_type=3.5)
    with pytest.raises(ValueError, match="drain_interval"):
        pyprobe.RingBuffer(obj.maps["events"], drain_interval=0)
    with pytest.raises(TypeError, match="but no map"):
        pyprobe.RingBuffer(callback=print)
    with pyprobe.RingBuffer(obj.maps["events"]) as rb:
        with pytest.raises(ValueError, match="max_events"):
            rb.read_batch(max_events=0)
        with pytest.raises(ValueError, match="poll\\(\\) timeout"):
            rb.poll(timeout=-1)
        with pytest.raises(ValueError, match=r"poll\(\) timeout .* not nan"):
            rb.poll(timeout=float("nan"))
    spec = pyprobe.open(test_object("events"))
    try:
        with pytest.raises(pyprobe.MapError, match="load its object first"):
            pyprobe.RingBuffer(spec.maps["events"])
    finally:
        spec.close()


def test_event_type_by_btf_name(obj: pyprobe.BpfObject) -> None:
    btf = getattr(obj, "btf", None)
    if getattr(btf, "type_by_name", None) is None:
        with pytest.raises(TypeError, match="names a BTF type"):
            pyprobe.RingBuffer(obj.maps["events"], event_type="event")
        return
    with pyprobe.RingBuffer(obj.maps["events"], event_type="event") as rb:
        emit(obj, 3, start=9)
        events = list(rb.read_batch(timeout=1.0))
    assert [e.seq for e in events] == [9, 10, 11]
    assert ctypes.sizeof(type(events[0])) == 72


def test_event_type_by_btf_name_to_numpy(obj: pyprobe.BpfObject) -> None:
    pytest.importorskip("pyprobe.btf")
    pytest.importorskip("numpy")
    with pyprobe.RingBuffer(obj.maps["events"], event_type="event") as rb:
        emit(obj, 4, start=3)
        arr = rb.read_batch(timeout=1.0).to_numpy()
    assert arr["seq"].tolist() == [3, 4, 5, 6]


def test_map_reader_method_when_typed_maps_offer_it(obj: pyprobe.BpfObject) -> None:
    reader = getattr(obj.maps["events"], "reader", None)
    if reader is None:
        pytest.skip("this Map has no reader() yet (typed maps)")
    got: list[Any] = []
    with reader(got.append, event_type=Event) as rb:
        assert isinstance(rb, pyprobe.RingBuffer)
        emit(obj, 2)
        rb.poll(timeout=1.0)
    assert [e.seq for e in got] == [0, 1]


def test_close_frees_everything_and_the_reader_outlives_its_object(no_fd_leak: None) -> None:
    obj = load_events()
    rb = pyprobe.RingBuffer(obj.maps["events"], event_type=Event)
    emit(obj, 3)
    obj.close()
    assert [e.seq for e in rb.read_batch(timeout=1.0)] == [0, 1, 2]
    rb.close()
    rb.close()
    assert rb.closed
    with pytest.raises(pyprobe.ClosedError):
        rb.poll(timeout=0)
    with pytest.raises(pyprobe.ClosedError):
        rb.fileno()


def test_unclosed_reader_is_released_with_a_warning(no_fd_leak: None) -> None:
    with load_events() as obj:
        rb = pyprobe.RingBuffer(obj.maps["events"])
        with pytest.warns(ResourceWarning, match="unclosed RingBuffer"):
            del rb
            gc.collect()


def test_batch_without_events_and_slices() -> None:
    empty = Batch.empty(Event, "m")
    assert len(empty) == 0 and list(empty) == [] and empty.raw == b""
    raw = bytes(range(12))
    offsets = memoryview(b"".join(o.to_bytes(4, "little") for o in (0, 4, 12))).cast("I")
    batch = Batch(raw, offsets, 0, None, "m")
    assert list(batch) == [raw[:4], raw[4:]]
    assert batch[1] == raw[4:]
    with pytest.raises(IndexError):
        batch[2]
    with pytest.raises(ValueError, match="no step"):
        batch[::2]
    assert batch[1:].raw == raw[4:] and list(batch[1:].offsets) == [0, 8]
    assert "2 bytes events" in repr(batch)


def _blocked_reader(read: Any) -> tuple[threading.Thread, list[BaseException], threading.Event]:
    """A thread running ``read()`` (a blocking read), what it raised, and an event set once it started."""
    raised: list[BaseException] = []
    started = threading.Event()

    def run() -> None:
        started.set()
        try:
            read()
        except BaseException as exc:
            raised.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    started.wait()
    time.sleep(0.05)  # into the wait
    return thread, raised, started


def test_a_second_concurrent_reader_thread_is_refused(obj: pyprobe.BpfObject) -> None:
    got: list[Any] = []
    with pyprobe.RingBuffer(obj.maps["events"], got.append, event_type=Event) as rb:
        thread, raised, _ = _blocked_reader(lambda: rb.poll(timeout=1.0))
        for read in (
            lambda: rb.poll(timeout=0),
            rb.consume,
            lambda: rb.read_batch(timeout=0),
            lambda: next(rb.events(timeout=0)),
        ):
            with pytest.raises(pyprobe.ReaderBusyError, match="another thread is reading") as info:
                read()
            assert "RingBuffer" in str(info.value) and isinstance(info.value, RuntimeError)
        emit(obj, 3)
        thread.join(2)
        assert not raised
        # The reading thread took every event once; now this thread may read.
        assert [e.seq for e in got] == [0, 1, 2]
        emit(obj, 1, start=3)
        assert rb.poll(timeout=1.0) == 1 and got[-1].seq == 3


def test_a_callback_may_read_its_own_reader_again(obj: pyprobe.BpfObject) -> None:
    seen: list[int] = []
    with pyprobe.RingBuffer[Any]() as rb:
        rb_ref = rb

        def callback(event: Any) -> None:
            seen.append(event.seq)
            if event.seq == 0:
                rb_ref.consume()  # the same thread: allowed

        rb.add(obj.maps["events"], callback, event_type=Event)
        emit(obj, 3)
        rb.poll(timeout=1.0)
    assert sorted(seen) == [0, 1, 2]


def test_close_from_another_thread_wakes_a_blocked_poll(obj: pyprobe.BpfObject) -> None:
    rb = pyprobe.RingBuffer(obj.maps["events"], lambda e: None)
    thread, raised, _ = _blocked_reader(lambda: rb.poll(timeout=30))
    start = time.monotonic()
    rb.close()
    thread.join(5)
    took = time.monotonic() - start
    assert not thread.is_alive()
    assert len(raised) == 1 and isinstance(raised[0], pyprobe.ClosedError), raised
    assert took < 0.05, f"close() took {took:.3f} s to end the wait"
    assert rb.closed
