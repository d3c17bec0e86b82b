"""A profile's data: frames, samples and the :class:`Profile` that holds them, with folding and merging."""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Literal, NamedTuple

__all__ = ["Frame", "FrameKind", "FunctionStats", "Profile", "Sample", "folded_name"]

FrameKind = Literal["user", "kernel", "jit"]
"""Where a frame runs: user code of an ELF file, the kernel, or JIT code named by a perf map."""


@dataclass(frozen=True, slots=True)
class Frame:
    """One frame of a stack, symbolized."""

    name: str
    """The demangled function name, or ``[unknown]``."""
    module: str | None
    """The ELF file's path, ``[kernel.kallsyms]`` (``[MODULE]`` for a kernel module), ``[perf-PID.map]``; None
    for an address in no mapping."""
    address: int
    """The absolute address in the process (or in the kernel)."""
    offset: int
    """``address`` minus the symbol's start; for an unknown frame, the offset in ``module`` (0 without one)."""
    kind: FrameKind


@dataclass(frozen=True, slots=True)
class Sample:
    """A distinct stack of one thread and how many times it was sampled."""

    pid: int
    tid: int
    comm: str
    frames: tuple[Frame, ...]
    """Root first (the outermost caller ... the leaf); a sample's kernel frames follow its user frames."""
    count: int


class FunctionStats(NamedTuple):
    """One function's row of :meth:`Profile.top`: samples in it (self) and under it (total)."""

    name: str
    module: str | None
    self: int
    total: int


_SUFFIX: dict[str, str] = {"user": "", "kernel": "_[k]", "jit": "_[j]"}


def folded_name(frame: Frame) -> str:
    """The frame as folded stacks name it (flamegraph.pl's stackcollapse-perf convention).

    A kernel frame gets ``_[k]``, a JIT frame ``_[j]``; an unknown function
    in a known module is ``[MODULE-BASENAME]`` (``[libc.so.6]``).
    """
    name = frame.name
    if name == "[unknown]" and frame.module:
        name = f"[{frame.module.rstrip('/').rsplit('/', 1)[-1].strip('[]')}]"
    return name.replace(";", ":").replace("\n", " ") + _SUFFIX[frame.kind]


@dataclass
class Profile:
    """The samples of a profiling run and what was measured.

    ``frequency`` is the sampling rate in Hz, ``start`` the wall-clock start
    (seconds since the epoch), ``duration`` the sampling time in seconds.
    ``lost`` counts samples whose stack could not be recorded (a full map).
    Writing a file: :meth:`write` (by the suffix) or one method per format.
    """

    samples: list[Sample] = field(default_factory=list)
    frequency: int = 99
    start: float = 0.0
    duration: float = 0.0
    lost: int = 0

    @property
    def total(self) -> int:
        """The number of samples."""
        return sum(s.count for s in self.samples)

    def folded(self) -> dict[tuple[str, ...], int]:
        """Stacks as root-first tuples of names (the process's ``comm`` first), with their counts.

        Kernel frames end in ``_[k]``, JIT frames in ``_[j]``; threads of a
        process and identical stacks are summed.
        """
        out: dict[tuple[str, ...], int] = {}
        names: dict[Frame, str] = {}
        for s in self.samples:
            key = [s.comm or str(s.pid)]
            for f in s.frames:
                name = names.get(f)
                if name is None:
                    name = names[f] = folded_name(f)
                key.append(name)
            stack = tuple(key)
            out[stack] = out.get(stack, 0) + s.count
        return out

    def merge(self, *others: Profile) -> Profile:
        """A new profile with the samples of this one and ``others`` (identical stacks summed)."""
        merged: dict[tuple[int, int, str, tuple[Frame, ...]], int] = {}
        for p in (self, *others):
            for s in p.samples:
                key = (s.pid, s.tid, s.comm, s.frames)
                merged[key] = merged.get(key, 0) + s.count
        starts = [p.start for p in (self, *others) if p.start]
        return Profile(
            [Sample(pid, tid, comm, frames, n) for (pid, tid, comm, frames), n in merged.items()],
            frequency=self.frequency,
            start=min(starts) if starts else 0.0,
            duration=max(p.duration for p in (self, *others)),
            lost=sum(p.lost for p in (self, *others)),
        )

    def filter(self, *, pid: int | Iterable[int] | None = None, tid: int | Iterable[int] | None = None) -> Profile:
        """A new profile with only the samples of the given process(es) and/or thread(s)."""
        pids = None if pid is None else ({pid} if isinstance(pid, int) else set(pid))
        tids = None if tid is None else ({tid} if isinstance(tid, int) else set(tid))
        kept = [s for s in self.samples if (pids is None or s.pid in pids) and (tids is None or s.tid in tids)]
        return Profile(kept, frequency=self.frequency, start=self.start, duration=self.duration, lost=self.lost)

    def top(self, n: int = 20, *, by: Literal["self", "total"] = "self") -> list[FunctionStats]:
        """The ``n`` functions with the most samples ``by`` self (the leaf) or total (anywhere in the stack)."""
        self_counts: dict[tuple[str, str | None], int] = {}
        totals: dict[tuple[str, str | None], int] = {}
        for s in self.samples:
            if s.frames:
                leaf = s.frames[-1]
                key = (leaf.name, leaf.module)
                self_counts[key] = self_counts.get(key, 0) + s.count
            for key in {(f.name, f.module) for f in s.frames}:
                totals[key] = totals.get(key, 0) + s.count
        rows = [FunctionStats(name, module, self_counts.get((name, module), 0), total)
                for (name, module), total in totals.items()]  # fmt: skip
        rows.sort(key=lambda r: (r.self, r.total) if by == "self" else (r.total, r.self), reverse=True)
        return rows[: max(0, n)]

    # --- writers ---------------------------------------------------------------------

    def write(self, path: str | os.PathLike[str]) -> None:
        """Writes the profile in the format the suffix of ``path`` names.

        ``.folded`` (also ``.txt``): folded stacks; ``.json``: speedscope;
        ``.pb.gz``: pprof; ``.svg``: an interactive flame graph. Raises
        ValueError naming the suffix for any other, OSError when the file
        cannot be written.
        """
        name = os.fspath(path)
        if not isinstance(name, str):
            raise TypeError(f"path must be a str path, not {path!r}")
        writer = WRITERS.get(suffix_of(name))
        if writer is None:
            raise ValueError(
                f"unknown profile format for {name!r}: the file name must end in one of {', '.join(WRITERS)}"
            )
        getattr(self, writer)(name)

    def write_folded(self, path: str | os.PathLike[str]) -> None:
        """Folded stacks, one ``frame;frame;frame count`` line each (flamegraph.pl, inferno, speedscope)."""
        lines = [";".join(stack) + f" {count}\n" for stack, count in sorted(self.folded().items())]
        _write_text(path, "".join(lines))

    def write_speedscope(self, path: str | os.PathLike[str]) -> None:
        """speedscope's JSON file format: one "sampled" profile per process."""
        from pyprobe.profile._speedscope import speedscope_json

        _write_text(path, speedscope_json(self))

    def write_pprof(self, path: str | os.PathLike[str]) -> None:
        """pprof's profile.proto, gzip-compressed (``go tool pprof``, Pyroscope, Grafana).

        Needs the ``protobuf`` package (the ``profile`` extra); raises
        ImportError saying so without it.
        """
        from pyprobe.profile._pprof import pprof_bytes

        data = pprof_bytes(self)
        with open(path, "wb") as f:
            f.write(data)

    def write_svg(self, path: str | os.PathLike[str], *, title: str = "Flame Graph") -> None:
        """An interactive flame graph (click to zoom, search, tooltips) in one self-contained SVG file."""
        import importlib

        try:
            flamegraph = importlib.import_module("pyprobe.profile.flamegraph")
        except ModuleNotFoundError as exc:
            if exc.name != "pyprobe.profile.flamegraph":
                raise
            raise NotImplementedError(
                "the SVG flame graph writer (pyprobe.profile.flamegraph) is not part of this build; "
                "write .folded and render it with flamegraph.pl or inferno"
            ) from exc
        subtitle = f"{self.total} samples at {self.frequency} Hz over {self.duration:.1f} s"
        flamegraph.write_svg(self.folded(), path, title=title, subtitle=subtitle)


WRITERS: Mapping[str, str] = {
    ".folded": "write_folded", ".txt": "write_folded", ".json": "write_speedscope", ".pb.gz": "write_pprof",
    ".svg": "write_svg",
}  # fmt: skip
"""Suffix -> the Profile method that writes it."""


def suffix_of(path: str) -> str:
    """The format suffix of ``path`` (``.pb.gz`` counts as one), lower case."""
    base = os.path.basename(path).lower()
    if base.endswith(".pb.gz"):
        return ".pb.gz"
    return os.path.splitext(base)[1]


def _write_text(path: str | os.PathLike[str], text: str) -> None:
    with open(path, "w", encoding="utf-8", errors="surrogateescape") as f:
        f.write(text)
