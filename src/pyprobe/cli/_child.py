"""``-c CMD``: start a command held before exec until the probes are attached."""

from __future__ import annotations

import contextlib
import os

__all__ = ["HeldChild"]


class HeldChild:
    """A forked child that blocks on a pipe, then execs ``argv`` once :meth:`release` is called.

    Its pid is known (and stays the same across exec) before it runs any of
    the command, so probes attached with that pid see every call. Raises
    FileNotFoundError naming the command when it is not found.
    """

    def __init__(self, command: str) -> None:
        import shlex  # imported here: only -c needs them
        import shutil
        import signal

        argv = shlex.split(command)
        if not argv:
            raise ValueError("-c needs a command")
        exe = argv[0] if "/" in argv[0] else shutil.which(argv[0])
        if exe is None or not os.path.exists(exe):
            raise FileNotFoundError(f"command {argv[0]!r} not found")
        self.argv = argv
        self.executable = os.path.realpath(exe)
        read_end, self._write_end = os.pipe()
        pid = os.fork()
        if pid == 0:  # child: wait for the go, then become the command
            try:
                os.close(self._write_end)
                go = os.read(read_end, 1)
                os.close(read_end)
                if go == b"x":
                    signal.signal(signal.SIGINT, signal.SIG_DFL)
                    os.execv(exe, argv)
            finally:
                os._exit(127)
        os.close(read_end)
        self.pid = pid
        self._status: int | None = None

    def release(self) -> None:
        """Lets the command run."""
        if self._write_end >= 0:
            os.write(self._write_end, b"x")
            os.close(self._write_end)
            self._write_end = -1

    def poll(self) -> int | None:
        """The exit status once the command has ended, else None (does not block)."""
        if self._status is None:
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                self._status = os.waitstatus_to_exitcode(status)
        return self._status

    def stop(self) -> None:
        """Ends the command (SIGTERM if it still runs, or cancels it if never released) and reaps it."""
        if self._write_end >= 0:
            os.close(self._write_end)  # the child reads EOF and exits without running the command
            self._write_end = -1
        if self.poll() is None:
            import signal

            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signal.SIGTERM)
            _, status = os.waitpid(self.pid, 0)
            self._status = os.waitstatus_to_exitcode(status)
