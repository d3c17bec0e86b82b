"""Reading BPF perf event arrays (BPF_MAP_TYPE_PERF_EVENT_ARRAY, Linux 4.4) through libbpf's perf_buffer.

libbpf opens one perf event per CPU and maps its buffer; a C callback in
the extension copies every sample into one staging buffer and sums the
kernel's lost-sample records, so one drain never calls Python per event.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar, overload

from pyprobe._ffi import ffi, lib
from pyprobe._reader import EventReader, Source, check_callback
from pyprobe.batch import Batch, resolve_event_type
from pyprobe.enums import MapType
from pyprobe.errors import MapError, check_int, check_ptr

if TYPE_CHECKING:
    from pyprobe.maps import Map, PerfEventArrayMap

__all__ = ["PerfBuffer"]

E = TypeVar("E")
"""The Python type samples decode to."""
T = TypeVar("T")


def _release(ptr: Any) -> None:
    lib.pyprobe_perf_free(ptr)


class PerfBuffer(EventReader[E]):
    """A reader of a BPF perf event array: one buffer of ``pages`` pages per CPU; ``PerfBuffer[E]`` gives ``E``.

    ``callback(event)`` gets each sample (decoded to ``event_type``, a BTF type
    name, a ctypes type or ``bytes``; without one, to the map's record type,
    ``PerfEventArrayMap.event_type``, else ``bytes``; perf pads raw samples to
    8 bytes plus 4, so without an event type the bytes may end in padding).
    Type checkers take ``E`` as :class:`RingBuffer` does.
    ``lost(count)`` is called with the number of samples the kernel dropped
    because a buffer was full, as soon as the reader learns of them;
    :attr:`lost_count` is their total.

    ``wakeup_events`` samples per kernel wakeup (1: every sample, the usual;
    more: fewer wakeups, cheaper for the traced program); the reader also
    drains every ``drain_interval`` seconds, so the last samples are never
    stuck. Same four ways to consume as :class:`RingBuffer`.

    Owns its perf events and epoll fd; :meth:`close` frees them. Raises
    TypeError for a map that is not a perf event array, ValueError when
    ``pages`` is not a power of two, :class:`MapError` when the map has no fd
    or the perf events cannot be opened. Needs Linux 4.4.
    """

    @overload
    def __init__(
        self: PerfBuffer[E],
        map: PerfEventArrayMap[E],
        callback: Callable[[E], object] | None = None,
        *,
        lost: Callable[[int], object] | None = None,
        pages: int = 64,
        event_type: None = None,
        wakeup_events: int = 1,
        drain_interval: float = 0.1,
    ) -> None: ...
    @overload
    def __init__(
        self: PerfBuffer[T],
        map: Map,
        callback: Callable[[T], object] | None = None,
        *,
        lost: Callable[[int], object] | None = None,
        pages: int = 64,
        event_type: type[T],
        wakeup_events: int = 1,
        drain_interval: float = 0.1,
    ) -> None: ...
    @overload
    def __init__(
        self: PerfBuffer[Any],
        map: Map,
        callback: Callable[[Any], object] | None = None,
        *,
        lost: Callable[[int], object] | None = None,
        pages: int = 64,
        event_type: str | None = None,
        wakeup_events: int = 1,
        drain_interval: float = 0.1,
    ) -> None: ...
    def __init__(
        self,
        map: Map,
        callback: Callable[[Any], object] | None = None,
        *,
        lost: Callable[[int], object] | None = None,
        pages: int = 64,
        event_type: type[Any] | str | None = None,
        wakeup_events: int = 1,
        drain_interval: float = 0.1,
    ) -> None:
        self._init_reader(drain_interval)
        name = getattr(map, "name", None)
        mtype = getattr(map, "type", None)
        if name is None or mtype is None or not hasattr(map, "fd"):
            raise TypeError(f"PerfBuffer takes a pyprobe map, not {type(map).__name__}")
        if mtype != MapType.PERF_EVENT_ARRAY:
            kind = mtype.name.lower() if isinstance(mtype, MapType) else str(mtype)
            raise TypeError(
                f"map '{name}' is a {kind} map, not a perf_event_array map: "
                "PerfBuffer reads BPF_MAP_TYPE_PERF_EVENT_ARRAY"
            )
        check_callback(callback, f"callback of map '{name}'")
        check_callback(lost, f"lost callback of map '{name}'")
        if not isinstance(pages, int) or isinstance(pages, bool) or pages < 1 or pages & (pages - 1):
            raise ValueError(f"pages of the perf buffer of map '{name}' must be a power of two, not {pages!r}")
        if not isinstance(wakeup_events, int) or isinstance(wakeup_events, bool) or not 1 <= wakeup_events < 1 << 31:
            raise ValueError(f"wakeup_events of map '{name}' must be a positive int, not {wakeup_events!r}")
        etype = resolve_event_type(map, event_type)
        truncate = ctypes.sizeof(etype) if etype is not None else 0
        with getattr(map, "_guard", contextlib.nullcontext()):  # the number stays the map's during the call
            fd = int(map.fd)
            if fd < 0:
                raise MapError(
                    errno.EBADF, "the map is not created yet: load its object first", context=f"map '{name}'"
                )
            ptr = check_ptr(
                lib.pyprobe_perf_new(fd, pages, wakeup_events, truncate),
                f"open the perf buffer of map '{name}'", MapError,
            )  # fmt: skip
        self._ptr = ptr
        self._own_reader(lambda: _release(ptr), f"PerfBuffer '{name}'")
        self._source = Source(name, callback, etype)
        self._map = map
        self.lost = lost
        """The lost-samples callback, ``lost(count)``, or None."""
        self.lost_count = 0
        """Samples the kernel dropped so far because a per-CPU buffer was full."""
        self.pages = pages
        """Pages per CPU buffer."""
        self.wakeup_events = wakeup_events
        """Samples per kernel wakeup of the reader."""

    @property
    def name(self) -> str:
        """The name of the perf event array read."""
        return self._source.name

    def _sources(self) -> list[Source]:
        return [self._source]

    def fileno(self) -> int:
        """libbpf's epoll fd over the per-CPU perf events: readable after a kernel wakeup."""
        with self._guard:
            return int(lib.pyprobe_perf_epoll_fd(self._ptr))

    def _read(self, max_events: int, force: bool = True) -> tuple[Source, Batch[Any]] | None:
        ptr = self._ptr
        check_int(lib.pyprobe_perf_consume(ptr), f"read the perf buffer of map '{self.name}'", MapError)
        offsets_p = ffi.new("__u32 **")
        info = ffi.new("size_t[2]")
        data = lib.pyprobe_perf_staged(ptr, offsets_p, info, info + 1)
        n = int(info[0])
        batch: Batch[Any] | None = None
        if n:
            offsets = memoryview(ffi.buffer(offsets_p[0], 4 * (n + 1))[:]).cast("I")
            raw = ffi.buffer(data, offsets[n])[:]
            batch = Batch(raw, offsets, int(info[1]), self._source.event_type, self.name)
        lost = int(lib.pyprobe_perf_reset(ptr))
        if batch is not None and len(batch) > max_events:
            self._pending.append((self._source, batch[max_events:]))
            batch = batch[:max_events]
        if lost:
            self.lost_count += lost
            if self.lost is not None:
                if batch is not None:  # handed out after the lost callback returns (or on the next read)
                    self._pending.appendleft((self._source, batch))
                    batch = None
                self.lost(lost)
        if batch is None:
            return self._take(max_events) if self._pending else None
        return self._source, batch

    def __repr__(self) -> str:
        state = "closed" if self.closed else f"'{self.name}' pages={self.pages} lost={self.lost_count}"
        return f"<PerfBuffer {state}>"
