"""Samplers: what takes the stacks in the kernel and hands them to the :class:`~pyprobe.profile.Profiler` in batches.

:class:`FramePointerSampler` runs bpf/probes/profile.bpf.c: a perf_event
program on a cpu-clock event per CPU, walking stacks by frame pointer into
stack trace maps (the kernel's own unwinder, as ``perf record -g`` does).
"""

from __future__ import annotations

import contextlib
import os
import struct
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from pyprobe.link import Link
    from pyprobe.object import BpfObject
    from pyprobe.perf_event import PerfEvent

__all__ = ["FramePointerSampler", "RawStack", "Sampler", "check_frequency", "check_pids", "max_frequency"]

_KEY = struct.Struct("<IIii16s")  # struct prof_key in bpf/probes/profile.h
PROF_MAX_PIDS = 1024
_SETTLE_S = 0.002
"""After flipping the active set: long enough for a sample program running on another CPU to finish."""


@dataclass(frozen=True, slots=True)
class RawStack:
    """A distinct stack as a sampler took it, before symbolization."""

    pid: int
    tid: int
    comm: str
    user: tuple[int, ...]
    """User instruction pointers, leaf first, absolute addresses (empty when none was taken)."""
    kernel: tuple[int, ...]
    """Kernel instruction pointers, leaf first."""
    count: int


class Sampler(Protocol):
    """What the Profiler drives: the frame-pointer sampler here, the DWARF one in ``pyprobe.profile.dwarf``."""

    def start(self) -> None:
        """Enables the perf events (attaches the programs)."""

    def drain(self) -> list[RawStack]:
        """The stacks sampled since the last drain (called every interval and at stop; blocks < 100 ms)."""

    def close(self) -> None:
        """Idempotent; frees every fd, link and object."""


def max_frequency() -> int:
    """The kernel's limit on a sampling frequency (``kernel.perf_event_max_sample_rate``; 100000 when unreadable)."""
    try:
        with open("/proc/sys/kernel/perf_event_max_sample_rate") as f:
            return int(f.read(32).strip())
    except (OSError, ValueError):
        return 100000


def check_frequency(frequency: object) -> int:
    """``frequency`` as a positive int within the kernel's limit; ValueError naming it otherwise."""
    if not isinstance(frequency, int) or isinstance(frequency, bool) or frequency <= 0:
        raise ValueError(f"sampling frequency must be a positive number of Hz, not {frequency!r}")
    limit = max_frequency()
    if frequency > limit:
        raise ValueError(
            f"sampling frequency {frequency} Hz is above the kernel's limit of {limit} Hz "
            "(kernel.perf_event_max_sample_rate)"
        )
    return frequency


def stack_ips(stacks: Any, cache: dict[int, tuple[int, ...]], stack_id: int) -> tuple[int, ...]:
    """The addresses of ``stack_id`` in the stack trace map ``stacks``, cached in ``cache``: () for a
    negative id (a stack not taken) or one no longer in the map."""
    if stack_id < 0:
        return ()
    found = cache.get(stack_id)
    if found is None:
        try:
            found = tuple(stacks[stack_id])
        except KeyError:
            found = ()
        cache[stack_id] = found
    return found


def check_pids(pids: Sequence[int] | None) -> list[int] | None:
    """``pids`` checked: ints of running processes (ProcessLookupError naming a missing one), at most 1024."""
    if pids is None:
        return None
    if isinstance(pids, (str, bytes)) or not isinstance(pids, Sequence):
        raise TypeError(f"pids must be a sequence of process ids, not {pids!r}")
    out: list[int] = []
    for pid in pids:
        if not isinstance(pid, int) or isinstance(pid, bool) or pid <= 0:
            raise ValueError(f"a pid must be a positive int, not {pid!r}")
        if not os.path.exists(f"/proc/{pid}"):
            raise ProcessLookupError(f"no process with pid {pid}")
        out.append(pid)
    if len(out) > PROF_MAX_PIDS:
        raise ValueError(f"{len(out)} pids: the profiler samples at most {PROF_MAX_PIDS} processes by pid")
    return out


class FramePointerSampler:
    """Samples on-CPU stacks at ``frequency`` Hz on every CPU, walking them by frame pointer in the kernel.

    ``pids``: only these processes (and, with ``follow_forks``, the children
    they start); None: every process (the idle task only with
    ``include_idle``). ``user``/``kernel``: which stacks to take.
    ``stack_entries`` distinct stacks and ``count_entries`` distinct
    (thread, stacks) fit in one interval; beyond that, samples are counted in
    :attr:`lost`. Needs CAP_BPF and CAP_PERFMON (root); minimum kernel 4.9
    (perf_event programs), 5.5 with ``follow_forks`` (tp_btf).
    :meth:`start` raises what loading and attaching raise
    (:class:`~pyprobe.BpfPermissionError`, :class:`~pyprobe.LoadError`, ...).
    """

    def __init__(
        self,
        *,
        pids: Sequence[int] | None = None,
        frequency: int = 99,
        user: bool = True,
        kernel: bool = True,
        include_idle: bool = False,
        follow_forks: bool = True,
        stack_entries: int = 8192,
        count_entries: int = 16384,
    ) -> None:
        if not user and not kernel:
            raise ValueError("take the user stack, the kernel stack or both")
        self.pids = check_pids(pids)
        self.frequency = check_frequency(frequency)
        self.user = user
        self.kernel = kernel
        self.include_idle = include_idle
        self.follow_forks = follow_forks and self.pids is not None
        for name, value in (("stack_entries", stack_entries), ("count_entries", count_entries)):
            if not isinstance(value, int) or not 1 <= value <= 1 << 22:
                raise ValueError(f"{name} must be an int from 1 to {1 << 22}, not {value!r}")
        self.stack_entries = stack_entries
        self.count_entries = count_entries
        self.lost = 0
        """Samples whose stack or count could not be kept (a full or colliding map), over the whole run."""
        self.lost_stacks = 0
        """Samples counted without one of their stacks (the stack map was full, or two stacks collided)."""
        self.sampled = 0
        """Samples the program saw, drained so far."""
        self._obj: BpfObject | None = None
        self._events: list[PerfEvent] = []
        self._links: list[Link] = []

    def start(self) -> None:
        """Loads the program, fills the pid filter and attaches to a cpu-clock event on each online CPU."""
        import pyprobe
        from pyprobe._data import probe_file
        from pyprobe.perf_event import open_sampling

        if self._obj is not None:
            raise RuntimeError("the sampler was already started")
        obj = self._obj = pyprobe.open(probe_file("profile"))
        try:
            obj.rodata.filter_pids = self.pids is not None
            obj.rodata.want_user = self.user
            obj.rodata.want_kernel = self.kernel
            obj.rodata.include_idle = self.include_idle
            for i in (0, 1):
                obj.maps[f"stacks{i}"].max_entries = self.stack_entries
                obj.maps[f"counts{i}"].max_entries = self.count_entries
            obj.programs["profile_fork"].autoload = self.follow_forks
            obj.load()
            if self.pids is not None:
                pid_map = obj.maps["pids"]
                for pid in self.pids:
                    pid_map[pid] = 1  # type: ignore[index]
            if self.follow_forks:
                self._links.append(obj.programs["profile_fork"].attach_trace())
            self._events = open_sampling("cpu-clock", frequency=self.frequency)
            prog = obj.programs["profile_sample"]
            for ev in self._events:
                self._links.append(prog.attach_perf_event(ev))
        except BaseException:
            self.close()
            raise

    def drain(self) -> list[RawStack]:
        """Flips the active map set, then reads and clears the other one (a few ms; one syscall per stack)."""
        from pyprobe.maps import HashMap, StackTraceMap

        obj = self._obj
        if obj is None:
            raise RuntimeError("the sampler is not started")
        done = int(obj.bss.active) & 1
        obj.bss.active = done ^ 1
        time.sleep(_SETTLE_S)
        counts = obj.maps.typed(f"counts{done}", HashMap[Any, int])
        stacks = obj.maps.typed(f"stacks{done}", StackTraceMap)
        items = counts.items(batch=True)
        raw_keys = bytes(items.raw_keys)[: len(items) * _KEY.size]
        values = memoryview(bytes(items.raw_values)).cast("Q").tolist()[: len(items)]
        cache: dict[int, tuple[int, ...]] = {}
        out = []
        for (pid, tid, user_id, kernel_id, comm), n in zip(_KEY.iter_unpack(raw_keys), values, strict=True):
            name = comm.split(b"\0", 1)[0].decode("utf-8", "replace")
            out.append(
                RawStack(pid, tid, name, stack_ips(stacks, cache, user_id), stack_ips(stacks, cache, kernel_id), n)
            )
        counts.clear()
        for stack_id in list(stacks):
            with contextlib.suppress(KeyError):
                del stacks[stack_id]
        # cumulative over the run (never reset: the other set's counters are being written)
        self.lost = sum(int(n) for n in obj.bss.lost_counts)
        self.lost_stacks = sum(int(n) for n in obj.bss.lost_stacks)
        self.sampled = sum(int(n) for n in obj.bss.samples)
        return out

    def close(self) -> None:
        """Detaches, closes the perf events and frees the object; idempotent."""
        for link in self._links:
            link.detach()
        self._links = []
        for ev in self._events:
            ev.close()
        self._events = []
        if self._obj is not None:
            self._obj.close()
            self._obj = None

    def __enter__(self) -> FramePointerSampler:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
