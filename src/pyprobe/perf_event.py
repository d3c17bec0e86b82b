"""Perf events (perf_event_open) to attach programs to: sampling events, one per CPU, and uprobes.

>>> events = pyprobe.perf_event.open_sampling("cpu-clock", frequency=99)
>>> links = [prog.attach_perf_event(ev) for ev in events]

A uprobe event made before its program is loaded lets the kernel's part of
the attach (registering the probe, which waits for an RCU grace period:
5-10 ms) run while the object loads:

>>> event = pyprobe.perf_event.open_uprobe("/usr/bin/bash", 0x2f3a0)   # in a thread, say
>>> link = obj.programs["on_readline"].attach_perf_event(event)
"""

from __future__ import annotations

import errno
import os
from collections.abc import Iterable

from pyprobe._ffi import ffi, lib
from pyprobe._resource import Resource
from pyprobe.errors import AttachError, BpfError, UnsupportedError, error_from_errno

__all__ = [
    "HARDWARE_EVENTS",
    "SOFTWARE_EVENTS",
    "PerfEvent",
    "online_cpus",
    "open_sampling",
    "open_uprobe",
    "open_uprobes",
]

PERF_TYPE_HARDWARE = 0
PERF_TYPE_SOFTWARE = 1

SOFTWARE_EVENTS = {
    "cpu-clock": 0, "task-clock": 1, "page-faults": 2, "context-switches": 3, "cpu-migrations": 4,
    "minor-faults": 5, "major-faults": 6,
}  # fmt: skip
HARDWARE_EVENTS = {
    "cpu-cycles": 0, "instructions": 1, "cache-references": 2, "cache-misses": 3, "branch-instructions": 4,
    "branch-misses": 5, "bus-cycles": 6,
}  # fmt: skip


class PerfEvent(Resource):
    """One open perf event fd (``fd``) on ``cpu`` (-1: every CPU, a uprobe) for ``event``; ``close()`` closes it."""

    def __init__(self, fd: int, event: str, cpu: int, pid: int) -> None:
        self.fd = fd
        self.event = event
        self.cpu = cpu
        self.pid = pid
        self._own(lambda: os.close(fd), f"perf event {event} on cpu {cpu}")

    def fileno(self) -> int:
        """The perf event's fd."""
        self._check_open()
        return self.fd

    def __repr__(self) -> str:
        return f"<PerfEvent {self.event} cpu={self.cpu} fd={self.fd}{' closed' if self.closed else ''}>"


def online_cpus() -> list[int]:
    """The CPUs that are online now (``/sys/devices/system/cpu/online``)."""
    try:
        with open("/sys/devices/system/cpu/online") as f:
            text = f.read().strip()
    except OSError:
        return list(range(os.cpu_count() or 1))
    cpus: list[int] = []
    for part in text.split(","):
        first, _, last = part.partition("-")
        cpus.extend(range(int(first), int(last or first) + 1))
    return cpus


def open_sampling(
    event: str = "cpu-clock",
    *,
    frequency: int | None = None,
    period: int | None = None,
    cpus: list[int] | None = None,
    pid: int = -1,
) -> list[PerfEvent]:
    """Opens one sampling perf event per CPU (every online CPU unless ``cpus`` is given).

    ``event`` is a software event (``cpu-clock``, ``task-clock``,
    ``page-faults``, ``context-switches`` ...) or a hardware one
    (``cpu-cycles``, ``instructions`` ...). Give ``frequency`` (Hz) or
    ``period`` (events per sample); the default is 99 Hz. ``pid`` -1 samples
    every process. The caller owns the returned events (close them, or use
    them as context managers). Raises ValueError for an unknown event,
    :class:`~pyprobe.UnsupportedError` when the machine has no such counter
    (hardware events in most VMs), :class:`~pyprobe.BpfError` otherwise.
    """
    if event in SOFTWARE_EVENTS:
        ptype, config = PERF_TYPE_SOFTWARE, SOFTWARE_EVENTS[event]
    elif event in HARDWARE_EVENTS:
        ptype, config = PERF_TYPE_HARDWARE, HARDWARE_EVENTS[event]
    else:
        known = ", ".join([*SOFTWARE_EVENTS, *HARDWARE_EVENTS])
        raise ValueError(f"unknown perf event {event!r} (known: {known})")
    if frequency is not None and period is not None:
        raise ValueError("give frequency or period, not both")
    freq = frequency if frequency is not None else (None if period is not None else 99)
    value = freq if freq is not None else period
    if not isinstance(value, int) or value <= 0:
        raise ValueError(f"frequency and period must be positive ints, not {value!r}")
    opened: list[PerfEvent] = []
    try:
        for cpu in cpus if cpus is not None else online_cpus():
            fd = int(lib.pyprobe_perf_event_open(ptype, config, value, freq is not None, pid, cpu))
            context = f"open perf event {event} on cpu {cpu}"
            if fd < 0:
                if -fd in (errno.ENOENT, errno.EOPNOTSUPP) and ptype == PERF_TYPE_HARDWARE:
                    raise UnsupportedError(-fd, f"this machine has no hardware counter for {event}", context=context)
                raise error_from_errno(-fd, context, BpfError)
            opened.append(PerfEvent(fd, event, cpu, pid))
    except BaseException:
        for ev in opened:
            ev.close()
        raise
    return opened


_UPROBE_PMU = "/sys/bus/event_source/devices/uprobe"


def _uprobe_pmu(retprobe: bool) -> tuple[int, int]:
    """The uprobe PMU's type and the ``config`` that asks it for a return probe (read only with ``retprobe``: 0
    without); an entry probe's ``config`` is 0."""
    try:
        with open(f"{_UPROBE_PMU}/type") as f:
            ptype = int(f.read())
        config = 0
        if retprobe:
            with open(f"{_UPROBE_PMU}/format/retprobe") as f:
                field, _, bit = f.read().strip().partition(":")  # "config:0"
            if field != "config" or not bit.isdigit() or int(bit) > 63:
                raise ValueError(f"unexpected {_UPROBE_PMU}/format/retprobe: {field}:{bit}")
            config = 1 << int(bit)
    except (OSError, ValueError) as exc:
        raise UnsupportedError(
            errno.EOPNOTSUPP, f"this kernel has no uprobe PMU ({exc}); Linux 4.17 added it", context="open uprobe"
        ) from None
    return ptype, config


def open_uprobe(binary: str, offset: int, *, retprobe: bool = False, pid: int = -1) -> PerfEvent:
    """Registers a uprobe (a uretprobe with ``retprobe``) at file ``offset`` of ``binary``, as a perf event.

    ``binary`` is a path; ``offset`` the function's offset in the file (the
    ``offset`` of :func:`pyprobe.symbols.find`). ``pid`` -1 traces every
    process. The probe does nothing until a program is attached to it with
    :meth:`~pyprobe.Program.attach_perf_event` (uprobe programs: ``SEC("uprobe")``,
    ``SEC("uretprobe")``); the caller owns the event (close it once attached:
    the link holds its own reference). Blocks for the kernel's registration,
    which waits for an RCU grace period unless another uprobe was registered
    just before. Raises AttachError naming the binary (missing file, offset
    outside it, no such process), UnsupportedError without the uprobe PMU
    (Linux 4.17).
    """
    return open_uprobes([(binary, offset, retprobe)], pid=pid)[0]


def open_uprobes(probes: Iterable[tuple[str, int, bool]], *, pid: int = -1) -> list[PerfEvent]:
    """:func:`open_uprobe` for each ``(binary, offset, retprobe)``, in one call into C (no GIL held between them).

    All or nothing: on the first error the events already made are closed
    and the error (as :func:`open_uprobe` raises it) names that probe.
    """
    if not isinstance(pid, int) or isinstance(pid, bool) or not -1 <= pid < 2**31:
        raise TypeError(f"open_uprobe: pid must be -1 or a process id, not {pid!r}")
    wanted = list(probes)
    paths, contexts = [], []
    for binary, offset, retprobe in wanted:
        if not isinstance(offset, int) or isinstance(offset, bool) or not 0 <= offset < 2**64:
            raise TypeError(f"open_uprobe: offset must be an int in [0, 2**64), not {offset!r}")
        event = f"{'uretprobe' if retprobe else 'uprobe'} {binary}+{offset:#x}"
        context = f"open {event}" + (f" for pid {pid}" if pid >= 0 else "")
        path = os.fsencode(binary)
        if b"\0" in path:
            raise AttachError(errno.EINVAL, f"binary path {binary!r} contains a NUL byte", context=context)
        if not os.path.isfile(path):
            raise AttachError(errno.ENOENT, f"binary {binary!r} is not a file", context=context)
        paths.append(ffi.new("char[]", path))
        contexts.append((event, context))
    count = len(wanted)
    if not count:
        return []
    ptype, return_config = _uprobe_pmu(any(retprobe for _, _, retprobe in wanted))  # the PMU's files read once
    configs = ffi.new("__u64[]", [return_config if retprobe else 0 for _, _, retprobe in wanted])
    offsets = ffi.new("__u64[]", [offset for _, offset, _ in wanted])
    out = ffi.new("int[]", count)
    lib.pyprobe_uprobe_events_open(ptype, configs, ffi.new("char *[]", paths), offsets, pid, out, count)
    events: list[PerfEvent] = []
    error: BaseException | None = None
    for fd, (event, context) in zip(out, contexts, strict=True):
        if fd >= 0:
            events.append(PerfEvent(fd, event, -1, pid))
        elif error is None:
            error = error_from_errno(-fd, context, AttachError)
    if error is not None:
        for ev in events:
            ev.close()
        raise error
    return events
