"""``pyprobe trace PROBE...``: print each call with its arguments, return value and latency.

One precompiled object (bpf/probes/functrace.bpf.c) serves every traced
function: the attach cookie indexes the function's config (how many
arguments, which are strings) in its ``funcs`` map. Events reach a ring
buffer without waking this process (``pyprobe_ringbuf_submit``), except the
first one, which the reader prints as soon as it comes; a
:class:`pyprobe.RingBuffer` drains the others on a short timer and decodes the
records as ``struct ft_event`` from the object's BTF.
"""

from __future__ import annotations

import re
import sys
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, TextIO

import pyprobe
from pyprobe import symbols
from pyprobe._data import probe_file
from pyprobe._record import Record
from pyprobe.cli import _timeline
from pyprobe.cli._early import EarlyUprobes
from pyprobe.cli._session import Session, Status, ending_signals
from pyprobe.cli.probespec import (
    HEX,
    ArgType,
    Param,
    ProbeSpec,
    ProbeSyntaxError,
    format_value,
    parse_probe,
    split_binary,
)  # fmt: skip
from pyprobe.symbols import Symbol

if TYPE_CHECKING:
    import argparse

    from pyprobe.usdt import UsdtProbe

__all__ = ["Call", "Function", "Tracer", "add_parser", "add_symbol_hint", "labels", "run"]

# struct ft_config and the flags in bpf/probes/functrace.h
MAX_STRS = 4
FT_EV_ENTRY, FT_EV_RETURN, FT_EV_ARGS, FT_EV_STR_FAULT = 1, 2, 4, 8
DRAIN_INTERVAL = 0.02
"""Seconds between looks at the ring: events after the first are submitted without waking the reader."""
BATCH = 4096
"""Events decoded at a time: bounds the memory a burst of calls costs (each event is 664 bytes)."""
RING_BYTES = 1 << 22
"""The ring's size (6000 events): with a wakeup once 64 KiB wait, a burst of 20000 calls loses none."""
MULTI_THRESHOLD = 4
"""More functions than this in one binary: one uprobe_multi link per direction instead of one link each."""
ENTRY_PLAIN = {"single": "functrace_entry", "multi": "functrace_entry_multi", "usdt": "functrace_usdt"}
ENTRY_SLEEPABLE = {"single": "functrace_entry_s", "multi": "functrace_entry_multi_s", "usdt": "functrace_usdt_s"}
"""The programs that read arguments: plain, or sleepable (uprobe.s, Linux 6.0) when a function has strings."""
NO_RETURN = frozenset({"_start"})
"""Entry points that never return; a glob skips them (see find_functions)."""


def add_symbol_hint(exc: pyprobe.AttachError, spec: ProbeSpec) -> pyprobe.AttachError:
    """Adds to a SymbolNotFoundError / AmbiguousSymbolError the listing command that shows the choices."""
    listing = f"pyprobe list {'usdt' if spec.kind == 'usdt' else 'symbols'} {spec.binary}"
    if listing not in exc.hint:
        exc.hint = f"{exc.hint}; see `{listing}`" if exc.hint else f"see `{listing}`"
    return exc


def labels(syms: Sequence[Symbol]) -> list[str]:
    """How each function is named in output: its bare name (``ns::f``), or with its parameter list
    (``ns::f(int, int)``) where functions at different places share that bare name (overloads)."""
    places: dict[str, set[tuple[str, int]]] = {}
    for s in syms:
        places.setdefault(s.bare, set()).add((s.binary, s.offset))
    return [s.demangled if len(places[s.bare]) > 1 else s.bare for s in syms]


class Function(Record):
    """One traced function or USDT probe: its index (the cookie), the probe that named it, what was found."""

    __slots__ = ("calls", "index", "label", "spec", "symbol", "usdt")
    _fields_ = ("index", "spec", "symbol", "usdt", "calls")

    def __init__(
        self, index: int, spec: ProbeSpec, symbol: Symbol | None = None, usdt: UsdtProbe | None = None, calls: int = 0
    ) -> None:
        self.index = index
        self.spec = spec
        self.symbol = symbol
        self.usdt = usdt
        self.calls = calls
        self.label = symbol.bare if symbol is not None else ""

    @property
    def binary(self) -> str:
        """The resolved path of the binary."""
        if self.usdt is not None:
            return self.usdt.binary
        assert self.symbol is not None
        return self.symbol.binary

    @property
    def name(self) -> str:
        """The symbol as found in the binary, or ``provider:name`` for USDT."""
        if self.usdt is not None:
            return f"{self.usdt.provider}:{self.usdt.name}"
        assert self.symbol is not None
        return self.symbol.name

    @property
    def display(self) -> str:
        """The demangled name without its parameter list (``ns::f``), with it where overloads are traced
        together (``ns::f(int)``, see :func:`labels`), or ``provider:name``."""
        if self.symbol is not None:
            return self.label
        return self.name

    @property
    def retprobes(self) -> tuple[bool, ...]:
        """Its probes, as attach_uprobe's ``retprobe``: entry and return, or the return only (``r:``)."""
        return (True,) if self.spec.kind == "return" else (False, True)

    @property
    def params(self) -> tuple[Param, ...]:
        """The declared arguments; a USDT probe's own; six hex register arguments without a signature."""
        if self.spec.params is not None:
            return self.spec.params
        if self.usdt is not None:
            return tuple(
                Param(f"arg{i + 1}", ArgType("signed" if a.signed else "unsigned", a.size or 8, a.spec))
                for i, a in enumerate(self.usdt.arguments[:12])
            )
        if self.spec.kind == "return":
            return ()
        return tuple(Param(f"arg{i + 1}", HEX) for i in range(6))

    @property
    def named(self) -> bool:
        """Whether arguments print with their names (a signature or a USDT probe)."""
        return self.spec.params is not None or self.usdt is not None

    @property
    def ret_type(self) -> ArgType:
        """How the return value is shown: the declared type; long with a signature; hex without."""
        if self.spec.ret is not None:
            return self.spec.ret
        return ArgType("signed", 8, "long") if self.spec.params is not None else HEX

    def config(self) -> dict[str, object]:
        """The struct ft_config of this function, as a dict for the typed ``funcs`` map."""
        strs = [i for i, p in enumerate(self.params) if p.type.kind == "string"][:MAX_STRS]
        return {"nargs": len(self.params), "flags": 0, "str_arg": strs + [-1] * (MAX_STRS - len(strs))}


class Call:
    """One decoded event (a completed call, an entry, a bare return or a USDT hit) over its ``struct ft_event``."""

    __slots__ = ("event", "function")

    def __init__(self, function: Function, event: Any) -> None:
        self.function = function
        self.event = event

    @property
    def ts_ns(self) -> int:
        """Entry time (CLOCK_MONOTONIC ns); the return's for a bare return."""
        return int(self.event.ts_ns)

    @property
    def latency_ns(self) -> int:
        """Return time - entry time; 0 when unknown."""
        return int(self.event.latency_ns)

    @property
    def pid(self) -> int:
        return int(self.event.pid)

    @property
    def tid(self) -> int:
        return int(self.event.tid)

    @property
    def comm(self) -> str:
        return bytes(self.event.comm).split(b"\0", 1)[0].decode("utf-8", "replace")

    @property
    def has_args(self) -> bool:
        """The entry was seen: the arguments are known."""
        return bool(self.event.flags & FT_EV_ARGS)

    @property
    def has_return(self) -> bool:
        """The return was seen: the return value is known."""
        return bool(self.event.flags & FT_EV_RETURN)

    def arg_values(self, *, json_values: bool = False) -> list[tuple[str, object]]:
        """(name, formatted value) of each declared argument."""
        out: list[tuple[str, object]] = []
        slot = 0
        args = self.event.args
        flags = self.event.flags
        for i, p in enumerate(self.function.params):
            text = None
            if p.type.kind == "string":
                if slot < MAX_STRS and flags & (FT_EV_STR_FAULT << slot):
                    out.append((p.name, f"<unreadable {args[i] & (1 << 64) - 1:#x}>"))
                    slot += 1
                    continue
                text = bytes(self.event.strs[slot]) if slot < MAX_STRS else b""
                slot += 1
            out.append((p.name, format_value(args[i], p.type, text, json=json_values)))
        return out

    def ret_value(self, *, json_values: bool = False) -> object:
        """The formatted return value."""
        return format_value(self.event.ret, self.function.ret_type, json=json_values)


def _latency(ns: int) -> str:
    if ns < 1_000:
        return f"{ns}ns"
    if ns < 1_000_000:
        return f"{ns / 1e3:.1f}us"
    if ns < 1_000_000_000:
        return f"{ns / 1e6:.2f}ms"
    return f"{ns / 1e9:.3f}s"


def find_functions(spec: ProbeSpec, pid: int | None) -> list[Symbol]:
    """The functions a (non-USDT) PROBE names: one for a name, every match for a glob.

    Raises SymbolNotFoundError / AmbiguousSymbolError with a hint naming the
    listing command, AttachError for a missing binary.
    """
    try:
        if spec.is_glob:
            # _start is entered with argc, not a return address, at the top of the stack: a return
            # probe there would overwrite argc. A glob leaves it out; naming it still works.
            found = [s for s in symbols.find(spec.binary, spec.function, pid=pid) if s.name not in NO_RETURN]
            if not found:
                raise pyprobe.SymbolNotFoundError(
                    2, f"no function matches '{spec.function}' in {symbols.resolve_binary(spec.binary, pid)}",
                    context=f"trace {spec.text}",
                )  # fmt: skip
            return found
        if spec.error or spec.full != spec.function:
            whole = _find_demangled(spec, pid)
            if whole is not None:
                return [whole]
            if spec.error:  # neither a function of the binary nor a C signature
                near = _near_names(spec, pid)
                raise ProbeSyntaxError(
                    f"{spec.error}; and no function of {symbols.resolve_binary(spec.binary, pid)} is named "
                    f"{spec.full!r}" + (f"; did you mean {near}?" if near else "")
                )
        return [symbols.resolve(spec.binary, spec.function, pid=pid)]
    except pyprobe.SymbolNotFoundError as exc:
        raise add_symbol_hint(_suggest(exc, spec, pid), spec) from None
    except pyprobe.AmbiguousSymbolError as exc:
        raise add_symbol_hint(exc, spec) from None


def _canonical(name: str) -> str:
    """A demangled name with the spaces that do not separate two words dropped (``f(int,int)`` = ``f(int, int)``)."""
    return re.sub(r"\s*([^\w\s])\s*", r"\1", " ".join(name.split()))


def _find_demangled(spec: ProbeSpec, pid: int | None) -> Symbol | None:
    """The function whose symbol or demangled name is FUNC as written (``ns::f(int, int)``), if one is."""
    try:
        return symbols.resolve(spec.binary, spec.full, pid=pid)
    except pyprobe.SymbolNotFoundError:
        pass
    bare = spec.full.split("(", 1)[0].strip()
    if not bare or any(c in bare for c in "*?[]"):
        return None
    want = _canonical(spec.full)
    matches = {s.offset: s for s in symbols.find(spec.binary, bare, pid=pid) if _canonical(s.demangled) == want}
    return next(iter(matches.values())) if len(matches) == 1 else None


def _near_names(spec: ProbeSpec, pid: int | None) -> str:
    """The functions whose names are near the one asked for (difflib), quoted and joined, or ``""``."""
    import difflib

    try:
        everything = symbols.find(spec.binary, "*", pid=pid)
    except pyprobe.AttachError:
        return ""
    want = spec.function.split("(", 1)[0].strip()
    names = sorted({s.bare for s in everything} | {s.name for s in everything if not s.name.startswith("_Z")})
    near = difflib.get_close_matches(want, names, n=3, cutoff=0.6)
    if want in near:  # the bare name exists: its overloads are what is near
        near = [s.demangled for s in everything if s.bare == want][:3]
    return " or ".join(f"'{n}'" for n in near)


def _suggest(exc: pyprobe.SymbolNotFoundError, spec: ProbeSpec, pid: int | None) -> pyprobe.SymbolNotFoundError:
    """Adds the functions with names near the one not found to the error's hint."""
    near = _near_names(spec, pid)
    if near:
        exc.hint = f"did you mean {near}?; {exc.hint}" if exc.hint else f"did you mean {near}?"
    return exc


def find_usdt(spec: ProbeSpec, pid: int | None) -> UsdtProbe:
    """The USDT probe ``u:BINARY:PROVIDER:NAME`` names (its first site); SymbolNotFoundError when none."""
    import pyprobe.usdt  # only USDT probes need it

    have = pyprobe.usdt.probes(spec.binary, pid)
    for p in have:
        if (p.provider, p.name) == (spec.provider, spec.name):
            return p
    listed = ", ".join(sorted({f"{p.provider}:{p.name}" for p in have})) or "none"
    path = symbols.resolve_binary(spec.binary, pid)
    exc = pyprobe.SymbolNotFoundError(
        2, f"no USDT probe {spec.provider}:{spec.name} in {path} (it has: {listed})", context=f"trace {spec.text}"
    )
    raise add_symbol_hint(exc, spec)


def split_multi(binary: str, syms: Sequence[Symbol]) -> tuple[list[int], list[int]]:
    """Indexes of the symbols their name finds (for attach_uprobe_multi, which takes names) and of the
    others (a local name used at several addresses), which are attached one by one at their offset."""
    by_name: list[int] = []
    by_offset: list[int] = []
    for i, sym in enumerate(syms):
        try:
            same = symbols.resolve(binary, sym.name).offset == sym.offset
        except pyprobe.AmbiguousSymbolError:
            same = False
        (by_name if same else by_offset).append(i)
    return by_name, by_offset


def use_multi(count: int) -> bool:
    """Whether ``count`` functions of one binary get one uprobe_multi link per direction (else a link each).

    Above MULTI_THRESHOLD, where the kernel has uprobe_multi links (Linux 6.6): before, every function is
    attached on its own, which only takes longer.
    """
    return count > MULTI_THRESHOLD and pyprobe.features.available("uprobe_multi")


def _plan(funcs: list[Function]) -> tuple[list[Function], list[Function]]:
    if not use_multi(len(funcs)):
        return [], funcs
    multi, single = split_multi(funcs[0].binary, [f.symbol for f in funcs if f.symbol is not None])
    return [funcs[i] for i in multi], [funcs[i] for i in single]


class Tracer:
    """Loads functrace, attaches it to the functions and USDT probes PROBEs name, and decodes its events.

    Owns the loaded object (and through it every link) and the ring buffer
    reader; :meth:`close` detaches and frees them. Raises ProbeSyntaxError
    (bad PROBE), SymbolNotFoundError / AmbiguousSymbolError (function),
    AttachError (binary), and pyprobe's LoadError / AttachError /
    BpfPermissionError from the kernel.
    """

    def __init__(self, specs: Sequence[ProbeSpec], *, pid: int = -1, status: Status | None = None) -> None:
        self.functions: list[Function] = []
        self.pid = pid
        lookup_pid = pid if pid > 0 else None
        taken: dict[tuple[str, object], Function] = {}
        for spec in specs:
            if spec.kind == "usdt":
                probe = find_usdt(spec, lookup_pid)
                key: tuple[str, object] = (probe.binary, (probe.provider, probe.name))
                if key not in taken:
                    taken[key] = Function(len(self.functions), spec, usdt=probe)
                    self.functions.append(taken[key])
                continue
            for sym in find_functions(spec, lookup_pid):
                key = (sym.binary, sym.offset)
                if key in taken:  # a second probe on one function would pair its frames wrongly
                    if not spec.is_glob:
                        print(f"pyprobe: {spec.text!r}: {sym.demangled} is already traced by "
                              f"{taken[key].spec.text!r}; ignored", file=sys.stderr)  # fmt: skip
                    continue
                taken[key] = Function(len(self.functions), spec, symbol=sym)
                self.functions.append(taken[key])
        traced = [f for f in self.functions if f.symbol is not None]
        for f, label in zip(traced, labels([f.symbol for f in traced if f.symbol is not None]), strict=True):
            f.label = label
        self.seen = 0
        self._status = status or Status()
        self._links: list[pyprobe.Link] = []
        self._reader: pyprobe.RingBuffer[Any] | None = None
        # per binary: the functions for one uprobe_multi link (many, each found by its name) and the rest
        per_binary: dict[str, list[Function]] = {}
        for f in self.functions:
            if f.usdt is None:
                per_binary.setdefault(f.binary, []).append(f)
        plan = {b: _plan(fs) for b, fs in per_binary.items()}
        _timeline.mark("ELF read, functions found")
        # Strings are read by sleepable entry programs where the kernel allows, so a string on a page the
        # process has not touched yet is faulted in rather than lost; their object's kfunc makes libbpf parse
        # the kernel's BTF at load, which the plain object (no strings) does without.
        strings = any(p.type.kind == "string" for f in self.functions for p in f.params)
        sleepable = strings and pyprobe.features.available("sleepable_uprobe")
        self._entry = ENTRY_SLEEPABLE if sleepable else ENTRY_PLAIN
        with EarlyUprobes(
            ((f.binary, f.symbol.offset, ret) for _, single in plan.values() for f in single if f.symbol is not None
             for ret in f.retprobes),
            self.pid,
        ) as early:  # fmt: skip
            self._obj = self._load("functrace_kstr" if sleepable else "functrace", plan, early)

    def _load(
        self, probe: str, plan: dict[str, tuple[list[Function], list[Function]]], early: EarlyUprobes
    ) -> pyprobe.BpfObject:
        """Opens and loads the bundled object ``probe``, writes the functions' config, attaches, makes the reader."""
        obj = pyprobe.open(probe_file(probe))
        _timeline.mark("object opened")
        try:
            single_used = any(single for _, single in plan.values())
            multi_used = any(m for m, _ in plan.values())
            wanted = {
                self._entry["usdt"]: any(f.usdt is not None for f in self.functions),
                self._entry["single"]: single_used, "functrace_return": single_used,
                self._entry["multi"]: multi_used, "functrace_return_multi": multi_used,
            }  # fmt: skip
            for name, prog in obj.programs.items():
                prog.autoload = wanted.get(name, False)
            obj.maps["events"].max_entries = RING_BYTES
            obj.load()
            _timeline.mark("object loaded")
            funcs = obj.maps.typed("funcs", pyprobe.ArrayMap[Any])
            for f in self.functions:
                funcs[f.index] = f.config()
            _timeline.mark("config written")
            self._attach(obj, plan, early)
            _timeline.mark(f"attached ({len(self._links)} links)")
            self._reader = pyprobe.RingBuffer(obj.maps["events"], event_type="ft_event", drain_interval=DRAIN_INTERVAL)
            _timeline.mark("reader ready")
        except BaseException:
            obj.close()
            raise
        return obj

    def _attach(
        self, obj: pyprobe.BpfObject, plan: dict[str, tuple[list[Function], list[Function]]], early: EarlyUprobes
    ) -> None:
        def probes(f: Function) -> int:
            return 1 if f.usdt is not None else len(f.retprobes)

        total = sum(probes(f) for f in self.functions if f.usdt is not None)
        total += sum((2 if multi else 0) + sum(probes(f) for f in single) for multi, single in plan.values())
        for f in self.functions:
            if f.usdt is not None:
                self._status.update(f"attaching {len(self._links) + 1}/{total}: {f.name} in {f.binary}")
                self._links.append(
                    obj.programs[self._entry["usdt"]].attach_usdt(
                        f.binary, f.usdt.provider, f.usdt.name, pid=self.pid, cookie=f.index
                    )
                )
        for binary, (multi, single) in plan.items():
            for retprobe in (False, True):
                chosen = [f for f in multi if retprobe in f.retprobes]
                if not chosen:
                    continue
                self._status.update(f"attaching {len(chosen)} functions in {binary} with one uprobe_multi link...")
                prog = obj.programs["functrace_return_multi" if retprobe else self._entry["multi"]]
                self._links.append(
                    prog.attach_uprobe_multi(
                        binary, [f.name for f in chosen], pid=self.pid, retprobe=retprobe,
                        cookies=[f.index for f in chosen],
                    )
                )  # fmt: skip
            entry, ret = obj.programs[self._entry["single"]], obj.programs["functrace_return"]
            for f in single:
                assert f.symbol is not None
                for retprobe in f.retprobes:
                    prog = ret if retprobe else entry
                    self._status.update(f"attaching {len(self._links) + 1}/{total}: {f.display} in {binary}")
                    event = early.take(f.binary, f.symbol.offset, retprobe)
                    if event is not None:
                        with event:
                            self._links.append(prog.attach_perf_event(event, cookie=f.index))
                        continue
                    self._links.append(
                        prog.attach_uprobe(binary, None, offset=f.symbol.offset, pid=self.pid,
                                           retprobe=retprobe, cookie=f.index)
                    )  # fmt: skip

    @property
    def probe_count(self) -> int:
        """Number of kernel links attached."""
        return len(self._links)

    def lost(self) -> int:
        """Events the ring buffer had no room for, plus calls nested too deep to remember."""
        lost = self._obj.maps.typed("lost", pyprobe.PerCpuArrayMap[int])
        return sum(sum(lost[i]) for i in (0, 1))

    def drain(self, timeout: float = 0) -> list[Call]:
        """The events produced since the last call, decoded; waits up to ``timeout`` s for the first."""
        assert self._reader is not None
        out: list[Call] = []
        funcs = self.functions
        nfuncs = len(funcs)
        while True:
            batch = self._reader.read_batch(BATCH, timeout=timeout)
            if not len(batch):
                break
            timeout = 0
            for ev in batch:
                cookie = ev.cookie
                if cookie < nfuncs:
                    f = funcs[cookie]
                    f.calls += 1
                    out.append(Call(f, ev))
        self.seen += len(out)
        return out

    def close(self) -> None:
        """Detaches every probe and frees the reader and the object (idempotent)."""
        if self._reader is not None:
            self._reader.close()
            self._reader = None
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
        f = c.function
        if self.as_json:
            import json

            doc: dict[str, object] = {
                "time": round(t, 9), "pid": c.pid, "tid": c.tid, "comm": c.comm, "function": f.display,
                "symbol": f.name, "binary": f.binary,
            }  # fmt: skip
            if c.has_args:
                doc["args"] = dict(c.arg_values(json_values=True))
            if c.has_return:
                doc["ret"] = c.ret_value(json_values=True)
                if c.latency_ns:
                    doc["latency_ns"] = c.latency_ns
            return json.dumps(doc) + "\n"
        if c.has_args:
            args = ", ".join(f"{n}={v}" if f.named else str(v) for n, v in c.arg_values())
            call = f"{f.display}({args})"
        else:
            call = f"{f.display}(...)"
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
        "BINARY:RTYPE FUNC(ARGS), r:BINARY:FUNC (return only), u:BINARY:PROVIDER:NAME (USDT); "
        "FUNC may be a glob.",
    )  # fmt: skip
    p.add_argument("probes", nargs="+", metavar="PROBE")
    p.add_argument("-p", "--pid", type=int, help="trace only this process")
    p.add_argument("-c", "--command", metavar="CMD", help="start CMD and trace only it (ends when it exits)")
    p.add_argument("--json", action="store_true", help="one JSON object per line")
    p.add_argument("--duration", type=float, metavar="S", help="stop after S seconds")
    p.set_defaults(run=run)


def resolve_specs(texts: Sequence[str], session: Session) -> list[ProbeSpec]:
    """Parses PROBEs; a FUNC without BINARY (``f``, ``ns::f(int, int)``) with ``-c`` means the command's binary."""
    specs = []
    for text in texts:
        stripped = text.strip()
        rest = stripped[2:] if stripped[:2] in ("r:", "p:") else stripped
        if session.child is not None and not stripped.startswith("u:") and split_binary(rest) is None:
            specs.append(parse_probe(text, binary=session.child.executable))
        else:
            specs.append(parse_probe(text))
    return specs


def interrupted_why(exc: KeyboardInterrupt) -> str:
    """How the summary names the end: ``interrupted`` (Ctrl-C) or ``ended by SIGTERM`` / ``SIGHUP``."""
    name = exc.args[0] if exc.args and isinstance(exc.args[0], str) else "SIGINT"
    return "interrupted" if name == "SIGINT" else f"ended by {name}"


def trace_loop(
    tracer: Tracer, session: Session, on_calls: Callable[[list[Call]], None], *, interval: float = 0.1
) -> str:
    """Hands each batch of calls to ``on_calls`` until the session ends or Ctrl-C; returns why it stopped.

    Each step waits up to ``interval`` s for events (the reader looks at the
    ring every DRAIN_INTERVAL s), so the end of the session is noticed
    within ``interval``.
    """
    why = "interrupted"
    first = _timeline.enabled
    try:
        while True:
            calls = tracer.drain(timeout=interval)
            on_calls(calls)
            if first and calls:
                _timeline.mark("first event printed")
                first = False
            reason = session.finished()
            if reason is not None:
                why = reason
                break
    except KeyboardInterrupt as exc:
        why = interrupted_why(exc)
    on_calls(tracer.drain())
    return why


def run(args: argparse.Namespace) -> int:
    with ending_signals():
        return _run(args)


def _run(args: argparse.Namespace) -> int:
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
