"""``pyprobe funclatency PROBE...``: a log2 histogram of each function's latency.

The precompiled bpf/probes/funclatency.bpf.c keeps one histogram per
function (the attach cookie) in a BPF map; nothing crosses to user space per
call. The histogram is printed per interval and for the whole run.
"""

from __future__ import annotations

import argparse
import struct
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pyprobe
from pyprobe._data import probe_path
from pyprobe.cli import _compat, _hist
from pyprobe.cli._session import Session, Status
from pyprobe.cli.probespec import ProbeSpec
from pyprobe.cli.trace import resolve_specs

__all__ = ["Histogram", "LatencyTracer", "add_parser", "run"]

SLOTS = 64
HIST = struct.Struct(f"<{SLOTS}QQQ")  # struct fl_hist in bpf/probes/funclatency.h
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
    """Loads funclatency and attaches it to each function the PROBEs name; owns the object and links."""

    def __init__(self, specs: Sequence[ProbeSpec], *, pid: int = -1, status: Status | None = None) -> None:
        status = status or Status()
        self.functions: list[_compat.FuncSymbol] = []
        for spec in specs:
            if spec.kind != "call":
                raise ValueError(f"{spec.text!r}: funclatency takes BINARY:FUNC probes")
            lookup_pid = pid if pid > 0 else None
            if spec.is_glob:
                found = _compat.find_symbols(spec.binary, spec.function, pid=lookup_pid)
                if not found:
                    raise pyprobe.SymbolNotFoundError(2, f"no function matches {spec.function!r}",
                                                      context=f"funclatency {spec.text}")  # fmt: skip
                self.functions.extend(found)
            else:
                self.functions.append(_compat.resolve_symbol(spec.binary, spec.function, pid=lookup_pid))
        if len(self.functions) > MAX_FUNCS:
            raise ValueError(f"{len(self.functions)} functions: funclatency keeps at most {MAX_FUNCS}")
        self._links: list[Any] = []
        self._obj = obj = pyprobe.open(probe_path("funclatency"))
        try:
            multi = len(self.functions) > 4 and hasattr(obj.programs["funclatency_entry"], "attach_uprobe_multi")
            for name, prog in obj.programs.items():
                prog.autoload = name.endswith("_multi") == multi
            obj.load()
            entry: Any = obj.programs["funclatency_entry_multi" if multi else "funclatency_entry"]
            ret: Any = obj.programs["funclatency_return_multi" if multi else "funclatency_return"]
            if multi:
                by_binary: dict[str, list[int]] = {}
                for i, f in enumerate(self.functions):
                    by_binary.setdefault(f.binary, []).append(i)
                for binary, idx in by_binary.items():
                    status.update(f"attaching {len(idx)} functions in {binary}...")
                    for prog, retprobe in ((entry, False), (ret, True)):
                        self._links.append(
                            prog.attach_uprobe_multi(
                                binary, [self.functions[i].name for i in idx], pid=pid, retprobe=retprobe, cookies=idx
                            )
                        )
            else:
                for i, f in enumerate(self.functions):
                    status.update(f"attaching {i + 1}/{len(self.functions)}: {_compat._bare(f.demangled)}")
                    for prog, retprobe in ((entry, False), (ret, True)):
                        self._links.append(prog.attach_uprobe(f.binary, None, offset=f.offset, pid=pid,
                                                              retprobe=retprobe, cookie=i))  # fmt: skip
        except BaseException:
            obj.close()
            raise

    def histograms(self) -> list[Histogram]:
        """The current histogram of each function (cumulative since attach)."""
        hists = self._obj.maps["hists"]
        out = []
        for i in range(len(self.functions)):
            *slots, count, total = HIST.unpack(hists.lookup_bytes(struct.pack("<I", i)) or bytes(HIST.size))
            out.append(Histogram(list(slots), count, total))
        return out

    def close(self) -> None:
        """Detaches the probes and frees the object."""
        for link in self._links:
            link.detach()
        self._links = []
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
    for f, h in zip(tracer.functions, hists, strict=True):
        out.append(f"\n{title} {_compat._bare(f.demangled)} ({f.binary}):\n")
        out.append(_hist.render(h.slots))
        out.append(_hist.summary(h.slots, h.count, h.total_ns) + "\n")
    sys.stdout.write("".join(out))
    sys.stdout.flush()


def run(args: argparse.Namespace) -> int:
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
            except KeyboardInterrupt:
                pass
            hists = tracer.histograms()
            _print(tracer, hists, "total")
            print(f"\n{sum(h.count for h in hists)} calls ({why})", file=sys.stderr)
    finally:
        session.close()
    return 0
