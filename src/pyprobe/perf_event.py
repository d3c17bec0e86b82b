"""Sampling perf events (perf_event_open) to attach perf_event programs to, one per CPU.

>>> events = pyprobe.perf_event.open_sampling("cpu-clock", frequency=99)
>>> links = [prog.attach_perf_event(ev) for ev in events]
"""

from __future__ import annotations

import errno
import os

from pyprobe._ffi import lib
from pyprobe._resource import Resource
from pyprobe.errors import BpfError, UnsupportedError, error_from_errno

__all__ = ["HARDWARE_EVENTS", "SOFTWARE_EVENTS", "PerfEvent", "online_cpus", "open_sampling"]

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
    """One open perf event fd (``fd``) on ``cpu`` counting ``event``; ``close()`` closes it."""

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
