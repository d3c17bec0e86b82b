"""Maps of values without keys of the user's: queues, stacks and bloom filters, and stack traces (keyed by
the ids the kernel gives them)."""

from __future__ import annotations

import errno
from collections.abc import Iterator
from typing import Any, Generic, TypeVar

from pyprobe._ffi import ffi, lib
from pyprobe.enums import MapType
from pyprobe.errors import KeyNotFoundError, MapError, check_int
from pyprobe.maps._base import Map, UpdateFlags

__all__ = ["BloomFilterMap", "QueueMap", "StackMap", "StackTraceMap"]

V = TypeVar("V")
"""The Python type of a map's values."""


class StackTraceMap(Map):
    """BPF_MAP_TYPE_STACK_TRACE: ``m[stack_id]`` is the list of return addresses, innermost first."""

    def _id(self, stack_id: Any) -> bytes:
        if not isinstance(stack_id, int) or isinstance(stack_id, bool):
            raise TypeError(f"stack id for map '{self.name}' must be an int, not {type(stack_id).__name__}")
        if not 0 <= stack_id < 1 << 32:
            raise ValueError(f"stack id {stack_id} for map '{self.name}' is out of range")
        return stack_id.to_bytes(4, "little")

    def __getitem__(self, stack_id: int) -> list[int]:
        raw = self._lookup_raw(self._id(stack_id))
        if raw is None:
            raise self._missing(str(stack_id))
        addresses = memoryview(raw).cast("Q").tolist()
        end = addresses.index(0) if 0 in addresses else len(addresses)
        return addresses[:end]

    def __delitem__(self, stack_id: int) -> None:
        self._delete_raw(self._id(stack_id), str(stack_id))

    def __contains__(self, stack_id: object) -> bool:
        return isinstance(stack_id, int) and self._lookup_raw(self._id(stack_id)) is not None

    def __iter__(self) -> Iterator[int]:
        for raw in self._raw_keys():
            yield int.from_bytes(raw, "little")


class _ValueOnly(Map, Generic[V]):
    """Maps without keys: queue, stack, bloom filter."""

    def _value(self, value: Any) -> bytes:
        return self._codec[1].encode(value)


class QueueMap(_ValueOnly[V]):
    """BPF_MAP_TYPE_QUEUE: first in, first out; ``QueueMap[V]``."""

    def push(self, value: V, *, overwrite: bool = False) -> None:
        """Appends ``value``; a full map raises :class:`MapFullError` unless ``overwrite`` drops the oldest."""
        self._update_raw(None, self._value(value), UpdateFlags.EXIST if overwrite else 0, "(push)")

    def pop(self) -> V:
        """Removes and returns the next value; raises :class:`KeyNotFoundError` when empty."""
        with self._guard:
            fd = self._loaded_fd(f"pop from map '{self.name}'")
            out = ffi.new("char[]", max(self.value_size, 1))
            ret = lib.bpf_map_lookup_and_delete_elem(fd, ffi.NULL, out)
        if ret == -errno.ENOENT:
            raise KeyNotFoundError(errno.ENOENT, "the map is empty", context=f"pop from map '{self.name}'")
        check_int(ret, f"pop from map '{self.name}'", MapError)
        value: V = self._codec[1].decode(bytes(ffi.buffer(out, self.value_size)))
        return value

    def peek(self) -> V:
        """The next value without removing it; raises :class:`KeyNotFoundError` when empty."""
        raw = self._lookup_raw(None)
        if raw is None:
            raise KeyNotFoundError(errno.ENOENT, "the map is empty", context=f"peek into map '{self.name}'")
        value: V = self._codec[1].decode(raw)
        return value


class StackMap(QueueMap[V]):
    """BPF_MAP_TYPE_STACK: last in, first out; ``StackMap[V]``."""


class BloomFilterMap(_ValueOnly[V]):
    """BPF_MAP_TYPE_BLOOM_FILTER: ``add(v)``; ``v in m`` is True for every added value (and rare false hits)."""

    def add(self, value: V) -> None:
        """Adds ``value`` to the filter."""
        self._update_raw(None, self._value(value), 0, "(add)")

    def __contains__(self, value: V) -> bool:
        """Whether ``value`` may have been added (never False for an added one)."""
        return self._lookup_raw_value(self._value(value))

    def _lookup_raw_value(self, raw: bytes) -> bool:
        with self._guard:
            fd = self._loaded_fd(f"lookup in map '{self.name}'")
            ret = lib.bpf_map_lookup_elem(fd, ffi.NULL, raw)
        if ret == -errno.ENOENT:
            return False
        check_int(ret, f"lookup in map '{self.name}'", MapError)
        return True


Map._classes.update(
    {
        MapType.STACK_TRACE: StackTraceMap,
        MapType.QUEUE: QueueMap,
        MapType.STACK: StackMap,
        MapType.BLOOM_FILTER: BloomFilterMap,
    }
)
