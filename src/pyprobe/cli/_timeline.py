"""A wall-clock (and CPU-time) timeline of a command's start-up, printed to stderr when ``PYPROBE_TIMELINE`` is set.

``PYPROBE_TIMELINE=1`` prints each phase's time since the first mark;
``PYPROBE_TIMELINE=<ns>`` (a CLOCK_MONOTONIC time, e.g. taken by whoever
started the process just before it did) prints times since then, so the
first line covers the interpreter's own start and the imports. Costs one
dict lookup per mark when unset. Imports nothing beyond ``os`` and ``time``.
"""

from __future__ import annotations

import os
import sys
import time

__all__ = ["enabled", "mark"]

_env = os.environ.get("PYPROBE_TIMELINE", "")
enabled = bool(_env) and _env != "0"
_start = int(_env) if enabled and _env.isdigit() and len(_env) > 1 else 0
_marks: list[int] = [_start] if _start else []
"""CLOCK_MONOTONIC ns of the start and of each mark since."""


def mark(phase: str) -> None:
    """Prints ``phase``, the ms since the start and since the previous mark (when enabled)."""
    if not enabled:
        return
    now = time.monotonic_ns()
    if not _marks:
        _marks.append(now)
    since, last = now - _marks[0], now - _marks[-1]
    _marks.append(now)
    cpu = time.process_time_ns() / 1e6  # this process's CPU time: what a loaded machine does not inflate
    sys.stderr.write(f"pyprobe timeline: {since / 1e6:8.2f} ms (+{last / 1e6:7.2f}) cpu {cpu:7.2f} ms  {phase}\n")
    sys.stderr.flush()
