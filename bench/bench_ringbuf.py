"""Ring buffer and perf buffer consumers: events/s against a C libbpf consumer measured in the same run.

A producer process (bench/c/ringbuf.c) runs the SEC("syscall") program
`emit` of tests/bpf/events.bpf.o with BPF_PROG_RUN in a loop, 72-byte events
written in a bpf_loop, for a fixed time; the consumer under test reads them
meanwhile. The figure is events consumed per second of production; the
events a slow consumer misses are counted by the BPF side (reserve failures)
and shown as dropped. Consumers: C libbpf ring_buffer__poll(), the pyprobe
callback path (events decoded to a ctypes struct, one field read each), and
read_batch() with and without .to_numpy(). The perf buffer (raw_tp program
`perf_emit`) likewise, including wakeup sampling (wakeup_events).

Run as root after ./dev build: .venv/bin/python bench/bench_ringbuf.py [SECONDS]
"""

from __future__ import annotations

import ctypes
import statistics
import struct
import subprocess
import sys
import time
from collections.abc import Callable

from _common import helper, test_object

import pyprobe

SECONDS = float(sys.argv[1]) if len(sys.argv) > 1 else 1.5
REPEAT = 3  # runs per measurement; the median is shown
PER_RUN = 4096  # events per BPF_PROG_RUN
RING = 4 << 20  # ring buffer bytes
PAGES = 256  # perf buffer pages per CPU
NO_WAKEUP = 1  # EMIT_NO_WAKEUP of tests/bpf/events.h


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


def run_c(obj: pyprobe.BpfObject, perf: bool) -> tuple[int, float]:
    reset(obj)
    bmap = obj.maps["perf_events" if perf else "events"]
    args = ["perf-consume", str(bmap.fd), str(SECONDS + 0.3), str(PAGES)] if perf else [
        "consume", str(bmap.fd), str(SECONDS + 0.3)
    ]  # fmt: skip
    consumer = subprocess.Popen([str(helper("ringbuf")), *args], pass_fds=[bmap.fd], stdout=subprocess.PIPE, text=True)
    time.sleep(0.1)  # let the consumer set up
    producer = start_producer(obj, perf)
    elapsed = producer_seconds(producer)
    out, _ = consumer.communicate()
    return int(out.split()[0]), elapsed


def run_py(obj: pyprobe.BpfObject, perf: bool, make: Callable[[], pyprobe.RingBuffer | pyprobe.PerfBuffer],
           step: Callable[[pyprobe.RingBuffer | pyprobe.PerfBuffer], int]) -> tuple[int, float]:  # fmt: skip
    reset(obj)
    with make() as reader:
        producer = start_producer(obj, perf)
        consumed = 0
        while producer.poll() is None:
            consumed += step(reader)
        elapsed = producer_seconds(producer)
        while n := step(reader):
            consumed += n
    return consumed, elapsed


def report(name: str, run: Callable[[], tuple[int, float]], obj: pyprobe.BpfObject, base: float | None) -> float:
    """Runs a measurement REPEAT times; prints the median events/s, its range and the share consumed."""
    rates, shares, drops = [], [], []
    for _ in range(REPEAT):
        consumed, elapsed = run()
        produced, dropped = stats(obj)
        rates.append(consumed / elapsed)
        shares.append(consumed / produced if produced else 0.0)
        drops.append(dropped / elapsed)
    rate = statistics.median(rates)
    ratio = f"{rate / base:5.2f}x C" if base else " 1.00x C"
    print(
        f"  {name:<42} {rate / 1e6:6.2f} M events/s ({min(rates) / 1e6:.2f}-{max(rates) / 1e6:.2f})  {ratio}"
        f"  consumed {statistics.median(shares):6.1%} of production, {statistics.median(drops) / 1e6:.2f} M/s dropped"
    )
    return rate


def main() -> None:
    spec = pyprobe.open(test_object("events"))
    spec.maps["events"].max_entries = RING
    with spec.load() as obj:
        ring, perf_map = obj.maps["events"], obj.maps["perf_events"]
        seq_sum = [0]

        def decoded(event: Event) -> None:
            seq_sum[0] += event.seq

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
            c_rate = report("C libbpf ring_buffer__poll", lambda: run_c(obj, False), obj, None)
            report("pyprobe poll() callback, decoded", lambda: run_py(obj, False, callback_reader, poll), obj, c_rate)
            report("pyprobe read_batch()", lambda: run_py(obj, False, batch_reader, read_batch), obj, c_rate)
            report("pyprobe read_batch().to_numpy()", lambda: run_py(obj, False, batch_reader, to_numpy), obj, c_rate)

        print(f"perf buffer, {PAGES} pages per CPU, 72-byte samples, {PER_RUN} per BPF_PROG_RUN")
        c_rate = report("C libbpf perf_buffer__poll", lambda: run_c(obj, True), obj, None)
        for wakeup in (1, 64):

            def perf_callback(wakeup: int = wakeup) -> pyprobe.PerfBuffer:
                return pyprobe.PerfBuffer(perf_map, decoded, pages=PAGES, event_type=Event, wakeup_events=wakeup)

            def perf_batch(wakeup: int = wakeup) -> pyprobe.PerfBuffer:
                return pyprobe.PerfBuffer(perf_map, pages=PAGES, event_type=Event, wakeup_events=wakeup)

            label = f"wakeup_events={wakeup}"
            report(f"pyprobe poll() callback, {label}", lambda: run_py(obj, True, perf_callback, poll), obj, c_rate)
            report(f"pyprobe read_batch(), {label}", lambda: run_py(obj, True, perf_batch, read_batch), obj, c_rate)


if __name__ == "__main__":
    main()
