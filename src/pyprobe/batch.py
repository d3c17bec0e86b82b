"""A batch of events drained from a ring buffer or perf buffer in one call.

A :class:`Batch` holds the events' bytes back to back in one buffer (``bytes``,
or a read-only memoryview of memory the drain copied the events into) and the
offset of each event in it; it decodes an event only when asked
(iteration, indexing) and converts the whole batch to a numpy structured
array without a Python call per event.
"""

from __future__ import annotations

import ctypes
import errno
import importlib
import weakref
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any, Generic, TypeVar, overload

if TYPE_CHECKING:
    import numpy

__all__ = ["Batch", "numpy_dtype", "resolve_event_type"]

E = TypeVar("E")
"""The Python type events decode to."""

_CTYPES_BASES = (ctypes.Structure, ctypes.Union, ctypes.Array, ctypes._SimpleCData)


def _export_hint(type_name: str, map_name: str) -> str:
    """How to put a type into the object's BTF from the BPF side (``<pyprobe/btf.h>``)."""
    words = type_name.split()
    c_name = type_name if len(words) == 2 and words[0] in ("struct", "union", "enum") else f"struct {type_name}"
    return (
        f"export it from the BPF program: PYPROBE_EVENT_TYPE({map_name}, {c_name}); (the record type of map "
        f"'{map_name}', then reader() needs no event_type) or PYPROBE_EXPORT_TYPE({c_name}); both from "
        "<pyprobe/btf.h>, which <pyprobe/common.h> includes"
    )


def resolve_event_type(bmap: Any, event_type: object) -> Any:
    """The ctypes type for ``event_type``, or None for raw ``bytes`` records.

    ``event_type`` is a ctypes type, a BTF type name in the map's object,
    ``bytes``, or None for the map's own record type (``RingBufMap.event_type``,
    from ``set_types`` or ``PYPROBE_EVENT_TYPE``). Raises TypeError for
    anything else, or when a name is given but the map's object offers no
    BTF lookup; :class:`~pyprobe.BtfError` when BTF has no type of that name
    (saying how to export it).
    """
    if event_type is None:
        return getattr(bmap, "event_type", None)
    if event_type is bytes:
        return None
    name = getattr(bmap, "name", "?")
    if isinstance(event_type, str):
        obj = getattr(bmap, "_object", None)
        btf = getattr(obj, "btf", None) if obj is not None else None
        lookup = getattr(btf, "type_by_name", None)
        if lookup is None:
            raise TypeError(
                f"event_type {event_type!r} of map '{name}' names a BTF type, but its object offers no BTF "
                "type lookup (BpfObject.btf); pass a ctypes type instead"
            )
        btf_module = importlib.import_module("pyprobe.btf")
        try:
            return lookup(event_type)
        except btf_module.BtfError as exc:
            if exc.errno != errno.ENOENT:
                raise
            raise btf_module.BtfError(
                errno.ENOENT, f"no type named {event_type!r} in the object's BTF",
                context=f"event_type of map '{name}'", hint=_export_hint(event_type, name),
            ) from exc  # fmt: skip
    if isinstance(event_type, type) and issubclass(event_type, _CTYPES_BASES):
        if ctypes.sizeof(event_type) == 0:
            raise ValueError(f"event_type {event_type.__name__} of map '{name}' has size 0")
        return event_type
    raise TypeError(
        f"event_type of map '{name}' must be a BTF type name (str) or a ctypes type, not {type(event_type).__name__}"
    )


_DTYPES: dict[Any, Any] = {}

PIECE = 256
"""Events decoded at a time for a callback (see Batch._pieces)."""

_IN_ARRAY: weakref.WeakKeyDictionary[Any, int] = weakref.WeakKeyDictionary()
"""Event types whose events decode as the items of a ctypes array, with their size (0: they do not)."""


def _array_decodes(event_type: Any) -> int:
    """The size of ``event_type`` when an item of an array of it is an instance of it viewing the array's
    bytes (structs and unions: scalars and char arrays come out as int and bytes), else 0; cached."""
    size = 0
    if isinstance(event_type, type) and issubclass(event_type, (ctypes.Structure, ctypes.Union)):
        try:
            probe = (event_type * 1)()
            if memoryview(probe).cast("B").nbytes == ctypes.sizeof(event_type) and type(probe[0]) is event_type:
                size = ctypes.sizeof(event_type)
        except (TypeError, ValueError):  # no buffer export for this type: decoded one by one
            size = 0
    _IN_ARRAY[event_type] = size
    return size


def numpy_dtype(event_type: Any) -> numpy.dtype[Any]:
    """The numpy dtype matching a ctypes event type (through ``pyprobe.btf.numpy_dtype`` when it exists); cached."""
    dtype: numpy.dtype[Any] | None = _DTYPES.get(event_type)
    if dtype is not None:
        return dtype
    import numpy as np

    try:
        btf = importlib.import_module("pyprobe.btf")
    except ImportError:
        btf = None
    convert = getattr(btf, "numpy_dtype", None)
    dtype = np.dtype(convert(event_type) if convert is not None else event_type)
    _DTYPES[event_type] = dtype
    return dtype


class Batch(Sequence[E], Generic[E]):
    """Events read in one call, decoded on access; ``Batch[E]`` holds events of type ``E``.

    ``len(batch)`` events; iterating or indexing gives each event as an
    instance of the reader's ``event_type`` (a ctypes type; a copy of the
    bytes, safe to keep: struct events decoded together share one copy,
    which any of them kept keeps alive) or as ``bytes`` without one. ``raw`` is every
    event's bytes back to back, ``offsets`` the ``len + 1`` boundaries in it
    (event ``i`` is ``raw[offsets[i]:offsets[i + 1]]``), ``map`` the name of
    the map the events came from, ``to_numpy()`` a structured array. A
    record shorter than the event type decodes zero-padded.
    """

    __slots__ = ("_offsets", "_raw", "_type", "_uniform", "map")

    def __init__(
        self, raw: bytes | memoryview, offsets: memoryview, uniform: int, event_type: Any, map: str = ""
    ) -> None:
        self._raw = raw  # bytes, or a read-only memoryview of bytes that belong to this batch alone
        self._offsets = offsets  # n + 1 positions in raw, format "I"
        self._uniform = uniform  # the common event size, 0 when sizes differ
        self._type = event_type
        self.map = map
        """Name of the map the events were read from."""

    @classmethod
    def empty(cls, event_type: Any = None, map: str = "") -> Batch[Any]:
        """A batch of no events."""
        return cls(b"", memoryview(bytes(4)).cast("I"), 0, event_type, map)

    def __len__(self) -> int:
        return len(self._offsets) - 1

    @property
    def event_type(self) -> type[E] | None:
        """The ctypes type events decode to, or None for bytes."""
        return self._type  # type: ignore[no-any-return]

    @property
    def raw(self) -> bytes:
        """The events' bytes, back to back (a copy when the batch holds them in a memoryview)."""
        start, end = self._offsets[0], self._offsets[-1]
        raw = self._raw
        if start == 0 and end == len(raw):
            return raw if isinstance(raw, bytes) else raw.tobytes()
        return bytes(raw[start:end])

    @property
    def offsets(self) -> Sequence[int]:
        """The ``len(self) + 1`` event boundaries in :attr:`raw` (a memoryview of uint32)."""
        start = self._offsets[0]
        if start == 0:
            return self._offsets
        import array  # here: the one use, off the import path of every reader

        return memoryview(array.array("I", [o - start for o in self._offsets]))

    def _decode(self, start: int, end: int) -> Any:
        etype = self._type
        if etype is None:
            return bytes(self._raw[start:end])
        size = ctypes.sizeof(etype)
        if end - start >= size:
            return etype.from_buffer_copy(self._raw, start)
        return etype.from_buffer_copy(bytes(self._raw[start:end]).ljust(size, b"\0"))

    def decoded(self) -> list[E]:
        """Every event decoded, as a list.

        Events of a struct or union type whose size every record has are
        made in C: one copy of the batch's bytes into a ctypes array, then
        one slice of it (``array[:n]``) creating every event object. They
        share that copy (each is a view into it, like ``array[i]``), so an
        event kept keeps the copy alive, never the reader's buffers.
        """
        raw, offs, etype, n = self._raw, self._offsets, self._type, len(self)
        if n == 0:
            return []
        array = self._array()
        if array is not None:
            events: list[Any] = array[:n]
            return events
        size = self._uniform
        if size:
            first = offs[0]
            stop = first + n * size
            if etype is None:
                chunks: list[Any] = [bytes(raw[o : o + size]) for o in range(first, stop, size)]
                return chunks
            if size >= ctypes.sizeof(etype):
                decode = etype.from_buffer_copy
                return [decode(raw, o) for o in range(first, stop, size)]
        decode_one = self._decode
        return [decode_one(offs[i], offs[i + 1]) for i in range(n)]

    def _array(self) -> Any:
        """A ctypes array whose first ``len(self)`` items are the events (a copy), when the event type is a
        struct or union of the size of every record; else None."""
        etype, size, n = self._type, self._uniform, len(self)
        if not size or etype is None or not n:
            return None
        in_array = _IN_ARRAY.get(etype)
        if in_array is None:
            in_array = _array_decodes(etype)
        if in_array != size:
            return None
        # A power-of-two length: ctypes caches each array type it makes, so
        # a few lengths per event type, not one per batch size.
        array = (etype * (1 << (n - 1).bit_length()))()
        first = self._offsets[0]
        memoryview(array).cast("B")[: n * size] = self._raw[first : first + n * size]
        return array

    def _pieces(self) -> Iterator[tuple[int, Iterator[Any]]]:
        """The events decoded in runs of at most PIECE, each as an iterator with the index past its last event.

        For a loop calling Python per event: few event objects are alive at
        a time, where a whole batch of them would set off the garbage
        collector several times per batch. Events handed out so far are
        ``end - length_hint(iterator)`` of the current run.
        """
        n = len(self)
        array = self._array()
        for start in range(0, n, PIECE):
            end = min(start + PIECE, n)
            yield end, iter(array[start:end] if array is not None else self[start:end].decoded())

    def __iter__(self) -> Iterator[E]:
        """The events, decoded (all at once, then handed out one by one)."""
        return iter(self.decoded())

    @overload
    def __getitem__(self, index: int) -> E: ...

    @overload
    def __getitem__(self, index: slice) -> Batch[E]: ...

    def __getitem__(self, index: int | slice) -> E | Batch[E]:
        n = len(self)
        if isinstance(index, slice):
            start, stop, step = index.indices(n)
            if step != 1:
                raise ValueError("a Batch slice takes no step")
            stop = max(stop, start)
            return Batch(self._raw, self._offsets[start : stop + 1], self._uniform, self._type, self.map)
        if not isinstance(index, int):
            raise TypeError(f"Batch indices must be int or slice, not {type(index).__name__}")
        if index < 0:
            index += n
        if not 0 <= index < n:
            raise IndexError(f"event {index} out of range for a batch of {n}")
        event: E = self._decode(self._offsets[index], self._offsets[index + 1])
        return event

    def to_numpy(self) -> numpy.ndarray[Any, Any]:
        """The events as a numpy structured array whose dtype comes from the event type.

        A read-only view of :attr:`raw` when every event has the event type's
        size (no copy); otherwise a new array, records padded or cut to the
        type's size. Without an event type, events of one size give a 2-D
        uint8 array. Raises ImportError without numpy (the ``numpy`` extra),
        ValueError for events of mixed sizes and no event type.
        """
        from pyprobe._numpy import require_numpy

        require_numpy("Batch.to_numpy()")  # the one message when numpy is missing
        import numpy as np

        n = len(self)
        first = self._offsets[0]
        if self._type is None:
            if n and not self._uniform:
                raise ValueError(f"events of map '{self.map}' differ in size; give the reader an event_type")
            size = self._uniform
            return np.frombuffer(self._raw, np.uint8, count=n * size, offset=first).reshape(n, size)
        dtype = numpy_dtype(self._type)
        if self._uniform == dtype.itemsize or n == 0:
            return np.frombuffer(self._raw, dtype, count=n, offset=first)
        out = np.zeros(n, dtype)
        view = out.view(np.uint8).reshape(n, dtype.itemsize)
        offs = self._offsets
        for i in range(n):
            chunk = self._raw[offs[i] : min(offs[i + 1], offs[i] + dtype.itemsize)]
            view[i, : len(chunk)] = np.frombuffer(chunk, np.uint8)
        return out

    def __repr__(self) -> str:
        kind = self._type.__name__ if self._type is not None else "bytes"
        return f"<Batch of {len(self)} {kind} events from '{self.map}'>"
