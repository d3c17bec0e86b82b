"""Ring buffer and perf buffer consumers: events/s against a C libbpf consumer measured in the same run.

Two measurements.

Live: a producer process (bench/c/ringbuf.c) runs the SEC("syscall") program
`emit` of tests/bpf/events.bpf.o with BPF_PROG_RUN in a loop, 72-byte events
written in a bpf_loop, for a fixed time; the consumer under test reads them
meanwhile. The figure is events consumed per second of production; the
events a slow consumer misses are counted by the BPF side (reserve failures)
and shown as dropped. On a 2-core machine producer and consumer share the
CPUs with everything else, so this figure is the producer's speed as much as
the consumer's: the consumers' runs are interleaved (so drift hits them
alike), and each line also gives the consumer's own CPU time per event.
When the kernel wakes the reader on each submit, it does so only for a
record submitted while the reader has caught up: a consumer that lags
spares the producer those wakeups (about 1.4 us each) and so can show a
higher figure than a faster one.

Capacity: the producer alone fills a 64 MiB ring (no wakeups), then the
consumer drains it; the figure is events/s of the drain alone, independent
of the producer. Then growth: 8 rings (the same object loaded 8 times, each
ring filled by its own program with an eighth of the events) drained by one
reader holding all 8 maps; "x one ring" is its rate against the single ring.

Consumers: C libbpf ring_buffer__poll() (ring_buffer__consume() for the
capacity), the pyprobe callback path (events decoded to a ctypes struct, one
field read each), and read_batch() with and without .to_numpy(). The perf
buffer (raw_tp program `perf_emit`) likewise, live only, including wakeup
sampling (wakeup_events).

Run as root after ./dev build: .venv/bin/python bench/bench_ringbuf.py [SECONDS]
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import os
import resource
import statistics
import struct
import subprocess
import sys
import time
from collections.abc import Callable

from _common import helper, test_object

import pyprobe

SECONDS = float(sys.argv[1]) if len(sys.argv) > 1 else 1.5
REPEAT = 5  # runs per measurement, interleaved between consumers; the median is shown
PER_RUN = 4096  # events per BPF_PROG_RUN
RING = 4 << 20  # ring buffer bytes
PAGES = 256  # perf buffer pages per CPU
NO_WAKEUP = 1  # EMIT_NO_WAKEUP of tests/bpf/events.h
CAPACITY_RING = 64 << 20  # ring of the capacity measurement
CAPACITY_EVENTS = 800_000  # events it is filled with (80 bytes each with the header: fits)
RINGS = 8  # rings drained together in the growth measurement


class Event(ctypes.Structure):
    _fields_ = [
        ("seq", ctypes.c_uint64),
        ("ts", ctypes.c_uint64),
        ("pid", ctypes.c_uint32),
        ("cpu", ctypes.c_uint32),
        ("comm", ctypes.c_char * 16),
        ("args", ctypes.c_uint64 * 4),
    ]


def stats(obj: pyprobe.BpfObject) -> tuple[int, int]:
    raw = obj.maps["stats"].lookup_bytes(b"\0" * 4)
    assert raw is not None
    produced, dropped = struct.unpack("<QQ", raw)
    return int(produced), int(dropped)


def reset(obj: pyprobe.BpfObject) -> None:
    obj.maps["stats"].update_bytes(b"\0" * 4, b"\0" * 16)


MODE = {"flags": 0, "threshold": 0}


def start_producer(obj: pyprobe.BpfObject, perf: bool) -> subprocess.Popen[str]:
    prog = obj.programs["perf_emit" if perf else "emit"]
    args = ["perf-produce", str(prog.fd), str(SECONDS), str(PER_RUN)] if perf else [
        "produce", str(prog.fd), str(SECONDS), str(PER_RUN), str(MODE["flags"]), str(MODE["threshold"])
    ]  # fmt: skip
    return subprocess.Popen([str(helper("ringbuf")), *args], pass_fds=[prog.fd], stdout=subprocess.PIPE, text=True)


def producer_seconds(proc: subprocess.Popen[str]) -> float:
    out, _ = proc.communicate()
    if proc.returncode:
        raise SystemExit(f"producer failed ({proc.returncode})")
    return float(out.split()[1])


Run = Callable[[], tuple[int, float, float]]  # -> events consumed, seconds of production, consumer CPU seconds


def run_c(obj: pyprobe.BpfObject, perf: bool) -> tuple[int, float, float]:
    reset(obj)
    bmap = obj.maps["perf_events" if perf else "events"]
    args = ["perf-consume", str(bmap.fd), str(SECONDS + 0.3), str(PAGES)] if perf else [
        "consume", str(bmap.fd), str(SECONDS + 0.3)
    ]  # fmt: skip
    consumer = subprocess.Popen([str(helper("ringbuf")), *args], pass_fds=[bmap.fd], stdout=subprocess.PIPE, text=True)
    time.sleep(0.1)  # let the consumer set up
    producer = start_producer(obj, perf)
    elapsed = producer_seconds(producer)
    assert consumer.stdout is not None
    out = consumer.stdout.read()
    _, status, usage = os.wait4(consumer.pid, 0)
    consumer.returncode = os.waitstatus_to_exitcode(status)
    if consumer.returncode:
        raise SystemExit(f"C consumer failed ({consumer.returncode})")
    return int(out.split()[0]), elapsed, usage.ru_utime + usage.ru_stime


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def run_py(obj: pyprobe.BpfObject, perf: bool, make: Callable[[], pyprobe.RingBuffer | pyprobe.PerfBuffer],
           step: Callable[[pyprobe.RingBuffer | pyprobe.PerfBuffer], int]) -> tuple[int, float, float]:  # fmt: skip
    reset(obj)
    with make() as reader:
        producer = start_producer(obj, perf)
        cpu = cpu_seconds()
        consumed = 0
        while producer.poll() is None:
            consumed += step(reader)
        elapsed = producer_seconds(producer)
        while n := step(reader):
            consumed += n
        cpu = cpu_seconds() - cpu
    return consumed, elapsed, cpu


def report(obj: pyprobe.BpfObject, runs: list[tuple[str, Run]]) -> None:
    """Runs each measurement REPEAT times, interleaved, the first one (C) being the base of the ratios.

    Prints the median events/s, its range, the share of production consumed,
    the drop rate and the consumer's CPU time per event.
    """
    rates: dict[str, list[float]] = {name: [] for name, _ in runs}
    shares: dict[str, list[float]] = {name: [] for name, _ in runs}
    drops: dict[str, list[float]] = {name: [] for name, _ in runs}
    cpus: dict[str, list[float]] = {name: [] for name, _ in runs}
    for _ in range(REPEAT):
        for name, run in runs:
            consumed, elapsed, cpu = run()
            produced, dropped = stats(obj)
            rates[name].append(consumed / elapsed)
            shares[name].append(consumed / produced if produced else 0.0)
            drops[name].append(dropped / elapsed)
            cpus[name].append(cpu / consumed * 1e9 if consumed else 0.0)
    base = statistics.median(rates[runs[0][0]])
    for name, _ in runs:
        rate = statistics.median(rates[name])
        print(
            f"  {name:<42} {rate / 1e6:6.2f} M events/s ({min(rates[name]) / 1e6:.2f}-{max(rates[name]) / 1e6:.2f})"
            f" {rate / base:5.2f}x C  consumed {statistics.median(shares[name]):6.1%},"
            f" dropped {statistics.median(drops[name]) / 1e6:.2f} M/s,"
            f" consumer CPU {statistics.median(cpus[name]):3.0f} ns/event"
        )


Rates = dict[str, list[float]]  # consumer -> events/s of each round


def drain_rates(rings: list[tuple[pyprobe.Map, pyprobe.Program]], decoded: Callable[[Event], None]) -> Rates:
    """Events/s of draining rings the producers filled beforehand, REPEAT rounds of each consumer, interleaved.

    Each ring's `emit` program fills it with CAPACITY_EVENTS / len(rings)
    events (no wakeups), then one consumer drains every ring: the C libbpf
    ring_buffer (all rings added to one), and one pyprobe RingBuffer over
    all the maps read with read_batch(), read_batch().to_numpy() and
    consume() with a callback; last, the same callback called from a Python
    loop decoding each event with its own from_buffer_copy (the callback
    path's former decoding), for the callback's ratio to it.
    """
    per_ring = CAPACITY_EVENTS // len(rings)
    fill_args = struct.pack("<QQQQ", per_ring, 0, NO_WAKEUP, 0)
    total = per_ring * len(rings)
    rates: Rates = {}
    fds = [ring.fd for ring, _ in rings]

    # The C consumer keeps its mapping of the rings across rounds, as the pyprobe readers do.
    c = subprocess.Popen([str(helper("ringbuf")), "drain", *map(str, fds)], pass_fds=fds,
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)  # fmt: skip
    assert c.stdin is not None and c.stdout is not None

    def drain_c() -> tuple[int, float]:
        assert c.stdin is not None and c.stdout is not None
        c.stdin.write("drain\n")
        c.stdin.flush()
        n, seconds = c.stdout.readline().split()
        return int(n), float(seconds)

    def drain_py(reader: pyprobe.RingBuffer, step: Callable[[pyprobe.RingBuffer], int]) -> tuple[int, float]:
        start = time.perf_counter()
        got = 0
        while n := step(reader):
            got += n
        return got, time.perf_counter() - start

    def batch_len(reader: pyprobe.RingBuffer) -> int:
        return len(reader.read_batch(timeout=0))

    def numpy_len(reader: pyprobe.RingBuffer) -> int:
        arr = reader.read_batch(timeout=0).to_numpy()
        return int(arr["seq"].size)

    def consume(reader: pyprobe.RingBuffer) -> int:
        return reader.consume()

    def per_event(reader: pyprobe.RingBuffer) -> int:
        # How the callback path decoded before events were made a run at a
        # time: one from_buffer_copy (through a partial) per event.
        batch = reader.read_batch(4096, timeout=0)
        decode = functools.partial(Event.from_buffer_copy, batch.raw)
        for position in range(0, len(batch) * ctypes.sizeof(Event), ctypes.sizeof(Event)):
            decoded(decode(position))
        return len(batch)

    with pyprobe.RingBuffer() as batch_reader, pyprobe.RingBuffer() as callback_reader:
        for ring, _ in rings:
            batch_reader.add(ring, event_type=Event)
            callback_reader.add(ring, decoded, event_type=Event)
        runs: list[tuple[str, Callable[[], tuple[int, float]]]] = [
            ("C libbpf ring_buffer__consume", drain_c),
            ("pyprobe read_batch()", lambda: drain_py(batch_reader, batch_len)),
            ("pyprobe read_batch().to_numpy()", lambda: drain_py(batch_reader, numpy_len)),
            ("pyprobe consume() callback, decoded", lambda: drain_py(callback_reader, consume)),
            ("Python loop, from_buffer_copy per event", lambda: drain_py(batch_reader, per_event)),
        ]
        for rep in range(REPEAT + 1):  # the first round maps the rings' pages in: not counted
            for name, run in runs:
                for _, emit in rings:
                    emit.test_run(ctx=fill_args)
                got, seconds = run()
                if got != total:
                    raise SystemExit(f"{name} drained {got} events, not {total}")
                if rep:
                    rates.setdefault(name, []).append(got / seconds)
    c.stdin.close()
    c.wait()
    return rates


def print_rates(rates: Rates, against: Rates | None = None) -> None:
    """Median events/s of each consumer, its range, the ratio to the first (C), and to ``against`` when given."""
    names = list(rates)
    base = statistics.median(rates[names[0]])
    reference = rates.get("Python loop, from_buffer_copy per event")
    for name in names:
        rate = statistics.median(rates[name])
        line = (
            f"  {name:<42} {rate / 1e6:7.2f} M events/s ({min(rates[name]) / 1e6:.2f}-{max(rates[name]) / 1e6:.2f})"
            f"  {rate / base:5.2f}x C"
        )
        if against is not None:
            line += f"  {rate / statistics.median(against[name]):5.2f}x one ring"
        if reference is not None and name == "pyprobe consume() callback, decoded":
            line += f"  {rate / statistics.median(reference):5.2f}x per-event decoding"
        print(line)


def capacity(decoded: Callable[[Event], None]) -> None:
    """Events/s of draining rings filled beforehand: the consumer alone, producers excluded.

    First one ring, then RINGS rings (each map of its own loaded object, each
    filled by its own program) read by one reader, holding the same number
    of events in all: a drain that grows linearly drains them at the same rate.
    """
    print(
        f"consumer capacity: a {CAPACITY_RING >> 20} MiB ring filled with {CAPACITY_EVENTS} events first, then drained"
    )
    spec = pyprobe.open(test_object("events"))
    spec.maps["events"].max_entries = CAPACITY_RING
    with spec.load() as obj:
        one = drain_rates([(obj.maps["events"], obj.programs["emit"])], decoded)
    print_rates(one)
    print(
        f"consumer capacity: {RINGS} rings of {CAPACITY_RING // RINGS >> 20} MiB filled with"
        f" {CAPACITY_EVENTS // RINGS} events each, then drained by one reader"
    )
    with contextlib.ExitStack() as stack:
        rings = []
        for _ in range(RINGS):
            spec = pyprobe.open(test_object("events"))
            spec.maps["events"].max_entries = CAPACITY_RING // RINGS
            obj = stack.enter_context(spec.load())
            rings.append((obj.maps["events"], obj.programs["emit"]))
        many = drain_rates(rings, decoded)
    print_rates(many, one)


def main() -> None:
    seq_sum = [0]

    def decoded(event: Event) -> None:
        seq_sum[0] += event.seq

    spec = pyprobe.open(test_object("events"))
    spec.maps["events"].max_entries = RING
    with spec.load() as obj:
        ring, perf_map = obj.maps["events"], obj.maps["perf_events"]

        def callback_reader() -> pyprobe.RingBuffer:
            return pyprobe.RingBuffer(ring, decoded, event_type=Event)

        def batch_reader() -> pyprobe.RingBuffer:
            return pyprobe.RingBuffer(ring, event_type=Event)

        def poll(reader: pyprobe.RingBuffer | pyprobe.PerfBuffer) -> int:
            return reader.poll(timeout=0.1)

        def read_batch(reader: pyprobe.RingBuffer | pyprobe.PerfBuffer) -> int:
            return len(reader.read_batch(timeout=0.1))

        def to_numpy(reader: pyprobe.RingBuffer | pyprobe.PerfBuffer) -> int:
            arr = reader.read_batch(timeout=0.1).to_numpy()
            if len(arr):
                seq_sum[0] += int(arr["seq"][-1])
            return len(arr)

        print(f"ring buffer, {RING >> 20} MiB, 72-byte events, {PER_RUN} per BPF_PROG_RUN, {SECONDS:g} s each")
        modes = [
            ("bpf_ringbuf_submit(e, 0): the kernel wakes the reader", 0, 0),
            ("pyprobe_ringbuf_submit(): no wakeup below 1 MiB unread", NO_WAKEUP, 1 << 20),
        ]
        for title, flags, threshold in modes:
            MODE.update(flags=flags, threshold=threshold)
            print(f" producer: {title}")
            report(
                obj,
                [
                    ("C libbpf ring_buffer__poll", lambda: run_c(obj, False)),
                    ("pyprobe poll() callback, decoded", lambda: run_py(obj, False, callback_reader, poll)),
                    ("pyprobe read_batch()", lambda: run_py(obj, False, batch_reader, read_batch)),
                    ("pyprobe read_batch().to_numpy()", lambda: run_py(obj, False, batch_reader, to_numpy)),
                ],
            )

        print(f"perf buffer, {PAGES} pages per CPU, 72-byte samples, {PER_RUN} per BPF_PROG_RUN")
        perf_runs: list[tuple[str, Run]] = [("C libbpf perf_buffer__poll", lambda: run_c(obj, True))]
        for wakeup in (1, 64):

            def perf_callback(wakeup: int = wakeup) -> pyprobe.PerfBuffer:
                return pyprobe.PerfBuffer(perf_map, decoded, pages=PAGES, event_type=Event, wakeup_events=wakeup)

            def perf_batch(wakeup: int = wakeup) -> pyprobe.PerfBuffer:
                return pyprobe.PerfBuffer(perf_map, pages=PAGES, event_type=Event, wakeup_events=wakeup)

            label = f"wakeup_events={wakeup}"
            perf_runs.append(
                (f"pyprobe poll() callback, {label}", functools.partial(run_py, obj, True, perf_callback, poll))
            )
            perf_runs.append(
                (f"pyprobe read_batch(), {label}", functools.partial(run_py, obj, True, perf_batch, read_batch))
            )
        report(obj, perf_runs)

    capacity(decoded)


if __name__ == "__main__":
    main()
