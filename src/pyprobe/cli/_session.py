"""What every long-running command shares: the status line, the target process, the end condition."""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import time
from collections.abc import Iterator
from types import FrameType
from typing import TYPE_CHECKING, TextIO

if TYPE_CHECKING:
    from pyprobe.cli._child import HeldChild


__all__ = ["Session", "Status", "ending_signals"]

_ENDED_BY: list[str | None] = [None]
"""The name of the signal that ended the session (ending_signals), else None."""
ENDING_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
"""Signals that end a long-running command as Ctrl-C does: detach, summary, the ``-c`` command ended."""


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
        self.child: HeldChild | None = None
        if command:
            from pyprobe.cli._child import HeldChild  # only -c CMD needs it

            self.child = HeldChild(command)
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
        if _ENDED_BY[0] is not None:
            return "interrupted" if _ENDED_BY[0] == "SIGINT" else f"ended by {_ENDED_BY[0]}"
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


@contextlib.contextmanager
def ending_signals() -> Iterator[None]:
    """Within the block SIGTERM and SIGHUP end the command as Ctrl-C does (KeyboardInterrupt), once.

    SIGINT keeps Python's handler, or stays ignored when it was ignored at
    start (a background job of a non-interactive shell): SIGTERM and SIGHUP
    end the command either way. After the first of them, further ending
    signals are ignored so that detaching and reaping the ``-c`` command are
    not cut short. The previous handlers come back on exit. Main thread only.
    """

    def on_signal(signum: int, frame: FrameType | None) -> None:
        if _ENDED_BY[0] is None:
            # Remembered too: a KeyboardInterrupt raised where it is swallowed (a C callback, a
            # finalizer) still ends the session at the next Session.finished().
            _ENDED_BY[0] = signal.Signals(signum).name
            raise KeyboardInterrupt(_ENDED_BY[0])

    previous = {s: signal.getsignal(s) for s in ENDING_SIGNALS}
    for s, old in previous.items():
        if s != signal.SIGINT or old not in (signal.SIG_IGN, None):
            signal.signal(s, on_signal)
    _ENDED_BY[0] = None
    try:
        yield
    finally:
        _ENDED_BY[0] = None
        for s, old in previous.items():
            signal.signal(s, old if old is not None else signal.SIG_DFL)
