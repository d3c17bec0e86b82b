"""The typed map classes, one per kind of map, chosen by map type."""

from __future__ import annotations

import collections.abc
import errno
import importlib
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, overload

from pyprobe._ffi import ffi, lib
from pyprobe.enums import MapType
from pyprobe.errors import KeyNotFoundError, MapError, check_int, error_from_errno
from pyprobe.maps._base import Map, UpdateFlags
from pyprobe.maps._codec import Codec, bulk

if TYPE_CHECKING:
    from pyprobe.program import Program

__all__ = [
    "ArrayMap", "ArrayOfMaps", "BloomFilterMap", "HashMap", "HashOfMaps", "KeyValueMap", "LruHashMap",
    "LruPerCpuHashMap", "MapItems", "PerCpuArrayMap", "PerCpuHashMap", "PerfEventArrayMap", "ProgArrayMap",
    "QueueMap", "RingBufMap", "StackMap", "StackTraceMap",
]  # fmt: skip

_DUMP_CHUNK = 4096
_new_uncleared = ffi.new_allocator(should_clear_after_alloc=False)


def _shown(key: Any) -> str:
    text = repr(key)
    return text if len(text) <= 80 else text[:77] + "..."


class MapItems(Sequence[tuple[Any, Any]]):
    """A snapshot of a map's entries read in bulk (``items(batch=True)``).

    The keys and values arrive from the kernel as two blobs; they are decoded
    in bulk on first use (integers through ``memoryview.cast``, structs through
    one ctypes array). ``raw_keys``/``raw_values`` give the blobs,
    :meth:`to_numpy` structured arrays.
    """

    def __init__(self, raw_keys: Any, raw_values: Any, count: int, key: Codec, value: Codec) -> None:
        self.raw_keys = raw_keys
        """The keys, ``count`` of them back to back (a read-write buffer: ``bytes(raw_keys)`` copies it)."""
        self.raw_values = raw_values
        """The values, back to back (per-CPU values: every CPU's slot, padded to 8 bytes)."""
        self._count = count
        self._key = key
        self._value = value
        self._keys: list[Any] | None = None
        self._values: list[Any] | None = None

    def __len__(self) -> int:
        return self._count

    def key_list(self) -> list[Any]:
        """The decoded keys."""
        if self._keys is None:
            self._keys = self._key.decode_many(self.raw_keys, self._count, self._key.size)
        return self._keys

    def value_list(self) -> list[Any]:
        """The decoded values."""
        if self._values is None:
            self._values = self._value.decode_many(self.raw_values, self._count, self._value.size)
        return self._values

    @overload
    def __getitem__(self, index: int) -> tuple[Any, Any]: ...
    @overload
    def __getitem__(self, index: slice) -> list[tuple[Any, Any]]: ...
    def __getitem__(self, index: int | slice) -> Any:
        if isinstance(index, slice):
            return list(zip(self.key_list()[index], self.value_list()[index], strict=True))
        return self.key_list()[index], self.value_list()[index]

    def pairs(self) -> list[tuple[Any, Any]]:
        """Every (key, value) pair, decoded in bulk."""
        keys, values = self.key_list(), self.value_list()
        with bulk():
            return list(zip(keys, values, strict=True))

    def __iter__(self) -> Iterator[tuple[Any, Any]]:
        return iter(self.pairs())

    def to_dict(self) -> dict[Any, Any]:
        """The entries as a dict."""
        keys, values = self.key_list(), self.value_list()
        with bulk():
            return dict(zip(keys, values, strict=True))

    def to_numpy(self) -> tuple[Any, Any]:
        """(keys, values) as numpy arrays with dtypes made from BTF. Needs numpy."""
        import numpy as np

        from pyprobe.btf import numpy_dtype

        def array(raw: Any, codec: Codec) -> Any:
            if codec.ctype is None:
                return np.frombuffer(raw, dtype=np.dtype((np.void, codec.size)), count=self._count)
            dtype = numpy_dtype(codec.ctype)
            if codec.kind == "percpu":
                stride = getattr(codec, "stride", dtype.itemsize)
                ncpus = getattr(codec, "ncpus", 1)
                padded = np.dtype({"names": ["v"], "formats": [dtype], "offsets": [0], "itemsize": stride})
                return np.frombuffer(raw, dtype=padded, count=self._count * ncpus)["v"].reshape(self._count, ncpus)
            return np.frombuffer(raw, dtype=dtype, count=self._count)

        return array(self.raw_keys, self._key), array(self.raw_values, self._value)

    def __repr__(self) -> str:
        return f"<MapItems {self._count} entries>"


class KeyValueMap(Map):
    """Dict-like access to a map with keys: hash, LRU hash, array and their per-CPU kinds.

    Every method blocks only for its system calls. Keys and values are
    converted through the map's BTF types (raw bytes of the exact size are
    always accepted); a wrong type or size raises TypeError or ValueError
    before any system call.
    """

    # --- single elements ----------------------------------------------------------
    def _key(self, key: Any) -> bytes:
        return self._codec[0].encode(key)

    def lookup(self, key: Any, default: Any = None) -> Any:
        """The value at ``key``, or ``default`` when the key is absent."""
        raw = self._lookup_raw(self._key(key))
        return default if raw is None else self._codec[1].decode(raw)

    def get(self, key: Any, default: Any = None) -> Any:
        """Same as :meth:`lookup`."""
        return self.lookup(key, default)

    def __getitem__(self, key: Any) -> Any:
        raw = self._lookup_raw(self._key(key))
        if raw is None:
            raise self._missing(_shown(key))
        return self._codec[1].decode(raw)

    def update(self, key: Any, value: Any, flags: UpdateFlags | int = UpdateFlags.ANY) -> None:
        """Stores ``value`` at ``key``.

        ``flags``: ANY inserts or replaces, NOEXIST inserts only (raises
        :class:`KeyExistsError`), EXIST replaces only (raises
        :class:`KeyNotFoundError`). A full map raises :class:`MapFullError`.
        """
        if not isinstance(flags, int):
            raise TypeError(f"flags of map '{self.name}' must be UpdateFlags, not {type(flags).__name__}")
        self._update_raw(self._key(key), self._codec[1].encode(value), int(flags), _shown(key))

    def __setitem__(self, key: Any, value: Any) -> None:
        self.update(key, value)

    def delete(self, key: Any) -> None:
        """Removes ``key``; raises :class:`KeyNotFoundError` when absent, MapError on an array map."""
        self._delete_raw(self._key(key), _shown(key))

    def __delitem__(self, key: Any) -> None:
        self.delete(key)

    def __contains__(self, key: Any) -> bool:
        return self._lookup_raw(self._key(key)) is not None

    def lookup_and_delete(self, key: Any) -> Any:
        """Removes ``key`` and returns its value atomically (hash maps, kernel 5.14+)."""
        raw_key = self._key(key)
        fd = self._loaded_fd(f"lookup_and_delete in map '{self.name}'")
        value = ffi.new("char[]", self._value_buffer_size())
        ret = lib.bpf_map_lookup_and_delete_elem(fd, raw_key, value)
        if ret == -errno.ENOENT:
            raise self._missing(_shown(key), "lookup_and_delete in")
        check_int(ret, f"lookup_and_delete key {_shown(key)} in map '{self.name}'", MapError)
        return self._codec[1].decode(bytes(ffi.buffer(value)))

    # --- iteration --------------------------------------------------------------
    def __iter__(self) -> Iterator[Any]:
        decode = self._codec[0].decode
        for raw in self._raw_keys():
            yield decode(raw)

    def keys(self) -> list[Any]:
        """A snapshot of the keys."""
        return list(self)

    def items(self, *, batch: bool = False) -> Any:
        """A snapshot of the entries as (key, value) pairs.

        ``batch=True`` reads everything with BPF_MAP_LOOKUP_BATCH in a C loop
        (kernel 5.6+; get_next_key + lookup in C where the map type lacks it)
        and returns a :class:`MapItems` decoded in bulk; otherwise a list made
        with one lookup per key (keys deleted meanwhile are left out).
        """
        if batch:
            return self._dump()
        decode_k, decode_v = self._codec[0].decode, self._codec[1].decode
        out = []
        for raw in self._raw_keys():
            value = self._lookup_raw(raw)
            if value is not None:
                out.append((decode_k(raw), decode_v(value)))
        return out

    def values(self) -> list[Any]:
        """A snapshot of the values."""
        return [v for _, v in self.items()]

    def __len__(self) -> int:
        fd = self._loaded_fd(f"count entries of map '{self.name}'")
        count = ffi.new("__u32 *")
        check_int(
            lib.pyprobe_map_count(fd, self.key_size, self.max_entries, count),
            f"count entries of map '{self.name}'", MapError,
        )  # fmt: skip
        return int(count[0])

    def __bool__(self) -> bool:
        return True

    def _dump(self) -> MapItems:
        fd = self._loaded_fd(f"dump map '{self.name}'")
        key_codec, value_codec = self._codec
        capacity = self.max_entries
        keys = _new_uncleared("char[]", max(capacity * key_codec.size, 1))
        values = _new_uncleared("char[]", max(capacity * value_codec.size, 1))
        count = ffi.new("__u32 *")
        ret = lib.pyprobe_map_dump(fd, key_codec.size, value_codec.size, capacity, _DUMP_CHUNK, keys, values, count)
        check_int(ret, f"dump map '{self.name}'", MapError)
        n = int(count[0])
        # The blobs stay in the C buffers: no copy (a buffer sized for a full map is what it is).
        return MapItems(
            ffi.buffer(keys, n * key_codec.size), ffi.buffer(values, n * value_codec.size),
            n, key_codec, value_codec,
        )  # fmt: skip

    # --- batches ------------------------------------------------------------------
    def update_batch(
        self, pairs: Mapping[Any, Any] | Iterable[tuple[Any, Any]], flags: UpdateFlags | int = UpdateFlags.ANY
    ) -> int:
        """Stores many pairs with BPF_MAP_UPDATE_BATCH (one update per pair in C where the map lacks it).

        Every pair is converted (and checked) before the first system call.
        Returns how many were stored; on a failure the error says how many
        went in before it.
        """
        items = pairs.items() if isinstance(pairs, Mapping) else pairs
        enc_k, enc_v = self._codec[0].encode, self._codec[1].encode
        keys, values = [], []
        for pair in items:
            if not isinstance(pair, tuple) or len(pair) != 2:
                raise TypeError(f"update_batch of map '{self.name}' takes (key, value) pairs, not {pair!r}")
            keys.append(enc_k(pair[0]))
            values.append(enc_v(pair[1]))
        fd = self._loaded_fd(f"update_batch map '{self.name}'")
        done = ffi.new("__u32 *")
        ret = lib.pyprobe_map_update_many(
            fd, self.key_size, self._codec[1].size, len(keys), b"".join(keys), b"".join(values), int(flags), done
        )
        if ret < 0:
            exc = self._update_error(-ret, f"#{int(done[0])} of the batch", int(flags))
            exc.hint = f"{int(done[0])} of {len(keys)} pairs were stored before the error"
            raise exc
        return len(keys)

    def delete_batch(self, keys: Iterable[Any]) -> int:
        """Removes many keys with BPF_MAP_DELETE_BATCH; a missing key raises :class:`KeyNotFoundError`.

        Returns how many keys were removed.
        """
        raw = [self._key(k) for k in keys]
        return self._delete_many(raw)

    def _delete_many(self, raw: list[bytes]) -> int:
        fd = self._loaded_fd(f"delete_batch from map '{self.name}'")
        done = ffi.new("__u32 *")
        ret = lib.pyprobe_map_delete_many(fd, self.key_size, len(raw), b"".join(raw), done)
        if ret < 0:
            n = int(done[0])
            context = f"delete_batch from map '{self.name}'"
            hint = f"{n} of {len(raw)} keys were deleted before the error"
            if ret == -errno.ENOENT:
                bad = self._codec[0].decode(raw[n]) if n < len(raw) else "?"
                raise KeyNotFoundError(errno.ENOENT, f"key {_shown(bad)} not found", context=context, hint=hint)
            raise error_from_errno(-ret, context, MapError, hint=hint)
        return len(raw)

    def clear(self) -> None:
        """Removes every entry (for array maps: sets every element to zero)."""
        fd = self._loaded_fd(f"clear map '{self.name}'")
        capacity, size = self.max_entries, self.key_size
        keys = ffi.new("char[]", max(capacity * size, 1))
        count = ffi.new("__u32 *")
        check_int(lib.pyprobe_map_dump_keys(fd, size, capacity, keys, count), f"clear map '{self.name}'", MapError)
        blob = ffi.buffer(keys, int(count[0]) * size)[:]
        raw = [blob[i : i + size] for i in range(0, len(blob), size)]
        done = ffi.new("__u32 *")
        ret = lib.pyprobe_map_delete_many(fd, size, len(raw), blob, done)
        if ret < 0 and ret != -errno.ENOENT:  # ENOENT: the kernel deleted some meanwhile
            check_int(ret, f"clear map '{self.name}'", MapError)
        if ret == -errno.ENOENT:
            for key in raw[int(done[0]) :]:
                lib.bpf_map_delete_elem(fd, key)


collections.abc.Mapping.register(KeyValueMap)


class HashMap(KeyValueMap):
    """BPF_MAP_TYPE_HASH."""


class LruHashMap(HashMap):
    """BPF_MAP_TYPE_LRU_HASH: inserting into a full map evicts the least recently used entry."""


class PerCpuHashMap(HashMap):
    """BPF_MAP_TYPE_PERCPU_HASH: a value is a list with one item per possible CPU.

    Assigning a single value sets it on every CPU.
    """


class LruPerCpuHashMap(PerCpuHashMap):
    """BPF_MAP_TYPE_LRU_PERCPU_HASH."""


class ArrayMap(KeyValueMap):
    """BPF_MAP_TYPE_ARRAY: keys are the indexes 0..max_entries-1, always present.

    ``del m[i]`` raises MapError (EINVAL: array elements cannot be deleted);
    ``clear()`` sets every element to zero.
    """

    def __len__(self) -> int:
        return self.max_entries

    def clear(self) -> None:
        """Sets every element to zero."""
        n, size = self.max_entries, self._codec[1].size
        keys = b"".join(i.to_bytes(4, "little") for i in range(n))
        fd = self._loaded_fd(f"clear map '{self.name}'")
        done = ffi.new("__u32 *")
        ret = lib.pyprobe_map_update_many(fd, 4, size, n, keys, bytes(n * size), 0, done)
        check_int(ret, f"clear map '{self.name}'", MapError)


class PerCpuArrayMap(ArrayMap):
    """BPF_MAP_TYPE_PERCPU_ARRAY: a value is a list with one item per possible CPU."""


class ProgArrayMap(Map):
    """BPF_MAP_TYPE_PROG_ARRAY: slots of programs for tail calls.

    ``m[i] = program`` (a loaded Program or a program fd), ``del m[i]``;
    ``m[i]`` gives the id of the program in slot ``i``.
    """

    def _index(self, index: Any) -> bytes:
        if not isinstance(index, int) or isinstance(index, bool):
            raise TypeError(f"index of map '{self.name}' must be an int, not {type(index).__name__}")
        if not 0 <= index < self.max_entries:
            raise ValueError(f"index {index} of map '{self.name}' is out of range 0..{self.max_entries - 1}")
        return index.to_bytes(4, "little")

    def __setitem__(self, index: int, program: Program | int) -> None:
        key = self._index(index)
        fd = program if isinstance(program, int) else getattr(program, "fd", None)
        if not isinstance(fd, int) or isinstance(fd, bool):
            raise TypeError(f"map '{self.name}' holds programs (Program or fd), not {type(program).__name__}")
        if fd < 0:
            raise ValueError(f"program for map '{self.name}' is not loaded")
        self._update_raw(key, fd.to_bytes(4, "little"), 0, str(index))

    def __getitem__(self, index: int) -> int:
        raw = self._lookup_raw(self._index(index))
        if raw is None:
            raise self._missing(str(index))
        return int.from_bytes(raw[:4], "little")

    def __delitem__(self, index: int) -> None:
        self._delete_raw(self._index(index), str(index))

    def __contains__(self, index: object) -> bool:
        return (
            isinstance(index, int)
            and 0 <= index < self.max_entries
            and self._lookup_raw(self._index(index)) is not None
        )


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


class _ValueOnly(Map):
    """Maps without keys: queue, stack, bloom filter."""

    def _value(self, value: Any) -> bytes:
        return self._codec[1].encode(value)


class QueueMap(_ValueOnly):
    """BPF_MAP_TYPE_QUEUE: first in, first out."""

    def push(self, value: Any, *, overwrite: bool = False) -> None:
        """Appends ``value``; a full map raises :class:`MapFullError` unless ``overwrite`` drops the oldest."""
        self._update_raw(None, self._value(value), UpdateFlags.EXIST if overwrite else 0, "(push)")

    def pop(self) -> Any:
        """Removes and returns the next value; raises :class:`KeyNotFoundError` when empty."""
        fd = self._loaded_fd(f"pop from map '{self.name}'")
        out = ffi.new("char[]", max(self.value_size, 1))
        ret = lib.bpf_map_lookup_and_delete_elem(fd, ffi.NULL, out)
        if ret == -errno.ENOENT:
            raise KeyNotFoundError(errno.ENOENT, "the map is empty", context=f"pop from map '{self.name}'")
        check_int(ret, f"pop from map '{self.name}'", MapError)
        return self._codec[1].decode(bytes(ffi.buffer(out, self.value_size)))

    def peek(self) -> Any:
        """The next value without removing it; raises :class:`KeyNotFoundError` when empty."""
        raw = self._lookup_raw(None)
        if raw is None:
            raise KeyNotFoundError(errno.ENOENT, "the map is empty", context=f"peek into map '{self.name}'")
        return self._codec[1].decode(raw)


class StackMap(QueueMap):
    """BPF_MAP_TYPE_STACK: last in, first out."""


class BloomFilterMap(_ValueOnly):
    """BPF_MAP_TYPE_BLOOM_FILTER: ``add(v)``; ``v in m`` is True for every added value (and rare false hits)."""

    def add(self, value: Any) -> None:
        """Adds ``value`` to the filter."""
        self._update_raw(None, self._value(value), 0, "(add)")

    def __contains__(self, value: Any) -> bool:
        return self._lookup_raw_value(self._value(value))

    def _lookup_raw_value(self, raw: bytes) -> bool:
        fd = self._loaded_fd(f"lookup in map '{self.name}'")
        ret = lib.bpf_map_lookup_elem(fd, ffi.NULL, raw)
        if ret == -errno.ENOENT:
            return False
        check_int(ret, f"lookup in map '{self.name}'", MapError)
        return True


class _OfMaps(Map):
    """Maps of maps: ``m[k] = inner_map`` (a Map or a map fd); ``m[k]`` gives the inner map's id."""

    def _inner_fd(self, inner: Any) -> bytes:
        fd = inner if isinstance(inner, int) and not isinstance(inner, bool) else getattr(inner, "fd", None)
        if not isinstance(fd, int) or isinstance(fd, bool) or isinstance(inner, bool):
            raise TypeError(f"map '{self.name}' holds maps (Map or fd), not {type(inner).__name__}")
        if fd < 0:
            raise ValueError(f"inner map for map '{self.name}' is not created yet")
        return fd.to_bytes(4, "little")

    def _key(self, key: Any) -> bytes:
        return self._codec[0].encode(key)

    def __setitem__(self, key: Any, inner: Map | int) -> None:
        self._update_raw(self._key(key), self._inner_fd(inner), 0, _shown(key))

    def __getitem__(self, key: Any) -> int:
        raw = self._lookup_raw(self._key(key))
        if raw is None:
            raise self._missing(_shown(key))
        return int.from_bytes(raw[:4], "little")

    def __delitem__(self, key: Any) -> None:
        self._delete_raw(self._key(key), _shown(key))

    def __contains__(self, key: Any) -> bool:
        return self._lookup_raw(self._key(key)) is not None


class ArrayOfMaps(_OfMaps):
    """BPF_MAP_TYPE_ARRAY_OF_MAPS."""


class HashOfMaps(_OfMaps):
    """BPF_MAP_TYPE_HASH_OF_MAPS."""


class RingBufMap(Map):
    """BPF_MAP_TYPE_RINGBUF: read it through :meth:`reader`."""

    def reader(self, callback: Any = None, *, event_type: Any = None) -> Any:
        """A :class:`pyprobe.ringbuf.RingBuffer` over this map (see its documentation)."""
        ringbuf = importlib.import_module("pyprobe.ringbuf")
        return ringbuf.RingBuffer(self, callback, event_type=event_type)


class PerfEventArrayMap(Map):
    """BPF_MAP_TYPE_PERF_EVENT_ARRAY: read it through :meth:`reader`."""

    def reader(self, callback: Any = None, *, lost: Any = None, pages: int = 64, event_type: Any = None) -> Any:
        """A :class:`pyprobe.perfbuf.PerfBuffer` over this map (see its documentation)."""
        perfbuf = importlib.import_module("pyprobe.perfbuf")
        return perfbuf.PerfBuffer(self, callback, lost=lost, pages=pages, event_type=event_type)


Map._classes.update(
    {
        MapType.HASH: HashMap,
        MapType.LRU_HASH: LruHashMap,
        MapType.ARRAY: ArrayMap,
        MapType.PERCPU_HASH: PerCpuHashMap,
        MapType.PERCPU_ARRAY: PerCpuArrayMap,
        MapType.LRU_PERCPU_HASH: LruPerCpuHashMap,
        MapType.PROG_ARRAY: ProgArrayMap,
        MapType.STACK_TRACE: StackTraceMap,
        MapType.QUEUE: QueueMap,
        MapType.STACK: StackMap,
        MapType.BLOOM_FILTER: BloomFilterMap,
        MapType.ARRAY_OF_MAPS: ArrayOfMaps,
        MapType.HASH_OF_MAPS: HashOfMaps,
        MapType.RINGBUF: RingBufMap,
        MapType.PERF_EVENT_ARRAY: PerfEventArrayMap,
    }
)
