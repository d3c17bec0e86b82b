"""``pyprobe funclatency PROBE...``: a log2 histogram of each function's latency.

The precompiled bpf/probes/funclatency.bpf.c keeps one histogram per
function (the attach cookie) in a BPF map; nothing crosses to user space per
call. The histogram is printed per interval and for the whole run.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pyprobe
from pyprobe._data import probe_file
from pyprobe.cli import _hist
from pyprobe.cli._session import Session, Status, ending_signals
from pyprobe.cli.probespec import ProbeSpec
from pyprobe.cli.trace import find_functions, interrupted_why, labels, resolve_specs, split_multi, use_multi
from pyprobe.symbols import Symbol

__all__ = ["Histogram", "LatencyTracer", "add_parser", "run"]

SLOTS = 64  # FL_SLOTS in bpf/probes/funclatency.h
MAX_FUNCS = 256


@dataclass
class Histogram:
    """One function's latency histogram: slot counts, call count and total nanoseconds."""

    slots: list[int]
    count: int
    total_ns: int

    def __sub__(self, other: Histogram) -> Histogram:
        return Histogram([a - b for a, b in zip(self.slots, other.slots, strict=True)],
                         self.count - other.count, self.total_ns - other.total_ns)  # fmt: skip


EMPTY = Histogram([0] * SLOTS, 0, 0)


class LatencyTracer:
    """Loads funclatency and attaches it to each function the PROBEs name; owns the object and its links.

    Raises what :class:`pyprobe.cli.trace.Tracer` raises, and ValueError for
    a PROBE that is not ``BINARY:FUNC`` or more than MAX_FUNCS functions.
    """

    def __init__(self, specs: Sequence[ProbeSpec], *, pid: int = -1, status: Status | None = None) -> None:
        status = status or Status()
        self.functions: list[Symbol] = []
        seen: set[tuple[str, int]] = set()
        for spec in specs:
            if spec.kind != "call":
                raise ValueError(f"{spec.text!r}: funclatency takes BINARY:FUNC probes")
            for sym in find_functions(spec, pid if pid > 0 else None):
                if (sym.binary, sym.offset) not in seen:
                    seen.add((sym.binary, sym.offset))
                    self.functions.append(sym)
        if len(self.functions) > MAX_FUNCS:
            raise ValueError(f"{len(self.functions)} functions: funclatency keeps at most {MAX_FUNCS}")
        self.labels = labels(self.functions)
        """How each function is named in output (with its parameter list where overloads collide)."""
        by_binary: dict[str, list[int]] = {}
        for i, f in enumerate(self.functions):
            by_binary.setdefault(f.binary, []).append(i)
        plan: dict[str, tuple[list[int], list[int]]] = {}
        for binary, idx in by_binary.items():
            if use_multi(len(idx)):
                multi, single = split_multi(binary, [self.functions[i] for i in idx])
                plan[binary] = ([idx[i] for i in multi], [idx[i] for i in single])
            else:
                plan[binary] = ([], idx)
        self._obj = obj = pyprobe.open(probe_file("funclatency"))
        try:
            any_multi = any(m for m, _ in plan.values())
            use_single = any(s for _, s in plan.values())
            for name, prog in obj.programs.items():
                prog.autoload = any_multi if name.endswith("_multi") else use_single
            obj.load()
            for binary, (multi, single) in plan.items():
                if multi:
                    status.update(f"attaching {len(multi)} functions in {binary} with one uprobe_multi link...")
                    for retprobe in (False, True):
                        prog = obj.programs["funclatency_return_multi" if retprobe else "funclatency_entry_multi"]
                        prog.attach_uprobe_multi(binary, [self.functions[i].name for i in multi], pid=pid,
                                                 retprobe=retprobe, cookies=multi)  # fmt: skip
                for n, i in enumerate(single):
                    f = self.functions[i]
                    status.update(f"attaching {n + 1}/{len(single)}: {f.bare} in {binary}")
                    obj.programs["funclatency_entry"].attach_uprobe(binary, None, offset=f.offset, pid=pid, cookie=i)
                    obj.programs["funclatency_return"].attach_uretprobe(binary, None, offset=f.offset, pid=pid,
                                                                        cookie=i)  # fmt: skip
        except BaseException:
            obj.close()
            raise

    def histograms(self) -> list[Histogram]:
        """The current histogram of each function (cumulative since attach), read from the ``hists`` map."""
        hists = self._obj.maps.typed("hists", pyprobe.ArrayMap[Any])
        out = []
        for i in range(len(self.functions)):
            h = hists[i]
            out.append(Histogram(list(h.slots), int(h.count), int(h.total_ns)))
        return out

    def close(self) -> None:
        """Detaches the probes and frees the object (the object owns the links)."""
        self._obj.close()

    def __enter__(self) -> LatencyTracer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def add_parser(sub: Any) -> None:
    p = sub.add_parser("funclatency", help="log2 histogram of function latency",
                       description="Latency histograms. PROBE: BINARY:FUNC (FUNC may be a glob).")  # fmt: skip
    p.add_argument("probes", nargs="+", metavar="BINARY:FUNC")
    p.add_argument("-p", "--pid", type=int, help="trace only this process")
    p.add_argument("-c", "--command", metavar="CMD", help="start CMD and trace only it (ends when it exits)")
    p.add_argument("-i", "--interval", type=float, metavar="S", help="print the histogram every S seconds")
    p.add_argument("--duration", type=float, metavar="S", help="stop after S seconds")
    p.set_defaults(run=run)


def _print(tracer: LatencyTracer, hists: list[Histogram], title: str) -> None:
    out = []
    for f, label, h in zip(tracer.functions, tracer.labels, hists, strict=True):
        out.append(f"\n{title} {label} ({f.binary}):\n")
        out.append(_hist.render(h.slots))
        out.append(_hist.summary(h.slots, h.count, h.total_ns) + "\n")
    sys.stdout.write("".join(out))
    sys.stdout.flush()


def run(args: argparse.Namespace) -> int:
    with ending_signals():
        return _run(args)


def _run(args: argparse.Namespace) -> int:
    session = Session(args.pid, args.command, args.duration)
    status = Status()
    try:
        specs = resolve_specs(args.probes, session)
        with LatencyTracer(specs, pid=session.attach_pid, status=status) as tracer:
            status.done(f"Tracing latency of {len(tracer.functions)} function(s)... Hit Ctrl-C to end.")
            session.start()
            last = [EMPTY] * len(tracer.functions)
            next_report = time.monotonic() + (args.interval or 0)
            why = "interrupted"
            try:
                while (reason := session.finished()) is None:
                    time.sleep(0.05)
                    if args.interval and time.monotonic() >= next_report:
                        now = tracer.histograms()
                        _print(tracer, [a - b for a, b in zip(now, last, strict=True)], time.strftime("%H:%M:%S"))
                        last = now
                        next_report += args.interval
                why = reason
            except KeyboardInterrupt as exc:
                why = interrupted_why(exc)
            hists = tracer.histograms()
            _print(tracer, hists, "total")
            print(f"\n{sum(h.count for h in hists)} calls ({why})", file=sys.stderr)
    finally:
        session.close()
    return 0
