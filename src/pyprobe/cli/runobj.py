"""``pyprobe run OBJ.bpf.o``: load any object, auto-attach it, stream its events and bpf_printk lines.

Every ring buffer map of the object is read by one :class:`pyprobe.RingBuffer`;
records decode to ``--event-type NAME`` (a struct in the object's BTF) or
show as hex. bpf_printk lines come from :func:`pyprobe.trace_pipe`, followed
in a background thread. Runs until Ctrl-C or ``--duration``.
"""

from __future__ import annotations

import argparse
import json
import queue
import sys
import threading
import time
from typing import Any

import pyprobe
from pyprobe.btf import to_python

__all__ = ["add_parser", "run"]


def add_parser(sub: Any) -> None:
    p = sub.add_parser("run", help="load an object, auto-attach, stream ring buffer events and bpf_printk")
    p.add_argument("object", metavar="OBJ.bpf.o")
    p.add_argument("--event-type", metavar="NAME", help="struct in the object's BTF that ring buffer records hold")
    p.add_argument("--duration", type=float, metavar="S", help="stop after S seconds")
    p.add_argument("--json", action="store_true", help="one JSON object per line")
    p.set_defaults(run=run)


def _plain(value: object) -> object:
    """JSON-friendly: bytes become text up to the first NUL."""
    if isinstance(value, bytes):
        return value.split(b"\0", 1)[0].decode("utf-8", "replace")
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


class _PrintkFollower:
    """Follows trace_pipe in a daemon thread; :meth:`lines` returns what came since the last call."""

    def __init__(self) -> None:
        self._queue: queue.SimpleQueue[pyprobe.TraceLine | BaseException] = queue.SimpleQueue()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._follow, name="pyprobe-printk", daemon=True)
        self._thread.start()

    def _follow(self) -> None:
        try:  # one open of trace_pipe for the whole run (each open would show in traced opens)
            for line in pyprobe.trace_pipe(stop=self._stop):
                self._queue.put(line)
        except Exception as exc:  # reported once by the main thread
            self._queue.put(exc)

    def lines(self) -> list[pyprobe.TraceLine]:
        out: list[pyprobe.TraceLine] = []
        while True:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                return out
            if isinstance(item, BaseException):
                print(f"pyprobe: no bpf_printk lines: {item}", file=sys.stderr)
            else:
                out.append(item)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=1)


def run(args: argparse.Namespace) -> int:
    with pyprobe.load(args.object) as obj:
        event_type = None
        if args.event_type is not None:
            try:
                event_type = obj.btf.type_by_name(args.event_type)
            except LookupError:
                words = args.event_type.split()
                c_name = args.event_type if words[:1] in (["struct"], ["union"]) else f"struct {args.event_type}"
                raise ValueError(
                    f"no type {args.event_type!r} in the BTF of {obj.name}; export it from the BPF program with "
                    f"PYPROBE_EXPORT_TYPE({c_name}); or PYPROBE_EVENT_TYPE(MAP, {c_name}); from <pyprobe/btf.h> "
                    "(the latter also makes --event-type unneeded)"
                ) from None
        links = obj.attach()
        rings = [m for m in obj.maps.values() if isinstance(m, pyprobe.RingBufMap)]
        reader = pyprobe.RingBuffer(drain_interval=0.05)
        for m in rings:
            reader.add(m, event_type=event_type)
        printk = _PrintkFollower()
        print(f"{obj.name}: {len(links)} program(s) attached, {len(rings)} ring buffer(s); Ctrl-C to end",
              file=sys.stderr)  # fmt: skip
        seen = lines = 0
        start = time.monotonic()
        try:
            while args.duration is None or time.monotonic() - start < args.duration:
                out = []
                batch = reader.read_batch(timeout=0.05) if rings else None
                if batch is None:
                    time.sleep(0.05)
                else:
                    for ev in batch:
                        seen += 1
                        if isinstance(ev, bytes):
                            out.append(json.dumps({"map": batch.map, "raw": ev.hex()}) if args.json
                                       else f"{batch.map}: {ev.hex()}")  # fmt: skip
                        else:
                            value = _plain(to_python(ev))
                            out.append(json.dumps({"map": batch.map, "event": value}) if args.json
                                       else f"{batch.map}: {value}")  # fmt: skip
                for line in printk.lines():
                    lines += 1
                    out.append(json.dumps({"printk": line.message, "pid": line.pid, "task": line.task})
                               if args.json else f"printk {line.task}-{line.pid}: {line.message}")  # fmt: skip
                if out:
                    sys.stdout.write("\n".join(out) + "\n")
                    sys.stdout.flush()
        except KeyboardInterrupt:
            pass
        finally:
            reader.close()
            printk.stop()
        print(f"\n{seen} events, {lines} printk lines", file=sys.stderr)
    return 0
