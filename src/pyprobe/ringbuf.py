"""Reading BPF ring buffers (BPF_MAP_TYPE_RINGBUF, Linux 5.8) at C speed.

The reader maps each ring's pages into the process and drains records with
C code in the extension: one call copies every committed record into a
Python-owned buffer, so Python pays nothing per event to get them.
"""

from __future__ import annotations

import contextlib
import errno
import functools
import os
import select
import sys
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar, overload

from pyprobe._ffi import ffi, lib
from pyprobe._reader import EventReader, Source, check_callback
from pyprobe.batch import Batch, resolve_event_type
from pyprobe.enums import MapType
from pyprobe.errors import MapError, check_ptr

if TYPE_CHECKING:
    from pyprobe.maps import Map, RingBufMap

__all__ = ["RingBuffer"]

E = TypeVar("E")
"""The Python type events decode to."""
T = TypeVar("T")

_raw_alloc = ffi.new_allocator(should_clear_after_alloc=False)
_POOL = 4
"""Copy buffers a reader keeps for reuse, shared by its rings: draining 8 rings copies into the same warm
memory as draining one (a pool per ring made 8 rings' copies 15% slower per event, in cold cache lines)."""
_MIN_BUFFER = 1 << 20
_FREE_REFS = 3
"""sys.getrefcount() of a pooled buffer only the pool holds: the pool's list, the loop variable, the argument."""


class _Ring(Source):
    """One ring map: its mmap'ed consumer (C), its dup'ed fd, its size and a reusable offsets array."""

    __slots__ = ("fd", "idle_since", "offsets", "offsets_len", "pool", "ptr", "size")

    def __init__(self, name: str, callback: Any, event_type: Any, fd: int, ptr: Any, pool: list[Any]) -> None:
        super().__init__(name, callback, event_type)
        self.fd = fd
        self.ptr = ptr
        self.size = int(lib.pyprobe_ring_size(ptr))
        self.offsets: Any = None
        self.offsets_len = 0
        self.pool = pool
        """The reader's copy buffers (shared by its rings: one batch at a time is filled)."""
        self.idle_since: float | None = None
        """When a drain last caught up with the producer, while no kernel wakeup came since; else None."""

    def buffer(self, want: int) -> tuple[Any, int]:
        """A buffer of at least ``want`` bytes that nothing outside the pool references, and its size.

        A batch references its buffer (through an ffi.buffer and memoryviews,
        and numpy arrays made from them) for as long as it or anything made
        from it lives; a buffer only the pool holds is free to fill again.
        """
        pool = self.pool
        for buf in pool:
            if sys.getrefcount(buf) <= _FREE_REFS and len(buf) >= want:
                return buf, len(buf)
        size = max(want, min(self.size, _MIN_BUFFER))
        buf = _raw_alloc("char[]", size)
        if len(pool) >= _POOL:
            pool.pop(0)  # freed once the batches holding it are gone
        pool.append(buf)
        return buf, size


def _release(rings: list[_Ring], epoll: select.epoll) -> None:
    epoll.close()
    for ring in rings:
        lib.pyprobe_ring_free(ring.ptr)
        os.close(ring.fd)
    rings.clear()


class RingBuffer(EventReader[E]):
    """A reader of one or more BPF ring buffer maps; ``RingBuffer[E]`` hands out events of type ``E``.

    ``RingBuffer(obj.maps["events"], callback, event_type="event")``; more
    rings with :meth:`add`. Events decode to ``event_type`` (a BTF type name
    of the map's object, a ctypes type, or ``bytes``); without one, to the
    map's record type (``RingBufMap.event_type``: set by ``Map.set_types`` or
    named by ``PYPROBE_EVENT_TYPE`` in BTF), else they are ``bytes``. Type
    checkers take ``E`` from a typed ``RingBufMap[E]`` or from a ctypes
    ``event_type``; a name gives ``RingBuffer[Any]``. Consume
    them with :meth:`poll`/:meth:`consume` (callbacks), :meth:`events`,
    :meth:`aevents` or :meth:`read_batch`.

    ``drain_interval`` (seconds, default 0.1) bounds how long a wait lasts
    before the reader looks at the rings on its own: events submitted with
    BPF_RB_NO_WAKEUP (see ``<pyprobe/ringbuf.h>``) are seen within it.
    Once a drain has emptied a ring, a call that may wait (:meth:`poll`,
    :meth:`events`, :meth:`read_batch` with a timeout) reads that ring again
    at the kernel's next wakeup, after ``drain_interval``, or at the end of
    its timeout, as libbpf's reader does; so records a producer adds without
    a wakeup are taken in batches, as it asked, instead of one drain each.
    :meth:`consume` and a timeout of 0 take whatever is there.

    The reader owns a dup of each map's fd and its own epoll fd: it stays
    usable after the map's object is closed, and :meth:`close` (or ``with``)
    frees it. Raises TypeError for a map that is not a ring buffer,
    :class:`MapError` for one that is not loaded. Needs Linux 5.8.
    """

    @overload
    def __init__(
        self: RingBuffer[E],
        map: RingBufMap[E],
        callback: Callable[[E], object] | None = None,
        *,
        event_type: None = None,
        drain_interval: float = 0.1,
    ) -> None: ...
    @overload
    def __init__(
        self: RingBuffer[T],
        map: Map,
        callback: Callable[[T], object] | None = None,
        *,
        event_type: type[T],
        drain_interval: float = 0.1,
    ) -> None: ...
    @overload
    def __init__(
        self: RingBuffer[Any],
        map: Map | None = None,
        callback: Callable[[Any], object] | None = None,
        *,
        event_type: str | None = None,
        drain_interval: float = 0.1,
    ) -> None: ...
    def __init__(
        self,
        map: Map | None = None,
        callback: Callable[[Any], object] | None = None,
        *,
        event_type: type[Any] | str | None = None,
        drain_interval: float = 0.1,
    ) -> None:
        self._init_reader(drain_interval)
        self._rings: list[_Ring] = []
        self._next_ring = 0
        self._maps: list[Map] = []
        self._need = ffi.new("size_t[3]")
        self._pool: list[Any] = []
        self._epoll = select.epoll()
        self._own_reader(functools.partial(_release, self._rings, self._epoll), "RingBuffer")
        self._epoll.register(self._wake_fd, select.EPOLLIN)  # close() from another thread ends a wait
        if map is not None:
            try:
                self.add(map, callback, event_type=event_type)
            except BaseException:
                self.close()
                raise
        elif callback is not None or event_type is not None:
            self.close()
            raise TypeError("RingBuffer got a callback or event_type but no map")

    def add(
        self, map: Map, callback: Callable[[E], object] | None = None, *, event_type: type[E] | str | None = None
    ) -> None:
        """Adds a ring buffer map with its own callback and event type (default: the map's record type).

        Raises TypeError for a map that is not BPF_MAP_TYPE_RINGBUF or a bad
        callback or event_type, :class:`MapError` when the map has no fd yet.
        """
        with self._guard:
            self._add(map, callback, event_type)

    def _add(self, map: Map, callback: Callable[[E], object] | None, event_type: type[E] | str | None) -> None:
        name = getattr(map, "name", None)
        mtype = getattr(map, "type", None)
        if name is None or mtype is None or not hasattr(map, "fd"):
            raise TypeError(f"RingBuffer takes a pyprobe map, not {type(map).__name__}")
        if mtype != MapType.RINGBUF:
            kind = mtype.name.lower() if isinstance(mtype, MapType) else str(mtype)
            raise TypeError(f"map '{name}' is a {kind} map, not a ringbuf map: RingBuffer reads BPF_MAP_TYPE_RINGBUF")
        check_callback(callback, f"callback of map '{name}'")
        etype = resolve_event_type(map, event_type)
        with getattr(map, "_guard", contextlib.nullcontext()):  # the number stays the map's until dup'ed
            fd = int(map.fd)
            if fd < 0:
                raise MapError(
                    errno.EBADF, "the map is not created yet: load its object first", context=f"map '{name}'"
                )
            own = os.dup(fd)
        try:
            ptr = check_ptr(lib.pyprobe_ring_new(own), f"map the ring buffer '{name}'", MapError)
        except BaseException:
            os.close(own)
            raise
        ring = _Ring(name, callback, etype, own, ptr, self._pool)
        self._rings.append(ring)
        # Edge-triggered: a wait ends at a kernel wakeup, not whenever the
        # ring holds data (records submitted without a wakeup are drained on
        # the wakeup that follows, or after drain_interval).
        self._epoll.register(own, select.EPOLLIN | select.EPOLLET)
        self._maps.append(map)  # keeps the map's object alive for BTF lookups

    def _sources(self) -> list[Source]:
        return list(self._rings)

    def fileno(self) -> int:
        """The reader's epoll fd: readable when a ring has unread data (after a kernel wakeup)."""
        self._check_open()
        return self._epoll.fileno()

    def _wait(self, timeout: float) -> None:
        """Waits up to ``timeout`` s (GIL released) for a kernel wakeup of a ring; Ctrl-C raises KeyboardInterrupt.

        close() in another thread ends the wait at once (through the wake eventfd).
        """
        with self._guard:
            ready = self._epoll.poll(max(0.001, timeout))
        for fd, _ in ready:
            for ring in self._rings:
                if ring.fd == fd:
                    ring.idle_since = None

    def _read(self, max_events: int, force: bool) -> tuple[Source, Batch[Any]] | None:
        # A ring a drain emptied is read again at its next kernel wakeup, or
        # drain_interval later, or when forced (consume(), a wait's deadline):
        # as libbpf's reader, which sleeps in epoll once it has caught up,
        # rather than chasing each record a no-wakeup producer adds.
        rings = self._rings
        count = len(rings)
        need = self._need
        drain = lib.pyprobe_ring_drain
        now = 0.0
        for step in range(count):
            ring = rings[(self._next_ring + step) % count]
            if ring.idle_since is not None and not force:
                now = now or time.monotonic()
                if now - ring.idle_since < self._drain_interval:
                    continue
            avail = lib.pyprobe_ring_avail(ring.ptr)
            if not avail:
                continue
            if ring.offsets_len <= max_events:
                ring.offsets = _raw_alloc("__u32[]", max_events + 1)
                ring.offsets_len = max_events + 1
            # The records are copied once, into memory the batch keeps: one
            # of the ring's buffers that no earlier batch holds any more, so
            # the copy lands in memory that is mapped and likely cached.
            out, size = ring.buffer(min(int(avail), ring.size))
            n = drain(ring.ptr, out, size, ring.offsets, max_events, need, need + 1, need + 2)
            if n == 0 and need[0]:  # cannot happen for a committed record; kept as a guard
                out, size = ring.buffer(int(need[0]))
                n = drain(ring.ptr, out, size, ring.offsets, max_events, need, need + 1, need + 2)
            ring.idle_since = time.monotonic() if need[2] else None
            if n == 0:
                continue
            self._next_ring = (self._next_ring + step + 1) % count
            raw = memoryview(ffi.buffer(out, ring.offsets[n])).toreadonly()
            offsets = memoryview(ffi.buffer(ring.offsets, 4 * (n + 1))[:]).cast("I")
            return ring, Batch(raw, offsets, int(need[1]), ring.event_type, ring.name)
        return None

    @property
    def maps(self) -> list[str]:
        """The names of the ring maps read, in the order they were added."""
        return [ring.name for ring in self._rings]

    def __repr__(self) -> str:
        state = "closed" if self.closed else f"maps={self.maps}"
        return f"<RingBuffer {state}>"
