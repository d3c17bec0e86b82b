"""What the ring buffer and perf buffer readers share: waiting, the four ways to consume, and pending events.

A reader takes events from the kernel in batches (C code in the extension
copies them out in one call) and hands them to Python in one of four ways:
a callback per event (``poll``, ``consume``), an iterator (``events``), an
async iterator (``aevents``) and whole batches (``read_batch``). Events taken
from the kernel but not handed out yet (a callback raised, a loop broke off)
are kept in order and come first next time: nothing is dropped silently.
"""

from __future__ import annotations

import contextlib
import errno
import os
import select
import threading
import time
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterator
from operator import length_hint
from typing import Any, Generic, TypeVar

from pyprobe._resource import Resource
from pyprobe.batch import Batch
from pyprobe.errors import BpfError

__all__ = ["EventReader", "ReaderBusyError", "Source"]

E = TypeVar("E")
"""The Python type events decode to."""

CHUNK = 4096
"""Events taken from the kernel per step of poll()/consume()/events()."""
MAX_PER_CALL = 1 << 20
"""poll() and consume() return after this many events even when more keep coming."""
MAX_SLICE = 0.1
"""The longest a wait lasts before Python checks for signals (Ctrl-C) and the ring's fill."""


class ReaderBusyError(BpfError, RuntimeError):
    """Another thread is reading from this reader now (in poll, consume, read_batch, events or aevents).

    Two threads draining one reader would each get some events, or the same
    events twice; one reader is read by one thread at a time. The thread
    reading may call the reader again (from a callback); another thread gets
    this error at once instead of waiting.
    """


ReaderBusyError.__module__ = "pyprobe"


class _Turn:
    """Lets one thread at a time read a reader; re-entrant for that thread, refusing (not waiting for) others.

    The claim is one atomic ``dict.setdefault``, so an exception raised
    asynchronously in the reading thread (Ctrl-C's KeyboardInterrupt) between
    two steps here can at worst leave the claim to that thread, which its
    next read takes back, never to nobody.
    """

    __slots__ = ("_claim", "depth", "owner", "what")

    def __init__(self, what: str) -> None:
        self._claim: dict[str, int] = {}
        self.owner = 0
        self.depth = 0
        self.what = what

    def __enter__(self) -> None:
        me = threading.get_ident()
        if self.owner == me:
            self.depth += 1
            return
        if self._claim.setdefault("owner", me) != me:
            raise ReaderBusyError(
                errno.EBUSY, "another thread is reading from it: read a reader from one thread at a time",
                context=self.what,
            )  # fmt: skip
        self.owner = me
        self.depth = 1

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        self.depth -= 1
        if self.depth <= 0:
            self.depth = 0
            self.owner = 0
            self._claim.pop("owner", None)


def _close_reader(release: Callable[[], None], wake_fd: int) -> None:
    try:
        release()
    finally:
        os.close(wake_fd)


class Source:
    """One map a reader drains, with its callback and event type."""

    __slots__ = ("callback", "event_type", "name")

    def __init__(self, name: str, callback: Callable[[Any], object] | None, event_type: Any) -> None:
        self.name = name
        self.callback = callback
        self.event_type = event_type


def check_callback(callback: object, what: str) -> None:
    if callback is not None and not callable(callback):
        raise TypeError(f"{what} must be callable or None, not {type(callback).__name__}")


def check_interval(value: object) -> float:
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not 0 < value <= 60:
        raise ValueError(f"drain_interval must be a number of seconds in (0, 60], not {value!r}")
    return float(value)


def check_timeout(timeout: object, what: str) -> float | None:
    if timeout is None:
        return None
    if not isinstance(timeout, (int, float)) or isinstance(timeout, bool) or not timeout >= 0:  # NaN too
        raise ValueError(f"{what} timeout must be None or a number of seconds >= 0, not {timeout!r}")
    return float(timeout)


class EventReader(Resource, Generic[E]):
    """Base of :class:`~pyprobe.RingBuffer` and :class:`~pyprobe.PerfBuffer`; ``E`` is the type events decode to.

    One thread reads at a time: a second thread calling a reading method
    while the first is in one gets :class:`ReaderBusyError`. ``close()``
    may come from any thread: a read in flight is woken, stops with
    :class:`~pyprobe.ClosedError` at its next step, and the reader's memory
    and fds are freed when it has left.
    """

    _drain_interval: float
    _poller: Any = None
    _wake_fd = -1

    def _init_reader(self, drain_interval: float) -> None:
        self._drain_interval = check_interval(drain_interval)
        self._pending: deque[tuple[Source, Batch[Any]]] = deque()
        self._turn = _Turn(type(self).__name__)

    def _own_reader(self, release: Callable[[], None], what: str) -> None:
        """Owns the reader's resources and an eventfd that close() signals to end a wait in another thread."""
        wake = os.eventfd(0, os.EFD_NONBLOCK | os.EFD_CLOEXEC)
        self._wake_fd = wake
        self._own(lambda: _close_reader(release, wake), what)
        self._guard.wake = lambda: os.eventfd_write(wake, 1)
        self._turn.what = what

    # -- subclasses ----------------------------------------------------------
    def _sources(self) -> list[Source]:
        raise NotImplementedError

    def _read(self, max_events: int, force: bool) -> tuple[Source, Batch[Any]] | None:
        """One batch from the kernel without waiting, or None when nothing is there.

        Without ``force`` a reader may leave alone a source it recently
        emptied and that the kernel has not signalled since (events submitted
        without a wakeup wait for the next signal or ``drain_interval``).
        """
        raise NotImplementedError

    def fileno(self) -> int:
        """The fd that turns readable when the kernel signals events (an epoll fd), for selectors and asyncio."""
        raise NotImplementedError

    # -- the machinery -------------------------------------------------------
    def _take(self, max_events: int, force: bool = True) -> tuple[Source, Batch[Any]] | None:
        if self._pending:
            source, batch = self._pending[0]
            if len(batch) <= max_events:
                self._pending.popleft()
                return source, batch
            self._pending[0] = (source, batch[max_events:])
            return source, batch[:max_events]
        with self._guard:  # ClosedError once closed; holds off the release while C reads
            return self._read(max_events, force)

    def _wait(self, timeout: float) -> None:
        """Waits up to ``timeout`` s (GIL released) for the kernel's wakeup; Ctrl-C raises KeyboardInterrupt.

        close() in another thread ends the wait at once (through the wake eventfd).
        """
        with self._guard:
            if self._poller is None:
                self._poller = select.poll()
                self._poller.register(self.fileno(), select.POLLIN)
                self._poller.register(self._wake_fd, select.POLLIN)
            self._poller.poll(max(1, -int(-timeout * 1000 // 1)))  # ms, rounded up

    def _next(self, max_events: int, timeout: float | None) -> tuple[Source, Batch[Any]] | None:
        deadline = None if timeout is None else time.monotonic() + timeout
        step = min(self._drain_interval, MAX_SLICE)
        while True:
            got = self._take(max_events, force=False)
            if got is not None:
                return got
            remaining = float("inf") if deadline is None else deadline - time.monotonic()
            if remaining <= 0:
                return self._take(max_events)  # at the deadline, whatever is there
            self._wait(min(remaining, step))

    def _keep(self, source: Source, batch: Batch[Any], rest: int) -> None:
        if rest > 0:
            self._pending.appendleft((source, batch[len(batch) - rest :]))

    def _dispatch(self, source: Source, batch: Batch[Any]) -> int:
        callback = source.callback
        assert callback is not None
        # The events are made in C (by ctypes, for fixed-size structs) a run
        # at a time and handed out by a plain loop: CPython calls a Python
        # callback from a Python loop without a C frame per call.
        run: tuple[int, Iterator[Any]] = (0, iter(()))  # (index past its last event, its events)
        try:
            for run in batch._pieces():
                for event in run[1]:
                    callback(event)
        except BaseException:
            self._keep(source, batch, len(batch) - run[0] + length_hint(run[1]))
            raise
        return len(batch)

    def _check_callbacks(self) -> None:
        self._check_open()
        for source in self._sources():
            if source.callback is None:
                raise TypeError(
                    f"map '{source.name}' has no callback: give one to the reader (or add()), "
                    "or use events() or read_batch()"
                )

    def _drain(self, handled: int, force: bool) -> int:
        while handled < MAX_PER_CALL:
            got = self._take(CHUNK, force)
            if got is None:
                break
            handled += self._dispatch(*got)
        return handled

    # -- public --------------------------------------------------------------
    def poll(self, timeout: float | None = None) -> int:
        """Waits up to ``timeout`` seconds (None: until an event comes) and calls the callback for every event.

        Returns the number of events handled (0 when the timeout passed).
        Blocks with the GIL released; Ctrl-C interrupts the wait within
        0.1 s. A callback that raises stops the poll and the exception
        propagates; the events after it are kept for the next call. Raises
        TypeError when a map has no callback.
        """
        wait = check_timeout(timeout, "poll()")
        self._check_callbacks()
        with self._turn:
            got = self._next(CHUNK, wait)
            if got is None:
                return 0
            return self._drain(self._dispatch(*got), force=False)

    def consume(self) -> int:
        """Calls the callback for every event available now, without waiting; returns how many.

        Same exception rules as :meth:`poll`.
        """
        self._check_callbacks()
        with self._turn:
            return self._drain(0, force=True)

    def events(self, timeout: float | None = None) -> Iterator[E]:
        """Yields events as they come; ends once ``timeout`` seconds pass with no event (None: never ends).

        Callbacks are not called. Blocks between events with the GIL released;
        Ctrl-C interrupts the wait within 0.1 s. Events taken from the kernel
        but not yielded when the loop stops early stay for the next read.
        """
        wait = check_timeout(timeout, "events()")
        while True:
            with self._turn:  # per step: the loop body between events runs outside
                got = self._next(CHUNK, wait)
            if got is None:
                return
            source, batch = got
            run: tuple[int, Iterator[Any]] = (0, iter(()))
            try:
                for run in batch._pieces():
                    yield from run[1]
            finally:
                self._keep(source, batch, len(batch) - run[0] + length_hint(run[1]))

    async def aevents(self, *, timeout: float | None = None) -> AsyncIterator[E]:
        """``async for`` over events; ends once ``timeout`` seconds pass with no event (None: never ends).

        Built on the running loop's ``add_reader(fileno())``; it never blocks
        the loop and runs no thread. Also drains every ``drain_interval``
        seconds for producers that submit without waking the reader.
        """
        import asyncio  # only here: importing asyncio costs about 20 ms

        wait = check_timeout(timeout, "aevents()")

        loop = asyncio.get_running_loop()
        ready = asyncio.Event()
        fd = self.fileno()
        loop.add_reader(fd, ready.set)
        try:
            last = loop.time()
            while True:
                with self._turn:
                    got = self._take(CHUNK)
                if got is None:
                    now = loop.time()
                    if wait is not None and now - last >= wait:
                        return
                    step = self._drain_interval if wait is None else min(self._drain_interval, last + wait - now)
                    ready.clear()
                    with contextlib.suppress(asyncio.TimeoutError):
                        await asyncio.wait_for(ready.wait(), max(step, 0.001))
                    continue
                source, batch = got
                run: tuple[int, Iterator[Any]] = (0, iter(()))
                try:
                    for run in batch._pieces():
                        for event in run[1]:
                            yield event
                finally:
                    self._keep(source, batch, len(batch) - run[0] + length_hint(run[1]))
                last = loop.time()
        finally:
            loop.remove_reader(fd)

    def read_batch(self, max_events: int = 65536, *, timeout: float | None = None) -> Batch[E]:
        """Up to ``max_events`` events of one map as a :class:`Batch`, with no Python call per event.

        Waits up to ``timeout`` seconds (None: until an event comes; 0: not at
        all) and returns an empty batch when none came. Blocks with the GIL
        released; Ctrl-C interrupts the wait within 0.1 s.
        """
        if not isinstance(max_events, int) or isinstance(max_events, bool) or max_events < 1:
            raise ValueError(f"max_events must be a positive int, not {max_events!r}")
        wait = check_timeout(timeout, "read_batch()")
        with self._turn:
            got = self._next(max_events, wait)
        if got is None:
            sources = self._sources()
            first = sources[0] if sources else Source("", None, None)
            return Batch.empty(first.event_type, first.name)
        return got[1]

    @property
    def pending(self) -> int:
        """Events taken from the kernel and not handed out yet (after a callback raised or a loop broke off)."""
        return sum(len(batch) for _, batch in self._pending)
