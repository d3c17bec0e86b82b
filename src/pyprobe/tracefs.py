"""bpf_printk output: following tracefs's trace_pipe and parsing its lines.

tracefs lives at /sys/kernel/tracing (Linux 4.1), or at
/sys/kernel/debug/tracing where only debugfs is mounted (older systems). The
library mounts nothing: mount it with ``mount -t tracefs tracefs
/sys/kernel/tracing`` (root).
"""

from __future__ import annotations

import errno
import math
import os
import re
import select
import threading
import time
from collections.abc import Iterable, Iterator
from typing import NamedTuple

from pyprobe.errors import BpfError

__all__ = ["TraceLine", "parse_line", "trace_pipe", "tracefs_root"]

TRACEFS_ROOTS = ("/sys/kernel/tracing", "/sys/kernel/debug/tracing")
_SLICE = 0.1  # longest wait before Python checks for signals (Ctrl-C)

# "  python3-1234    (   1234) [001] d..31 12345.678901: bpf_trace_printk: hello"
# The tgid column appears with the record-tgid option, the flags column with irq-info (the default).
_LINE = re.compile(
    r"^\s*(?P<task>.+?)-(?P<pid>\d+)\s+(?:\(\s*[\d-]+\)\s+)?\[(?P<cpu>\d+)\]\s+"
    r"(?:(?P<flags>\S+)\s+)?"
    r"(?P<ts>\d+\.\d+):\s+(?P<event>[^:\s]+):\s?(?P<message>.*)$"
)


class TraceLine(NamedTuple):
    """One line of trace_pipe: the task (comm) and pid that wrote it, the CPU, the timestamp (s), the message.

    For bpf_printk output the message is the printed text; for other trace
    events it starts with the event's name. A line that does not parse has
    ``pid == 0``, ``cpu == -1`` and the whole line as its message.
    """

    task: str
    pid: int
    cpu: int
    timestamp: float
    message: str


def parse_line(line: str) -> TraceLine:
    """Parses one trace_pipe line (without its newline)."""
    m = _LINE.match(line)
    if m is None:
        return TraceLine("", 0, -1, 0.0, line)
    event, message = m["event"], m["message"]
    if event not in ("bpf_trace_printk", "bpf_trace_vprintk"):
        message = f"{event}: {message}"
    return TraceLine(m["task"].strip(), int(m["pid"]), int(m["cpu"]), float(m["ts"]), message)


def tracefs_root(candidates: Iterable[str] = TRACEFS_ROOTS) -> str:
    """The directory where tracefs is mounted (the first candidate holding a trace_pipe).

    Looks at /sys/kernel/tracing, then debugfs's /sys/kernel/debug/tracing,
    then any tracefs mount in /proc/mounts. Raises :class:`BpfError`
    (ENOENT) with the mount command when tracefs is not mounted.
    """
    candidates = list(candidates)
    for root in candidates:
        if os.path.exists(os.path.join(root, "trace_pipe")):
            return root
    try:
        with open("/proc/mounts") as mounts:
            for line in mounts:
                fields = line.split()
                if len(fields) > 2 and fields[2] == "tracefs" and os.path.exists(f"{fields[1]}/trace_pipe"):
                    return fields[1]
    except OSError:
        pass
    raise BpfError(
        errno.ENOENT,
        "tracefs is not mounted",
        context=f"find trace_pipe (looked in {', '.join(candidates)})",
        hint="mount it as root: mount -t tracefs tracefs /sys/kernel/tracing",
    )


def follow_lines(fd: int, timeout: float | None, stop: threading.Event | None = None) -> Iterator[str]:
    """Yields complete lines read from ``fd`` (non-blocking), holding back a partial line until its end comes.

    Ends once ``timeout`` seconds pass with no complete line (None: never),
    or once ``stop`` is set. Waits in slices of at most 0.1 s, so Ctrl-C (or
    ``stop``) ends it within that.
    """
    poller = select.poll()
    poller.register(fd, select.POLLIN)
    partial = b""
    last = time.monotonic()
    while True:
        remaining = math.inf if timeout is None else last + timeout - time.monotonic()
        if remaining <= 0 or (stop is not None and stop.is_set()):
            return
        if not poller.poll(max(1, math.ceil(min(remaining, _SLICE) * 1000))):
            continue
        try:
            chunk = os.read(fd, 65536)
        except BlockingIOError:
            continue
        if not chunk:  # writer gone (a pipe): nothing more will come
            if partial:
                yield partial.decode("utf-8", "replace")
            return
        lines = (partial + chunk).split(b"\n")
        partial = lines.pop()
        for line in lines:
            yield line.decode("utf-8", "replace")
        if lines:
            last = time.monotonic()


def trace_pipe(timeout: float | None = None, *, stop: threading.Event | None = None) -> Iterator[TraceLine]:
    """Follows tracefs's trace_pipe (bpf_printk output), yielding parsed :class:`TraceLine` s.

    Ends once ``timeout`` seconds pass with no line (None follows forever),
    or within 0.1 s of ``stop`` being set: a thread that follows the pipe
    keeps it open until told to end (reopening it would show up in the opens
    a probe traces).
    Reading trace_pipe consumes its lines: another reader of it gets the
    others, and recent kernels let only one reader open it. Blocks between
    lines (Ctrl-C interrupts within 0.1 s). Raises :class:`BpfError` when
    tracefs is not mounted or trace_pipe is busy (EBUSY), and the OSError of
    opening trace_pipe otherwise (PermissionError without root).
    """
    if timeout is not None and (not isinstance(timeout, (int, float)) or math.isnan(timeout) or timeout < 0):
        raise ValueError(f"trace_pipe timeout must be None or a number of seconds >= 0, not {timeout!r}")
    path = os.path.join(tracefs_root(), "trace_pipe")
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as exc:
        if exc.errno != errno.EBUSY:
            raise
        raise BpfError(
            errno.EBUSY,
            "trace_pipe is open in another reader (this kernel allows one at a time)",
            context=f"open {path}",
            hint="stop the other reader (another process, or an unclosed trace_pipe() iterator)",
        ) from exc
    try:
        for line in follow_lines(fd, timeout, stop):
            if line:
                yield parse_line(line)
    finally:
        os.close(fd)
