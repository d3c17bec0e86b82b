"""Counting openat() calls: load the probe, let it count for a while, read its map."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from opencount.opencount_skel import OpencountSkeleton

__all__ = ["OpenCount", "count_opens"]


@dataclass(frozen=True)
class OpenCount:
    """The openat() calls one process made while the probe ran."""

    pid: int
    comm: str
    count: int
    last_path: str


def _text(raw: bytes) -> str:
    return raw.split(b"\0", 1)[0].decode("utf-8", "replace")


def count_opens(
    duration: float, *, pid: int = 0, on_attached: Callable[[], None] | None = None
) -> tuple[list[OpenCount], int]:
    """Counts openat() calls per process for ``duration`` seconds (all processes, or only ``pid``).

    Blocks for ``duration`` seconds after the probe is attached (``on_attached``
    is called then). Returns the counts, most calls first, and the number of
    processes the probe could not record because its map was full. The probe is
    detached and freed before it returns. Raises pyprobe.BpfPermissionError
    without CAP_BPF and CAP_PERFMON, pyprobe.LoadError or AttachError when the
    kernel refuses the probe.
    """
    with OpencountSkeleton().open() as skel:
        skel.rodata.target_pid = pid
        skel.load()
        skel.attach()
        if on_attached is not None:
            on_attached()
        time.sleep(duration)
        skel.detach()
        counts = [
            OpenCount(pid=tgid, comm=_text(stats.comm), count=stats.count, last_path=_text(stats.last_path))
            for tgid, stats in skel.maps.counts.items()
        ]
        dropped = skel.bss.dropped
    counts.sort(key=lambda c: (-c.count, c.pid))
    return counts, dropped
