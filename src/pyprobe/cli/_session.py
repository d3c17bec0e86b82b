"""What every long-running command shares: the status line, the target process, the end condition."""

from __future__ import annotations

import os
import sys
import time
from typing import TextIO

from pyprobe.cli._child import HeldChild

__all__ = ["Session", "Status"]


class Status:
    """A one-line progress indicator on stderr (rewritten in place on a terminal, silent otherwise)."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self._stream = stream or sys.stderr
        self._tty = self._stream.isatty()
        self._shown = False

    def update(self, text: str) -> None:
        """Shows ``text`` in place of the previous status."""
        if self._tty:
            self._stream.write(f"\r\033[K{text}")
            self._stream.flush()
            self._shown = True

    def done(self, text: str) -> None:
        """Replaces the status with a final line."""
        if self._shown:
            self._stream.write("\r\033[K")
        self._stream.write(text + "\n")
        self._stream.flush()
        self._shown = False


class Session:
    """The traced process (``-p PID`` or ``-c CMD``) and when tracing ends (``--duration``, target exit)."""

    def __init__(self, pid: int | None, command: str | None, duration: float | None) -> None:
        if pid is not None and command is not None:
            raise ValueError("give -p PID or -c CMD, not both")
        if pid is not None and not os.path.exists(f"/proc/{pid}"):
            raise ProcessLookupError(f"no process {pid}")
        self.child = HeldChild(command) if command else None
        self.pid = self.child.pid if self.child else pid
        self.duration = duration
        self._start = time.monotonic()

    @property
    def attach_pid(self) -> int:
        """The pid to give attach_uprobe (-1: every process)."""
        return -1 if self.pid is None else self.pid

    def start(self) -> None:
        """Starts the clock and lets a held command run."""
        self._start = time.monotonic()
        if self.child:
            self.child.release()

    def finished(self) -> str | None:
        """Why tracing should stop now, or None to go on."""
        if self.duration is not None and time.monotonic() - self._start >= self.duration:
            return "duration reached"
        if self.child is not None:
            status = self.child.poll()
            if status is not None:
                return f"command exited with status {status}"
        elif self.pid is not None and not os.path.exists(f"/proc/{self.pid}"):
            return f"process {self.pid} exited"
        return None

    def close(self) -> None:
        """Stops a command still running."""
        if self.child is not None:
            self.child.stop()
