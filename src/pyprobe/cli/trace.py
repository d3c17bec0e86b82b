"""``pyprobe trace PROBE...``: print each call with its arguments, return value and latency.

One precompiled object (bpf/probes/functrace.bpf.c) serves every traced
function: the attach cookie indexes the function's config (how many
arguments, which are strings) in its ``funcs`` map. Events reach a ring
buffer without waking this process; it drains the ring on a short timer.
"""

from __future__ import annotations

import argparse
import json
import struct
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TextIO

import pyprobe
from pyprobe._data import probe_path
from pyprobe.cli import _compat
from pyprobe.cli._session import Session, Status
from pyprobe.cli.probespec import HEX, ArgType, Param, ProbeSpec, format_value, parse_probe

__all__ = ["Call", "Function", "Tracer", "add_parser", "run"]

# struct ft_event and struct ft_config in bpf/probes/functrace.h
MAX_ARGS = 12
MAX_STRS = 4
STR_LEN = 128
EVENT = struct.Struct(f"<QQIIIIq{MAX_ARGS}Q16s{MAX_STRS * STR_LEN}s")
CONFIG = struct.Struct(f"<II{MAX_STRS}b")
FT_CFG_ENTRY_EVENT = 1
FT_EV_ENTRY, FT_EV_RETURN, FT_EV_ARGS = 1, 2, 4
DRAIN_INTERVAL = 0.02
MULTI_THRESHOLD = 4  # more functions than this in one binary: one uprobe_multi link


@dataclass
class Function:
    """One traced function: its index (the cookie), the probe that named it and the symbol found."""

    index: int
    spec: ProbeSpec
    symbol: _compat.FuncSymbol
    calls: int = 0

    @property
    def display(self) -> str:
        """The demangled name without its parameter list (``ns::f``)."""
        return _compat._bare(self.symbol.demangled)

    @property
    def params(self) -> tuple[Param, ...]:
        """The declared arguments, or six hex register arguments without a signature."""
        if self.spec.params is not None:
            return self.spec.params
        if self.spec.kind == "return":
            return ()
        return tuple(Param(f"arg{i + 1}", HEX) for i in range(6))

    @property
    def ret_type(self) -> ArgType:
        """How the return value is shown: the declared type; long with a signature; hex without."""
        if self.spec.ret is not None:
            return self.spec.ret
        return ArgType("signed", 8, "long") if self.spec.params is not None else HEX

    def config(self) -> bytes:
        """The struct ft_config for this function."""
        strs = [i for i, p in enumerate(self.params) if p.type.kind == "string"][:MAX_STRS]
        strs += [-1] * (MAX_STRS - len(strs))
        nargs = len(self.params)
        return CONFIG.pack(nargs, 0, *strs)


@dataclass
class Call:
    """One decoded event: a completed call, an entry, or a bare return."""

    function: Function
    ts_ns: int
    latency_ns: int
    pid: int
    tid: int
    comm: str
    flags: int
    ret: int
    args: tuple[int, ...]
    strs: tuple[bytes, ...]

    @property
    def has_args(self) -> bool:
        """The entry was seen: the arguments are known."""
        return bool(self.flags & FT_EV_ARGS)

    @property
    def has_return(self) -> bool:
        """The return was seen: the return value is known."""
        return bool(self.flags & FT_EV_RETURN)

    def arg_values(self, *, json_values: bool = False) -> list[tuple[str, object]]:
        """(name, formatted value) of each declared argument."""
        out: list[tuple[str, object]] = []
        slot = 0
        for i, p in enumerate(self.function.params):
            text = None
            if p.type.kind == "string":
                text = self.strs[slot] if slot < len(self.strs) else b""
                slot += 1
            out.append((p.name, format_value(self.args[i], p.type, text, json=json_values)))
        return out

    def ret_value(self, *, json_values: bool = False) -> object:
        """The formatted return value."""
        return format_value(self.ret, self.function.ret_type, json=json_values)


def _latency(ns: int) -> str:
    if ns < 1_000:
        return f"{ns}ns"
    if ns < 1_000_000:
        return f"{ns / 1e3:.1f}us"
    if ns < 1_000_000_000:
        return f"{ns / 1e6:.2f}ms"
    return f"{ns / 1e9:.3f}s"


class Tracer:
    """Loads functrace, attaches it to the functions PROBEs name, and decodes its events.

    Owns the loaded object and every link; :meth:`close` detaches them.
    Raises ProbeSyntaxError (bad PROBE), FileNotFoundError (binary),
    SymbolNotFoundError / AmbiguousSymbolError (function), and pyprobe's
    LoadError / AttachError / BpfPermissionError from the kernel.
    """

    def __init__(self, specs: Sequence[ProbeSpec], *, pid: int = -1, status: Status | None = None) -> None:
        self.functions: list[Function] = []
        self.pid = pid
        taken: dict[tuple[str, int], Function] = {}
        for spec in specs:
            if spec.kind == "usdt":
                raise pyprobe.UnsupportedError(
                    95, "tracing USDT probes is not supported by `trace` yet", context=f"trace {spec.text}",
                    hint="write a SEC(\"usdt\") program and use `pyprobe run`",
                )  # fmt: skip
            lookup_pid = pid if pid > 0 else None
            if spec.is_glob:
                found = _compat.find_symbols(spec.binary, spec.function, pid=lookup_pid)
                if not found:
                    raise pyprobe.SymbolNotFoundError(
                        2, f"no function matches {spec.function!r}", context=f"trace {spec.text}",
                        hint=f"see `pyprobe list symbols {spec.binary}`",
                    )  # fmt: skip
            else:
                found = [_compat.resolve_symbol(spec.binary, spec.function, pid=lookup_pid)]
            for sym in found:
                key = (sym.binary, sym.offset)
                if key in taken:  # a second probe on one function would pair its frames wrongly
                    if not spec.is_glob:
                        print(f"pyprobe: {spec.text!r}: {sym.demangled} is already traced by "
                              f"{taken[key].spec.text!r}; ignored", file=sys.stderr)  # fmt: skip
                    continue
                taken[key] = Function(len(self.functions), spec, sym)
                self.functions.append(taken[key])
        self.seen = 0
        self._status = status or Status()
        self._links: list[Any] = []
        obj = pyprobe.open(probe_path("functrace"))
        try:
            use_multi = len(self.functions) > MULTI_THRESHOLD and hasattr(
                obj.programs["functrace_entry"], "attach_uprobe_multi"
            )
            for name, prog in obj.programs.items():
                prog.autoload = name.endswith("_multi") == use_multi
            obj.load()
            self._funcs = obj.maps["funcs"]
            for f in self.functions:
                self._funcs.update_bytes(struct.pack("<I", f.index), f.config())
            self._attach(obj, use_multi)
            self._events = obj.maps["events"]
            self._ring = _compat.Ring(self._events.fd, self._events.max_entries)
        except BaseException:
            obj.close()
            raise
        self._obj = obj

    def _attach(self, obj: Any, use_multi: bool) -> None:
        total = sum(2 if f.spec.kind == "call" else 1 for f in self.functions)
        done = 0
        entry = obj.programs["functrace_entry_multi" if use_multi else "functrace_entry"]
        ret = obj.programs["functrace_return_multi" if use_multi else "functrace_return"]
        if use_multi:
            by_binary: dict[str, list[Function]] = {}
            for f in self.functions:
                by_binary.setdefault(f.symbol.binary, []).append(f)
            for binary, funcs in by_binary.items():
                for prog, retprobe in ((entry, False), (ret, True)):
                    chosen = [f for f in funcs if (f.spec.kind == "call" or retprobe)]
                    if not chosen:
                        continue
                    self._status.update(f"attaching {len(chosen)} functions in {binary}...")
                    self._links.append(
                        prog.attach_uprobe_multi(
                            binary, [f.symbol.name for f in chosen], pid=self.pid, retprobe=retprobe,
                            cookies=[f.index for f in chosen],
                        )
                    )  # fmt: skip
                    done += len(chosen)
            return
        for f in self.functions:
            pairs = [(ret, True)] if f.spec.kind == "return" else [(entry, False), (ret, True)]
            for prog, retprobe in pairs:
                self._status.update(f"attaching {done + 1}/{total}: {f.display} in {f.symbol.binary}")
                self._links.append(
                    prog.attach_uprobe(f.symbol.binary, None, offset=f.symbol.offset, pid=self.pid,
                                       retprobe=retprobe, cookie=f.index)
                )  # fmt: skip
                done += 1

    @property
    def probe_count(self) -> int:
        """Number of kernel links attached."""
        return len(self._links)

    def lost(self) -> int:
        """Events the ring buffer had no room for, plus calls nested too deep to remember."""
        raw = self._obj.maps["lost"].lookup_bytes(struct.pack("<I", 0)) or b""
        total = sum(struct.unpack(f"<{len(raw) // 8}Q", raw))
        raw = self._obj.maps["lost"].lookup_bytes(struct.pack("<I", 1)) or b""
        return int(total + sum(struct.unpack(f"<{len(raw) // 8}Q", raw)))

    def drain(self) -> list[Call]:
        """The events produced since the last call, decoded (does not block)."""
        out: list[Call] = []
        funcs = self.functions
        for rec in self._ring.drain():
            ts, lat, pid, tid, cookie, flags, ret, *rest = EVENT.unpack_from(rec)
            rec.release()
            args = tuple(rest[:MAX_ARGS])
            comm = rest[MAX_ARGS].split(b"\0", 1)[0].decode("utf-8", "replace")
            blob = rest[MAX_ARGS + 1]
            strs = tuple(blob[i * STR_LEN : (i + 1) * STR_LEN] for i in range(MAX_STRS))
            if cookie >= len(funcs):
                continue
            f = funcs[cookie]
            f.calls += 1
            out.append(Call(f, ts, lat, pid, tid, comm, flags, ret, args, strs))
        self.seen += len(out)
        return out

    def close(self) -> None:
        """Detaches every probe and frees the object (idempotent)."""
        if getattr(self, "_ring", None) is not None:
            self._ring.close()
            self._ring = None  # type: ignore[assignment]
        for link in self._links:
            link.detach()
        self._links = []
        self._obj.close()

    def __enter__(self) -> Tracer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class Printer:
    """Formats calls as text lines or JSON objects; times are seconds since ``t0_ns`` (CLOCK_MONOTONIC)."""

    def __init__(self, out: TextIO, *, as_json: bool, t0_ns: int) -> None:
        self.out = out
        self.as_json = as_json
        self.t0_ns = t0_ns

    def header(self) -> None:
        """The column header (text mode only)."""
        if not self.as_json:
            self.out.write(f"{'TIME(s)':>10} {'PID':>7} {'TID':>7} {'COMM':<16} CALL\n")

    def line(self, c: Call) -> str:
        """One call as a line of output (with its newline)."""
        t = (c.ts_ns - self.t0_ns) / 1e9
        if self.as_json:
            doc: dict[str, object] = {
                "time": round(t, 9), "pid": c.pid, "tid": c.tid, "comm": c.comm, "function": c.function.display,
                "symbol": c.function.symbol.name, "binary": c.function.symbol.binary,
            }  # fmt: skip
            if c.has_args:
                doc["args"] = dict(c.arg_values(json_values=True))
            if c.has_return:
                doc["ret"] = c.ret_value(json_values=True)
                if c.latency_ns:
                    doc["latency_ns"] = c.latency_ns
            return json.dumps(doc) + "\n"
        if c.has_args:
            named = c.function.spec.params is not None
            args = ", ".join(f"{n}={v}" if named else str(v) for n, v in c.arg_values())
            call = f"{c.function.display}({args})"
        else:
            call = f"{c.function.display}(...)"
        if c.has_return:
            call += f" = {c.ret_value()}"
            if c.latency_ns:
                call += f"  [{_latency(c.latency_ns)}]"
        return f"{t:10.6f} {c.pid:>7} {c.tid:>7} {c.comm:<16.16} {call}\n"

    def write(self, calls: list[Call]) -> None:
        """Writes and flushes a batch of calls."""
        if calls:
            self.out.write("".join(self.line(c) for c in calls))
            self.out.flush()


def add_parser(sub: Any) -> None:
    p = sub.add_parser(
        "trace", help="print each call of functions: arguments, return value, latency",
        description="Trace function calls. PROBE: BINARY:FUNC, BINARY:FUNC(int a, const char *s), "
        "BINARY:RTYPE FUNC(ARGS), r:BINARY:FUNC (return only); FUNC may be a glob.",
    )  # fmt: skip
    p.add_argument("probes", nargs="+", metavar="PROBE")
    p.add_argument("-p", "--pid", type=int, help="trace only this process")
    p.add_argument("-c", "--command", metavar="CMD", help="start CMD and trace only it (ends when it exits)")
    p.add_argument("--json", action="store_true", help="one JSON object per line")
    p.add_argument("--duration", type=float, metavar="S", help="stop after S seconds")
    p.set_defaults(run=run)


def resolve_specs(texts: Sequence[str], session: Session) -> list[ProbeSpec]:
    """Parses PROBEs; a bare FUNC (no BINARY) with ``-c`` means the command's binary."""
    specs = []
    for text in texts:
        prefix = text[:2] if text[:2] in ("r:", "p:") else ""
        rest = text[len(prefix) :]
        if session.child is not None and ":" not in rest.split("(", 1)[0]:
            text = f"{prefix}{session.child.executable}:{rest}"  # noqa: PLW2901
        specs.append(parse_probe(text))
    return specs


def trace_loop(
    tracer: Tracer, session: Session, on_calls: Callable[[list[Call]], None], *, interval: float = DRAIN_INTERVAL
) -> str:
    """Drains events every ``interval`` s until the session ends or Ctrl-C; returns why it stopped."""
    why = "interrupted"
    try:
        while True:
            time.sleep(interval)
            on_calls(tracer.drain())
            reason = session.finished()
            if reason is not None:
                why = reason
                break
    except KeyboardInterrupt:
        pass
    on_calls(tracer.drain())
    return why


def run(args: argparse.Namespace) -> int:
    session = Session(args.pid, args.command, args.duration)
    status = Status()
    try:
        specs = resolve_specs(args.probes, session)
        with Tracer(specs, pid=session.attach_pid, status=status) as tracer:
            printer = Printer(sys.stdout, as_json=args.json, t0_ns=time.monotonic_ns())
            status.done(
                f"Tracing {len(tracer.functions)} function(s) with {tracer.probe_count} probe(s)"
                + (f" in pid {session.pid}" if session.pid else "") + "... Hit Ctrl-C to end."
            )  # fmt: skip
            printer.header()
            session.start()
            why = trace_loop(tracer, session, printer.write)
            lost = tracer.lost()
            per = ", ".join(f"{f.display}: {f.calls}" for f in tracer.functions if f.calls)
            print(f"\n{tracer.seen} events, {lost} lost ({why}){'; ' + per if per else ''}", file=sys.stderr)
    finally:
        session.close()
    return 0
