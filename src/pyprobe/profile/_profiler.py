"""The :class:`Profiler`: starts a sampler, drains and symbolizes its stacks every interval, returns a Profile."""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Literal

from pyprobe.profile._model import Frame, Profile, Sample
from pyprobe.profile._sampler import RawStack, Sampler, check_frequency, check_pids
from pyprobe.profile._symbolize import Symbolizer

if TYPE_CHECKING:
    from types import TracebackType

__all__ = ["CallGraph", "Profiler"]

WATCH_S = 0.1
"""How often the mappings of the processes asked for (pids, the command) are read between drains."""

CallGraph = Literal["fp", "dwarf"]
"""How user stacks are walked: by frame pointer in the kernel, or from a copy of the stack with DWARF CFI."""


class Profiler:
    """A sampling CPU profiler: on-CPU stacks of every CPU at ``frequency`` Hz, symbolized as they come.

    ``pids``: profile only these processes (and the children they start);
    ``command``: start this program (argv list, or a shell-like string) held
    until sampling begins and profile it; neither: every process.
    ``user``/``kernel`` choose the stacks taken; ``call_graph`` how user
    stacks are walked: ``"fp"`` (frame pointers, in the kernel) or
    ``"dwarf"`` (a copy of the stack unwound with ``.eh_frame``, for
    binaries built without frame pointers; :mod:`pyprobe.profile.dwarf`).
    Every ``interval`` seconds a background thread drains the maps and
    symbolizes the new stacks, reading each process's mappings while it
    still runs, so processes that exit meanwhile keep their names.

    ``start()`` / ``stop()`` (returns the :class:`Profile`), or as a context
    manager (``profiler.profile`` after the block); :meth:`run` samples until
    ``duration``, the command's exit or Ctrl-C. Needs root (CAP_BPF and
    CAP_PERFMON); minimum kernel 4.9 (5.5 with ``pids``: children are
    followed through a tp_btf program). Raises ValueError for a bad
    frequency or option, ProcessLookupError naming a pid that does not
    exist, FileNotFoundError for a command not found, and what loading and
    attaching raise (:class:`~pyprobe.BpfPermissionError`, ...).
    """

    def __init__(
        self,
        *,
        pids: Sequence[int] | None = None,
        command: Sequence[str] | str | None = None,
        frequency: int = 99,
        duration: float | None = None,
        user: bool = True,
        kernel: bool = True,
        call_graph: CallGraph = "fp",
        interval: float = 1.0,
        include_idle: bool = False,
    ) -> None:
        if pids is not None and command is not None:
            raise ValueError("give pids or a command, not both")
        if call_graph not in ("fp", "dwarf"):
            raise ValueError(f"call_graph must be 'fp' or 'dwarf', not {call_graph!r}")
        if not isinstance(interval, (int, float)) or not 0.05 <= interval <= 3600:
            raise ValueError(f"interval must be from 0.05 to 3600 seconds, not {interval!r}")
        if duration is not None and (not isinstance(duration, (int, float)) or duration <= 0):
            raise ValueError(f"duration must be a positive number of seconds, not {duration!r}")
        if not user and not kernel:
            raise ValueError("take the user stack, the kernel stack or both (user or kernel must be True)")
        self.pids = check_pids(pids)
        self.frequency = check_frequency(frequency)
        self.command = command
        self.duration = duration
        self.user = user
        self.kernel = kernel
        self.call_graph: CallGraph = call_graph
        self.interval = float(interval)
        self.include_idle = include_idle
        self.profile: Profile | None = None
        """The result, once stopped."""
        self.child_pid: int | None = None
        """The pid of ``command`` once started."""
        self._child: object = None
        self._sampler: Sampler | None = None
        self._symbolizer = Symbolizer()
        self._counts: dict[tuple[int, int, str, tuple[Frame, ...]], int] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None
        self._start_wall = 0.0
        self._start = 0.0
        self.samples = 0
        """Samples drained so far (for a progress line)."""

    # --- life cycle -----------------------------------------------------------------

    def _make_sampler(self, pids: list[int] | None) -> Sampler:
        if self.call_graph == "dwarf":
            import importlib

            try:
                dwarf = importlib.import_module("pyprobe.profile.dwarf")
            except ModuleNotFoundError as exc:
                if exc.name != "pyprobe.profile.dwarf":
                    raise
                raise ValueError("call_graph='dwarf' needs pyprobe.profile.dwarf, which this build lacks") from None
            sampler: Sampler = dwarf.DwarfSampler(
                pids=pids, frequency=self.frequency, user=self.user, kernel=self.kernel
            )
            return sampler
        from pyprobe.profile._sampler import FramePointerSampler

        return FramePointerSampler(pids=pids, frequency=self.frequency, user=self.user, kernel=self.kernel,
                                   include_idle=self.include_idle)  # fmt: skip

    def start(self) -> None:
        """Starts sampling (and the command, once the probes are attached) and the drain thread."""
        if self._sampler is not None or self.profile is not None:
            raise RuntimeError("a Profiler runs once: make a new one")
        pids = self.pids
        child = None
        if self.command is not None:
            from pyprobe.cli._child import HeldChild

            command = self.command
            if not isinstance(command, str):
                import shlex

                command = shlex.join(command)
            child = HeldChild(command)
            self._child = child
            self.child_pid = child.pid
            pids = [child.pid]
        try:
            sampler = self._make_sampler(pids)
            self._sampler = sampler
            sampler.start()
        except BaseException:
            self._close()
            raise
        self._start_wall = time.time()
        self._start = time.monotonic()
        if child is not None:
            child.release()
        if self.kernel:  # the kernel's symbols are read while the first interval samples
            threading.Thread(target=Symbolizer.warm, kwargs={"kernel": True}, name="pyprobe-profile-warm",
                             daemon=True).start()  # fmt: skip
        self._thread = threading.Thread(target=self._drain_loop, name="pyprobe-profile-drain", daemon=True)
        self._thread.start()

    def _drain_loop(self) -> None:
        # The processes asked for have their mappings read every WATCH_S between drains, so one that
        # exits before the next drain is still symbolized from the mappings it had.
        watched = self.pids or ([self.child_pid] if self.child_pid else [])
        next_drain = self._start + self.interval
        try:
            while not self._stop.wait(max(0.0, min(WATCH_S, next_drain - time.monotonic()))):
                if time.monotonic() >= next_drain:
                    self._drain()
                    next_drain = max(next_drain + self.interval, time.monotonic() + WATCH_S)
                elif watched:
                    with self._lock:
                        for pid in watched:
                            self._symbolizer.watch(pid, force=True)
        except BaseException as exc:  # kept and raised by stop()
            self._error = exc

    def _drain(self) -> None:
        sampler = self._sampler
        if sampler is None:
            return
        with self._lock:
            raw = sampler.drain()
            self._add(raw)

    def _add(self, raw: list[RawStack]) -> None:
        sym = self._symbolizer
        sym.new_generation()
        for pid in {r.pid for r in raw if r.user}:
            sym.watch(pid)
        counts = self._counts
        for r in raw:
            user = sym.user_frames(r.pid, r.user) if r.user else []
            kernel = sym.kernel_frames(r.kernel) if r.kernel else []
            frames = (*reversed(user), *reversed(kernel))
            key = (r.pid, r.tid, r.comm, frames)
            counts[key] = counts.get(key, 0) + r.count
            self.samples += r.count

    def stop(self) -> Profile:
        """Stops sampling, drains the last samples and returns the :class:`Profile` (also in ``.profile``).

        Ends a command still running (SIGTERM). Re-raises an error the
        drain thread met.
        """
        if self.profile is not None:
            return self.profile
        if self._sampler is None:
            raise RuntimeError("the profiler was not started")
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        duration = time.monotonic() - self._start
        try:
            if self._error is None:
                self._drain()
        finally:
            self._close()
        if self._error is not None:
            raise self._error
        lost = int(getattr(self._sampler, "lost", 0))
        samples = [Sample(pid, tid, comm, frames, n) for (pid, tid, comm, frames), n in self._counts.items()]
        samples.sort(key=lambda s: -s.count)
        self.profile = Profile(samples, frequency=self.frequency, start=self._start_wall, duration=duration,
                               lost=lost)  # fmt: skip
        return self.profile

    def _close(self) -> None:
        if self._sampler is not None:
            self._sampler.close()
        child = self._child
        if child is not None:
            from pyprobe.cli._child import HeldChild

            assert isinstance(child, HeldChild)
            child.stop()

    def finished(self) -> str | None:
        """Why sampling should end now (duration reached, the command or every process exited), or None."""
        import os

        if self.duration is not None and time.monotonic() - self._start >= self.duration:
            return "duration reached"
        child = self._child
        if child is not None:
            from pyprobe.cli._child import HeldChild

            assert isinstance(child, HeldChild)
            status = child.poll()
            if status is not None:
                return f"command exited with status {status}"
        elif self.pids and not any(os.path.exists(f"/proc/{p}") for p in self.pids):
            return "the processes exited"
        if self._error is not None:
            return f"drain failed: {self._error}"
        return None

    def run(self) -> Profile:
        """Starts, samples until :meth:`finished` says so or Ctrl-C (KeyboardInterrupt), and returns the Profile.

        Without ``duration``, ``pids`` or ``command`` it runs until Ctrl-C.
        """
        self.start()
        try:
            while self.finished() is None:
                time.sleep(0.05)
        except KeyboardInterrupt:
            pass
        return self.stop()

    @property
    def elapsed(self) -> float:
        """Seconds since sampling started."""
        return time.monotonic() - self._start if self._start else 0.0

    def __enter__(self) -> Profiler:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if exc_type is None or exc_type is KeyboardInterrupt:
            self.stop()
        else:
            self._stop.set()
            if self._thread is not None:
                self._thread.join()
            self._close()
