"""``-c CMD``: start a command held before exec until the probes are attached."""

from __future__ import annotations

import contextlib
import os
import signal

__all__ = ["HeldChild"]

PR_SET_PDEATHSIG = 1
ENDING = {signal.SIGINT, signal.SIGTERM, signal.SIGHUP}
"""SIGINT, SIGTERM, SIGHUP: the signals that end pyprobe's commands (see _session.ending_signals)."""


class HeldChild:
    """A forked child that blocks on a pipe, then execs ``argv`` once :meth:`release` is called.

    Its pid is known (and stays the same across exec) before it runs any of
    the command, so probes attached with that pid see every call. The child
    asks the kernel for SIGTERM when this process dies (PR_SET_PDEATHSIG,
    kept across exec), so the command does not outlive a pyprobe killed with
    SIGKILL; before release it exits on its own (the pipe reads EOF). Raises
    FileNotFoundError naming the command when it is not found.
    """

    def __init__(self, command: str) -> None:
        import ctypes  # imported here: only -c needs them
        import shlex
        import shutil

        argv = shlex.split(command)
        if not argv:
            raise ValueError("-c needs a command")
        exe = argv[0] if "/" in argv[0] else shutil.which(argv[0])
        if exe is None or not os.path.exists(exe):
            raise FileNotFoundError(f"command {argv[0]!r} not found")
        self.argv = argv
        self.executable = os.path.realpath(exe)
        libc = ctypes.CDLL(None, use_errno=True)
        parent = os.getpid()
        read_end, self._write_end = os.pipe()
        # Signals wait until each side is ready: the child must not run this process's handlers
        # (they raise KeyboardInterrupt), the parent must know the child's pid before one ends it.
        blocked = signal.pthread_sigmask(signal.SIG_BLOCK, ENDING)
        pid = os.fork()
        if pid == 0:  # child: wait for the go, then become the command
            try:
                for sig in ENDING:
                    if signal.getsignal(sig) is not signal.SIG_IGN:
                        signal.signal(sig, signal.SIG_DFL)
                signal.pthread_sigmask(signal.SIG_SETMASK, blocked)
                libc.prctl(PR_SET_PDEATHSIG, int(signal.SIGTERM), 0, 0, 0)
                if os.getppid() != parent:  # the parent died before prctl took effect
                    os._exit(127)
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
        try:
            signal.pthread_sigmask(signal.SIG_SETMASK, blocked)
        except BaseException:  # a signal that came meanwhile: the command must not outlive it
            self.stop()
            raise

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
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signal.SIGTERM)
            _, status = os.waitpid(self.pid, 0)
            self._status = os.waitstatus_to_exitcode(status)
