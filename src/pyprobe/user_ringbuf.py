"""Writing BPF user ring buffers (BPF_MAP_TYPE_USER_RINGBUF, Linux 6.1) from Python.

User space is the producer: it reserves room for a record, fills it and submits it; a BPF
program drains the submitted records with ``bpf_user_ringbuf_drain(&map, callback, ctx, 0)``
(from a SEC("syscall") program run with ``test_run``, a tracepoint, a timer...). The writer wraps
libbpf's ``user_ring_buffer__new`` / ``__reserve`` / ``__reserve_blocking`` / ``__submit`` /
``__discard``; :meth:`UserRingBuffer.write_batch` copies many records in one C call.
"""

from __future__ import annotations

import ctypes
import errno
import os
import threading
from collections.abc import Sequence
from types import TracebackType
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from pyprobe._ffi import ffi, lib
from pyprobe._resource import Resource
from pyprobe.batch import resolve_event_type
from pyprobe.enums import MapType
from pyprobe.errors import BpfError, MapError, MapFullError

if TYPE_CHECKING:
    from pyprobe.maps import Map

__all__ = ["UserRingBuffer", "UserRingBufSample"]

E = TypeVar("E")
"""The Python type of the records written."""

_CTYPES = (ctypes.Structure, ctypes.Union, ctypes.Array, ctypes._SimpleCData)
_MAX_RECORD = (1 << 31) - 1


def _timeout_ms(timeout: float | None, context: str) -> int:
    """libbpf's timeout: -1 waits forever (None), 0 does not wait, else milliseconds (at least 1)."""
    if timeout is None:
        return -1
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or timeout < 0:
        raise ValueError(f"{context}: timeout must be None or a non-negative number of seconds, not {timeout!r}")
    if timeout == 0:
        return 0
    return max(1, min(int(timeout * 1000), 2**31 - 1))


def _release(ptr: Any, fd: int) -> None:
    lib.user_ring_buffer__free(ptr)
    os.close(fd)


class UserRingBuffer(Resource, Generic[E]):
    """A writer of one user ring buffer map; ``UserRingBuffer[E]`` writes records of type ``E``.

    ``obj.maps["input"].writer()`` makes one. Records are ``bytes`` (any
    bytes-like object) or ctypes instances; when the writer has a
    ``record_type`` (given here, set by ``Map.set_types(value_type=...)`` or
    named by ``PYPROBE_EVENT_TYPE`` in BTF) every record must have its size.
    A write that finds the ring full waits up to ``timeout`` seconds for the
    BPF side to drain it (None: for ever; 0, the default: not at all) and
    then raises :class:`~pyprobe.MapFullError`.

    The writer owns a dup of the map's fd and libbpf's mapping of the ring:
    it stays usable after the map's object is closed, and :meth:`close` (or
    ``with``) frees it; a write blocked in another thread finishes first.
    Writes from several threads are serialized (libbpf's producer is not
    thread-safe). The kernel allows one writer per map at a time (EBUSY).
    Raises TypeError for a map of another type, :class:`UnsupportedError`
    where the kernel has no user ring buffers. Linux 6.1.
    """

    def __init__(self, map: Map, *, record_type: type[E] | str | None = None) -> None:
        context = f"open a writer of map '{getattr(map, 'name', '?')}'"
        if map.type != MapType.USER_RINGBUF:
            raise TypeError(f"{context}: a {map.type.name.lower()} map is not a user ring buffer")
        ctype = resolve_event_type(map, record_type)
        self.map_name = map.name
        self.record_type: Any = ctype
        """The ctypes type records must match (None: any size)."""
        self.record_size: int | None = ctypes.sizeof(ctype) if ctype is not None else None
        """The size every record must have, or None."""
        self._lock = threading.Lock()
        with map._guard:
            map_fd = map._loaded_fd(context)
            fd = os.dup(map_fd)
        ptr = lib.user_ring_buffer__new(fd, ffi.NULL)
        if ptr == ffi.NULL:
            err = ffi.errno or errno.EINVAL
            os.close(fd)
            if err in (errno.EINVAL, errno.EOPNOTSUPP):
                from pyprobe import features

                features.require("user_ringbuf", context)
            raise MapError(err, os.strerror(err), context=context)
        self._ptr = ptr
        self._fd = fd
        self._own(lambda: _release(ptr, fd), f"user ring buffer writer of map '{map.name}'")

    # --- records -----------------------------------------------------------------
    def _bytes_of(self, record: object, context: str) -> Any:
        """A bytes-like view of ``record``, its size checked."""
        if isinstance(record, (bytes, bytearray, memoryview)):
            data: Any = record
            size = memoryview(record).nbytes
        elif isinstance(record, _CTYPES):
            data = memoryview(record).cast("B") if ctypes.sizeof(record) else b""
            size = ctypes.sizeof(record)
            rtype = self.record_type
            if rtype is not None and not isinstance(record, rtype) and size != self.record_size:
                raise TypeError(f"{context}: a {type(record).__name__} is not a {rtype.__name__} record")
        else:
            raise TypeError(f"{context}: a record is bytes or a ctypes instance, not {type(record).__name__}")
        if size == 0 or size > _MAX_RECORD:
            raise ValueError(f"{context}: a record of {size} bytes (1 to {_MAX_RECORD})")
        if self.record_size is not None and size != self.record_size:
            raise ValueError(f"{context}: a record of {size} bytes; records of this map have {self.record_size}")
        return data if isinstance(data, bytes) else bytes(data)

    def write(self, record: E | bytes, *, timeout: float | None = 0) -> None:
        """Reserves room for ``record``, copies it in and submits it (one record, one C call).

        Blocks up to ``timeout`` seconds while the ring is full. Raises
        :class:`~pyprobe.MapFullError` (ENOSPC) when there is still no room,
        TypeError / ValueError for a record of the wrong type or size, E2BIG
        (:class:`MapError`) for one larger than the ring.
        """
        size = self.record_size
        if type(record) is bytes and record and (len(record) == size or (size is None and len(record) <= _MAX_RECORD)):
            data = record  # the common case, checked without a call
        else:
            data = self._bytes_of(record, f"write to user ring buffer '{self.map_name}'")
        wait = 0 if timeout == 0 and type(timeout) is int else _timeout_ms(timeout, "write")
        with self._lock, self._guard:
            ret = lib.pyprobe_user_ring_write_one(self._ptr, data, len(data), wait)
        if ret < 0:
            raise self._error(-ret, f"write to user ring buffer '{self.map_name}'")

    def write_batch(
        self,
        records: bytes | bytearray | memoryview | ctypes.Array[Any] | Sequence[Any],
        *,
        record_size: int | None = None,
        timeout: float | None = 0,
    ) -> int:
        """Writes many records in one C call; returns how many were written.

        ``records`` is a buffer of records back to back (``record_size``
        bytes each, or the writer's record size), a ctypes array, or a
        sequence of records as :meth:`write` takes them (of one size). The
        write stops at the first record that finds no room after ``timeout``
        seconds: the count says how many went in (0 when none did).
        Raises TypeError / ValueError for sizes that do not add up.
        """
        context = f"write a batch to user ring buffer '{self.map_name}'"
        buffer: Any
        if isinstance(records, ctypes.Array):
            size = ctypes.sizeof(records._type_)
            count = len(records)
            buffer = ffi.from_buffer(memoryview(records).cast("B"))
        elif isinstance(records, (bytes, bytearray, memoryview)):
            size = record_size if record_size is not None else self.record_size or 0
            if isinstance(size, bool) or not isinstance(size, int) or size <= 0:
                raise ValueError(f"{context}: give record_size (the writer has no record type)")
            view = memoryview(records).cast("B")
            if len(view) % size:
                raise ValueError(f"{context}: {len(view)} bytes are not a whole number of {size}-byte records")
            count = len(view) // size
            buffer = ffi.from_buffer(view)
        elif isinstance(records, Sequence):
            parts = [self._bytes_of(r, context) for r in records]
            if not parts:
                return 0
            size = len(parts[0])
            if any(len(p) != size for p in parts):
                raise ValueError(f"{context}: the records are not all of one size")
            count = len(parts)
            buffer = b"".join(parts)
        else:
            raise TypeError(
                f"{context}: records are a buffer, a ctypes array or a sequence, not {type(records).__name__}"
            )
        if count == 0:
            return 0
        if self.record_size is not None and size != self.record_size:
            raise ValueError(f"{context}: records of {size} bytes; records of this map have {self.record_size}")
        wait = _timeout_ms(timeout, context)
        with self._lock, self._guard:
            ret = int(lib.pyprobe_user_ring_write(self._ptr, buffer, size, count, wait))
        if ret < 0:
            if -ret == errno.ENOSPC:
                return 0
            raise self._error(-ret, context)
        return ret

    def reserve(self, size: int | None = None, *, timeout: float | None = 0) -> UserRingBufSample:
        """Reserves ``size`` bytes (default: the record size) for a record filled in place.

        Fill it with :meth:`UserRingBufSample.write`, then ``submit()`` or
        ``discard()`` it; as a context manager it submits on a normal exit
        and discards on an exception. Until then the BPF side drains no
        record reserved after it. Raises as :meth:`write`.
        """
        context = f"reserve in user ring buffer '{self.map_name}'"
        if size is None:
            if self.record_size is None:
                raise ValueError(f"{context}: give the size (the writer has no record type)")
            size = self.record_size
        if isinstance(size, bool) or not isinstance(size, int) or not 0 < size <= _MAX_RECORD:
            raise ValueError(f"{context}: size must be an int from 1 to {_MAX_RECORD}, not {size!r}")
        if self.record_size is not None and size != self.record_size:
            raise ValueError(f"{context}: {size} bytes; records of this map have {self.record_size}")
        wait = _timeout_ms(timeout, context)
        with self._lock, self._guard:
            if wait == 0:
                slot = lib.user_ring_buffer__reserve(self._ptr, size)
            else:
                slot = lib.user_ring_buffer__reserve_blocking(self._ptr, size, wait)
            err = ffi.errno
        if slot == ffi.NULL:
            raise self._error(err or errno.ENOSPC, context)
        return UserRingBufSample(self, slot, size)

    def _error(self, err: int, context: str) -> BpfError:
        if err in (errno.ENOSPC, errno.ETIMEDOUT, errno.EAGAIN):
            return MapFullError(errno.ENOSPC, "the ring is full: the BPF side has not drained it", context=context,
                                hint="drain it (bpf_user_ringbuf_drain) or pass a timeout")  # fmt: skip
        if err == errno.E2BIG:
            return MapError(err, "the record is larger than the ring can hold", context=context)
        return MapError(err, os.strerror(err), context=context)

    def __repr__(self) -> str:
        state = "closed" if self.closed else f"fd={self._fd}"
        return f"<UserRingBuffer map={self.map_name!r} {state}>"


class UserRingBufSample:
    """A record reserved in a user ring buffer: fill it with :meth:`write`, then :meth:`submit` or :meth:`discard`.

    It refers to the writer's memory only through the writer (a closed
    writer raises ClosedError), never hands out a raw view of the ring.
    """

    def __init__(self, writer: UserRingBuffer[Any], slot: Any, size: int) -> None:
        self._writer = writer
        self._slot = slot
        self.size = size
        """The reserved size in bytes."""
        self.done = False
        """True once submitted or discarded."""

    def _check(self, doing: str) -> None:
        if self.done:
            raise BpfError(errno.EINVAL, "the record was already submitted or discarded",
                           context=f"{doing} a record of user ring buffer '{self._writer.map_name}'")  # fmt: skip

    def write(self, data: bytes | bytearray | memoryview | Any, offset: int = 0) -> None:
        """Copies ``data`` (bytes-like or a ctypes instance) into the record at ``offset``; checked against its size."""
        self._check("fill")
        if isinstance(data, _CTYPES):
            data = bytes(memoryview(data).cast("B")) if ctypes.sizeof(data) else b""
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise TypeError(f"a record's data is bytes or a ctypes instance, not {type(data).__name__}")
        raw = bytes(data)
        if isinstance(offset, bool) or not isinstance(offset, int) or offset < 0 or offset + len(raw) > self.size:
            raise ValueError(f"{len(raw)} bytes at offset {offset!r} do not fit a record of {self.size} bytes")
        with self._writer._guard:
            ffi.memmove(self._slot + offset, raw, len(raw))

    def submit(self) -> None:
        """Makes the record visible to the BPF side."""
        self._check("submit")
        writer = self._writer
        with writer._lock, writer._guard:
            lib.user_ring_buffer__submit(writer._ptr, self._slot)
        self.done = True

    def discard(self) -> None:
        """Gives the room back; the BPF side skips the record."""
        self._check("discard")
        writer = self._writer
        with writer._lock, writer._guard:
            lib.user_ring_buffer__discard(writer._ptr, self._slot)
        self.done = True

    def __enter__(self) -> UserRingBufSample:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self.done:
            return
        if exc_type is None:
            self.submit()
        else:
            self.discard()
