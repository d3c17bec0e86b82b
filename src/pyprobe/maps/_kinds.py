"""The typed map classes, one per kind of map, chosen by map type.

The classes are generic in their key and value types (``HashMap[K, V]``,
``ArrayMap[V]``, ``RingBufMap[E]``...) for type checkers only: at run time a
map decodes into the types its BTF (or :meth:`Map.set_types`) gives, and
``HashMap[int, int]`` is the same class as ``HashMap``. A map of an object
gets its type parameters from ``obj.maps.typed(name, HashMap[int, int])`` or
a generated skeleton.
"""

from __future__ import annotations

import collections.abc
import ctypes
import errno
import importlib
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Generic, Literal, TypeVar, overload

from pyprobe._ffi import ffi, lib
from pyprobe.btf import BtfError, Kind
from pyprobe.enums import MapType
from pyprobe.errors import BpfError, KeyNotFoundError, MapError, check_int, error_from_errno
from pyprobe.maps._base import EINVAL_HINTS, TYPES_SECTION, U64_MAX, Map, UpdateFlags, check_ctype
from pyprobe.maps._codec import Codec, bulk, columns_dict, dict_of, hash_ordered

if TYPE_CHECKING:
    from pyprobe.perfbuf import PerfBuffer
    from pyprobe.ringbuf import RingBuffer

__all__ = [
    "ArrayMap", "HashMap", "KeyValueMap", "LruHashMap", "LruPerCpuHashMap", "MapItems", "PerCpuArrayMap",
    "PerCpuHashMap", "PerfEventArrayMap", "RingBufMap",
]  # fmt: skip

K = TypeVar("K")
"""The Python type of a map's keys."""
V = TypeVar("V")
"""The Python type of a map's values (for per-CPU maps: of one CPU's value)."""
E = TypeVar("E")
"""The Python type of the records of a ring buffer or perf event array."""
T = TypeVar("T")
D = TypeVar("D")

_DUMP_CHUNK = 4096
_WALK_CHUNK = 4096
_WALK_BYTES = 4 << 20  # a chunk of per-CPU values on a machine with many CPUs stays below this
_new_uncleared = ffi.new_allocator(should_clear_after_alloc=False)


def _shown(key: Any) -> str:
    text = repr(key)
    return text if len(text) <= 80 else text[:77] + "..."


class MapItems(Sequence[tuple[K, V]], Generic[K, V]):
    """A snapshot of a map's entries read in bulk (``items(batch=True)``).

    The keys and values arrive from the kernel as two blobs; they are decoded
    in bulk on first use, without a Python-level loop: integers through
    ``memoryview.cast``, structs through one ctypes array, bytes through
    numpy's ``tolist()`` (``struct.iter_unpack`` without numpy).
    ``raw_keys``/``raw_values`` give the blobs, :meth:`to_numpy` structured
    arrays.
    """

    def __init__(self, raw_keys: Any, raw_values: Any, count: int, key: Codec, value: Codec) -> None:
        self.raw_keys = raw_keys
        """The keys, ``count`` of them back to back (a read-write buffer: ``bytes(raw_keys)`` copies it)."""
        self.raw_values = raw_values
        """The values, back to back (per-CPU values: every CPU's slot, padded to 8 bytes)."""
        self._count = count
        self._key = key
        self._value = value
        self._keys: list[K] | None = None
        self._values: list[V] | None = None

    def __len__(self) -> int:
        return self._count

    def key_list(self) -> list[K]:
        """The decoded keys."""
        if self._keys is None:
            self._keys = self._key.decode_many(self.raw_keys, self._count, self._key.size)
        return self._keys

    def value_list(self) -> list[V]:
        """The decoded values."""
        if self._values is None:
            self._values = self._value.decode_many(self.raw_values, self._count, self._value.size)
        return self._values

    @overload
    def __getitem__(self, index: int) -> tuple[K, V]: ...
    @overload
    def __getitem__(self, index: slice) -> list[tuple[K, V]]: ...
    def __getitem__(self, index: int | slice) -> tuple[K, V] | list[tuple[K, V]]:
        if isinstance(index, slice):
            return list(zip(self.key_list()[index], self.value_list()[index], strict=True))
        return self.key_list()[index], self.value_list()[index]

    def pairs(self) -> list[tuple[K, V]]:
        """Every (key, value) pair, decoded in bulk."""
        keys, values = self.key_list(), self.value_list()
        with bulk():
            return list(zip(keys, values, strict=True))

    def __iter__(self) -> Iterator[tuple[K, V]]:
        return iter(self.pairs())

    def to_dict(self) -> dict[K, V]:
        """The entries as a dict, decoded in bulk (faster than ``dict(items)``).

        From 2,000,000 entries on, integer keys and keys of BTF struct types go
        into the dict in the order of its hash slots, not in the dump's order
        (the kernel's bucket order, meaningless as well): a third less time for
        10,000,000 integer keys, where a random slot per key costs a cache
        miss. So iterating such a dict does not follow :meth:`key_list`'s
        order; smaller dumps, other keys, and snapshots whose keys and values
        :meth:`key_list` and :meth:`value_list` decoded already keep the dump's
        order. Integer and bytes columns become the dict straight from the
        blobs, without lists in between.
        """
        if self._keys is None or self._values is None:
            n, key, value = self._count, self._key, self._value
            with bulk():
                made = columns_dict(self.raw_keys, self.raw_values, n, key, value)  # integers and bytes
                if made is not None:
                    return made
                ordered = hash_ordered(self.raw_keys, self.raw_values, n, key, value)
                if ordered is not None:
                    keys = key.decode_owned(ordered[0], n)
                    return dict_of(keys, value.decode_owned(ordered[1], n))
        keys, values = self.key_list(), self.value_list()
        with bulk():
            return dict_of(keys, values)

    def to_numpy(self) -> tuple[Any, Any]:
        """(keys, values) as numpy arrays with dtypes made from BTF. Raises ImportError without numpy."""
        from pyprobe._numpy import require_numpy

        require_numpy("MapItems.to_numpy()")  # the one message when numpy is missing
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


class KeyValueMap(Map, Generic[K, V]):
    """Dict-like access to a map with keys: hash, LRU hash, array and their per-CPU kinds.

    ``K`` and ``V`` are the Python types of keys and values for type
    checkers (``KeyValueMap[int, Event]``); at run time they are what the
    map's BTF or :meth:`set_types` gives: ints, ctypes structs (a dict is
    accepted when writing one), bytes for char arrays and maps without BTF.
    Every method blocks only for its system calls. Raw bytes of the exact
    size are always accepted as a key or value; a wrong type or size raises
    TypeError or ValueError before any system call, as does a number that a
    key, a value, a struct member or an array item cannot hold (ValueError
    naming the map and the member or index: ctypes alone would wrap it).
    """

    # --- single elements ----------------------------------------------------------
    def _key(self, key: Any) -> bytes:
        return self._codec[0].encode(key)

    @overload
    def lookup(self, key: K, default: None = None) -> V | None: ...
    @overload
    def lookup(self, key: K, default: V) -> V: ...
    @overload
    def lookup(self, key: K, default: D) -> V | D: ...
    def lookup(self, key: K, default: Any = None) -> Any:
        """The value at ``key``, or ``default`` when the key is absent."""
        raw = self._lookup_raw(self._key(key))
        return default if raw is None else self._codec[1].decode(raw)

    @overload
    def get(self, key: K, default: None = None) -> V | None: ...
    @overload
    def get(self, key: K, default: V) -> V: ...
    @overload
    def get(self, key: K, default: D) -> V | D: ...
    def get(self, key: K, default: Any = None) -> Any:
        """Same as :meth:`lookup`."""
        return self.lookup(key, default)

    def __getitem__(self, key: K) -> V:
        """The value at ``key``; raises :class:`KeyNotFoundError` (a KeyError) when absent."""
        raw = self._lookup_raw(self._key(key))
        if raw is None:
            raise self._missing(_shown(key))
        value: V = self._codec[1].decode(raw)
        return value

    def update(self, key: K, value: V, flags: UpdateFlags | int = UpdateFlags.ANY) -> None:
        """Stores ``value`` at ``key``.

        ``flags``: ANY inserts or replaces, NOEXIST inserts only (raises
        :class:`KeyExistsError`), EXIST replaces only (raises
        :class:`KeyNotFoundError`); flags that are no u64 raise ValueError. A
        full map raises :class:`MapFullError`; an array map's index past the
        end :class:`~pyprobe.MapIndexError`.
        """
        if not isinstance(flags, int) or not 0 <= flags <= U64_MAX:
            raise self._bad_flags(flags)
        self._update_raw(self._key(key), self._codec[1].encode(value), int(flags), _shown(key))

    def __setitem__(self, key: K, value: V) -> None:
        """Same as :meth:`update` with flags ANY."""
        self.update(key, value)

    def delete(self, key: K) -> None:
        """Removes ``key``; raises :class:`KeyNotFoundError` when absent, MapError on an array map."""
        self._delete_raw(self._key(key), _shown(key))

    def __delitem__(self, key: K) -> None:
        """Same as :meth:`delete`."""
        self.delete(key)

    def __contains__(self, key: K) -> bool:
        """Whether ``key`` is in the map (one lookup)."""
        return self._lookup_raw(self._key(key)) is not None

    def lookup_and_delete(self, key: K) -> V:
        """Removes ``key`` and returns its value atomically (hash maps, kernel 5.14+)."""
        raw_key = self._key(key)
        with self._guard:
            fd = self._loaded_fd(f"lookup_and_delete in map '{self.name}'")
            value = ffi.new("char[]", self._value_buffer_size())
            ret = lib.bpf_map_lookup_and_delete_elem(fd, raw_key, value)
        if ret == -errno.ENOENT:
            raise self._missing(_shown(key), "lookup_and_delete in")
        check_int(ret, f"lookup_and_delete key {_shown(key)} in map '{self.name}'", MapError)
        found: V = self._codec[1].decode(bytes(ffi.buffer(value)))
        return found

    # --- iteration --------------------------------------------------------------
    # Iteration reads the map in chunks of up to _WALK_CHUNK entries, each with one system call
    # (BPF_MAP_LOOKUP_BATCH, kernel 5.6+; get_next_key + lookup in C where the kernel lacks it) and
    # decoded in bulk. _walk_start picks the batch walk or the key walk (tests walk both).
    _walk_start: int = lib.PYPROBE_WALK_BATCH

    def _chunks(self) -> Iterator[MapItems[K, V]]:
        """The entries, one chunk at a time; a chunk's buffers are reused for the next one.

        A consumer decodes a chunk (``key_list()``, ``value_list()``,
        ``pairs()``) before asking for the next. Each chunk is read inside
        the map's guard: once the map is closed, the next chunk (or the end
        of the walk) raises ClosedError, never reading another map that got
        the fd number.
        """
        guard, doing = self._guard, f"iterate map '{self.name}'"
        with guard:
            self._loaded_fd(doing)
            key_codec, value_codec = self._codec
            ksize, vsize, max_entries = key_codec.size, value_codec.size, self.max_entries
        cap = max(1, min(max_entries, _WALK_CHUNK, _WALK_BYTES // max(ksize + vsize, 1)))
        keys, values = _new_uncleared("char[]", cap * ksize), _new_uncleared("char[]", cap * vsize)
        token = ffi.new("char[]", 2 * max(ksize, 8))
        state = ffi.new("int *", self._walk_start)
        count = ffi.new("__u32 *")
        seen: set[bytes] = set()
        walked, limit = 0, 16 * (max_entries + 16)
        done = (lib.PYPROBE_WALK_BATCH_DONE, lib.PYPROBE_WALK_KEYS_DONE)
        while state[0] not in done:
            count[0] = cap
            with guard:
                ret = lib.pyprobe_map_walk(self._loaded_fd(doing), ksize, vsize, token, state, keys, values, count)
            n = int(count[0])
            if ret == -errno.ENOSPC and n == 0 and state[0] < lib.PYPROBE_WALK_KEYS:
                cap *= 2  # one hash bucket holds more entries than a chunk
                keys, values = _new_uncleared("char[]", cap * ksize), _new_uncleared("char[]", cap * vsize)
                continue
            check_int(ret, doing, MapError)
            if state[0] >= lib.PYPROBE_WALK_KEYS:
                # get_next_key from a key deleted meanwhile starts again at the first key: drop repeats
                walked += n
                if walked > limit:
                    raise MapError(errno.EAGAIN, "the map changes faster than it can be walked", context=doing)
                n = self._fresh(keys, values, n, ksize, vsize, seen)
            if n:
                yield MapItems(ffi.buffer(keys, n * ksize), ffi.buffer(values, n * vsize), n, key_codec, value_codec)
        with guard:  # closed while the last chunk was in use: the walk did not end with the map open
            self._loaded_fd(doing)

    @staticmethod
    def _fresh(keys: Any, values: Any, n: int, ksize: int, vsize: int, seen: set[bytes]) -> int:
        """Keeps the entries whose keys are not in ``seen`` (moved to the front); returns how many."""
        blob = ffi.buffer(keys, n * ksize)[:]
        kept = 0
        for i in range(n):
            raw = blob[i * ksize : (i + 1) * ksize]
            if raw in seen:
                continue
            seen.add(raw)
            if kept != i:
                ffi.memmove(keys + kept * ksize, keys + i * ksize, ksize)
                ffi.memmove(values + kept * vsize, values + i * vsize, vsize)
            kept += 1
        return kept

    def __iter__(self) -> Iterator[K]:
        """Each key once, decoded; read in chunks of 4096 entries, one system call each.

        On kernels with batch lookups (5.6+) a chunk is one BPF_MAP_LOOKUP_BATCH,
        which walks a hash map bucket by bucket (an array index by index) and
        continues from the bucket where the previous chunk stopped. So a key
        present during the whole iteration comes exactly once; a key deleted
        meanwhile comes at most once (not at all when its bucket had not been
        read yet), as does a key inserted meanwhile (when its bucket comes
        after the chunks already read). Deleting keys while iterating (also
        the keys just yielded) is safe. Older kernels walk get_next_key +
        lookup in C, skipping keys already yielded, with the same guarantees.
        Once the map is closed, the next chunk (or the end of the walk)
        raises ClosedError.
        """
        for chunk in self._chunks():
            yield from chunk.key_list()

    def keys(self) -> list[K]:
        """A snapshot of the keys (read as :meth:`__iter__` does)."""
        out: list[K] = []
        for chunk in self._chunks():
            out += chunk.key_list()
        return out

    @overload
    def items(self, *, batch: Literal[False] = False) -> list[tuple[K, V]]: ...
    @overload
    def items(self, *, batch: Literal[True]) -> MapItems[K, V]: ...
    @overload
    def items(self, *, batch: bool) -> list[tuple[K, V]] | MapItems[K, V]: ...
    def items(self, *, batch: bool = False) -> list[tuple[K, V]] | MapItems[K, V]:
        """A snapshot of the entries as (key, value) pairs.

        ``batch=True`` reads everything with BPF_MAP_LOOKUP_BATCH in one C loop
        (kernel 5.6+; get_next_key + lookup in C where the map type lacks it)
        and returns a :class:`MapItems` decoded in bulk; otherwise a list, read
        in chunks as :meth:`__iter__` reads (with the same guarantees for keys
        inserted or deleted meanwhile), each chunk decoded in bulk.
        """
        if batch:
            return self._dump()
        out: list[tuple[K, V]] = []
        for chunk in self._chunks():
            out += chunk.pairs()
        return out

    def values(self) -> list[V]:
        """A snapshot of the values (read as :meth:`items` does)."""
        out: list[V] = []
        for chunk in self._chunks():
            out += chunk.value_list()
        return out

    def __len__(self) -> int:
        with self._guard:
            fd = self._loaded_fd(f"count entries of map '{self.name}'")
            count = ffi.new("__u32 *")
            check_int(
                lib.pyprobe_map_count(fd, self.key_size, self.max_entries, count),
                f"count entries of map '{self.name}'", MapError,
            )  # fmt: skip
        return int(count[0])

    def __bool__(self) -> bool:
        return True

    def _dump(self) -> MapItems[K, V]:
        with self._guard:
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
        self, pairs: Mapping[K, V] | Iterable[tuple[K, V]], flags: UpdateFlags | int = UpdateFlags.ANY
    ) -> int:
        """Stores many pairs with BPF_MAP_UPDATE_BATCH (one update per pair in C where the map lacks it).

        Every pair is converted (and checked) before the first system call.
        Returns how many were stored; on a failure the error says how many
        went in before it.
        """
        if not isinstance(flags, int) or not 0 <= flags <= U64_MAX:
            raise self._bad_flags(flags)
        items: Iterable[Any] = pairs.items() if isinstance(pairs, Mapping) else pairs
        enc_k, enc_v = self._codec[0].encode, self._codec[1].encode
        keys, values = [], []
        for pair in items:
            if not isinstance(pair, tuple) or len(pair) != 2:
                raise TypeError(f"update_batch of map '{self.name}' takes (key, value) pairs, not {pair!r}")
            keys.append(enc_k(pair[0]))
            values.append(enc_v(pair[1]))
        with self._guard:
            fd = self._loaded_fd(f"update_batch map '{self.name}'")
            done = ffi.new("__u32 *")
            ret = lib.pyprobe_map_update_many(
                fd, self.key_size, self._codec[1].size, len(keys), b"".join(keys), b"".join(values), int(flags), done
            )
        if ret < 0:
            n = int(done[0])
            shown, key = f"#{n} of the batch", None
            if n < len(keys):
                key = _shown(self._codec[0].decode(keys[n]))
                shown = f"{key} ({shown})"
            exc = self._update_error(-ret, shown, int(flags), key=key)
            exc.hint = f"{n} of {len(keys)} pairs were stored before the error"
            raise exc
        return len(keys)

    def delete_batch(self, keys: Iterable[K]) -> int:
        """Removes many keys with BPF_MAP_DELETE_BATCH; a missing key raises :class:`KeyNotFoundError`.

        Returns how many keys were removed.
        """
        raw = [self._key(k) for k in keys]
        return self._delete_many(raw)

    def _delete_many(self, raw: list[bytes]) -> int:
        with self._guard:
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
            if ret == -errno.EINVAL and self.type in EINVAL_HINTS:
                hint = f"{EINVAL_HINTS[self.type]} ({hint})"
            raise error_from_errno(-ret, context, MapError, hint=hint)
        return len(raw)

    def clear(self) -> None:
        """Removes every entry (for array maps: sets every element to zero)."""
        with self._guard:
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


class HashMap(KeyValueMap[K, V]):
    """BPF_MAP_TYPE_HASH: ``HashMap[K, V]`` for type checkers."""


class LruHashMap(HashMap[K, V]):
    """BPF_MAP_TYPE_LRU_HASH: inserting into a full map evicts the least recently used entry."""


class PerCpuHashMap(HashMap[K, list[V]]):
    """BPF_MAP_TYPE_PERCPU_HASH: a value is a list with one item per possible CPU.

    ``PerCpuHashMap[K, V]`` reads values as ``list[V]``. Assigning a single
    value sets it on every CPU; a sequence sets one value per CPU.
    """

    if TYPE_CHECKING:  # writes also take one value for every CPU

        def update(self, key: K, value: V | Sequence[V], flags: UpdateFlags | int = UpdateFlags.ANY) -> None: ...
        def __setitem__(self, key: K, value: V | Sequence[V]) -> None: ...
        def update_batch(
            self,
            pairs: Mapping[K, V | Sequence[V]] | Iterable[tuple[K, V | Sequence[V]]],
            flags: UpdateFlags | int = UpdateFlags.ANY,
        ) -> int: ...


class LruPerCpuHashMap(PerCpuHashMap[K, V]):
    """BPF_MAP_TYPE_LRU_PERCPU_HASH."""


class ArrayMap(KeyValueMap[int, V]):
    """BPF_MAP_TYPE_ARRAY: keys are the indexes 0..max_entries-1, always present; ``ArrayMap[V]``.

    ``del m[i]`` raises MapError (EINVAL: array elements cannot be deleted);
    ``clear()`` sets every element to zero. An index past the end raises
    :class:`~pyprobe.MapIndexError` (an IndexError and a KeyError) naming the
    range, on reads (``m[i]``; ``get`` returns the default) and writes.
    """

    def __len__(self) -> int:
        return self.max_entries

    def clear(self) -> None:
        """Sets every element to zero."""
        n, size = self.max_entries, self._codec[1].size
        keys = b"".join(i.to_bytes(4, "little") for i in range(n))
        with self._guard:
            fd = self._loaded_fd(f"clear map '{self.name}'")
            done = ffi.new("__u32 *")
            ret = lib.pyprobe_map_update_many(fd, 4, size, n, keys, bytes(n * size), 0, done)
        check_int(ret, f"clear map '{self.name}'", MapError)


class PerCpuArrayMap(ArrayMap[list[V]]):
    """BPF_MAP_TYPE_PERCPU_ARRAY: a value is a list with one item per possible CPU.

    ``PerCpuArrayMap[V]`` reads values as ``list[V]``; writes take one value
    (set on every CPU) or one per CPU.
    """

    if TYPE_CHECKING:  # writes also take one value for every CPU

        def update(self, key: int, value: V | Sequence[V], flags: UpdateFlags | int = UpdateFlags.ANY) -> None: ...
        def __setitem__(self, key: int, value: V | Sequence[V]) -> None: ...
        def update_batch(
            self,
            pairs: Mapping[int, V | Sequence[V]] | Iterable[tuple[int, V | Sequence[V]]],
            flags: UpdateFlags | int = UpdateFlags.ANY,
        ) -> int: ...


_UNSET: Any = object()
EVENT_VAR_PREFIX = "__pyprobe_event__"
"""Prefix of the ``.pyprobe.types`` variable naming a map's record type (``PYPROBE_EVENT_TYPE``)."""


class _EventMap(Map, Generic[E]):
    """Maps whose records are read by a reader: ring buffers and perf event arrays."""

    _record_type: Any = _UNSET
    """The record type set by :meth:`set_types` (``bytes``: raw), or _UNSET."""
    _btf_record_type: Any = _UNSET
    """The record type named in BTF (None: none), or _UNSET before the first look."""

    @property
    def event_type(self) -> type[E] | None:
        """The type records decode to when a reader is given no ``event_type``; None means ``bytes``.

        Set by ``set_types(value_type=...)``; otherwise the type named by
        ``PYPROBE_EVENT_TYPE(map, type)`` (``<pyprobe/btf.h>``) in the
        object's BTF, read once. Raises :class:`~pyprobe.BtfError` when that
        declaration names a type Python cannot represent.
        """
        explicit = self._record_type
        if explicit is not _UNSET:
            return None if explicit is bytes else explicit
        found = self._btf_record_type
        if found is _UNSET:
            found = self._btf_record_type = self._declared_record_type()
        return found  # type: ignore[no-any-return]

    def _declared_record_type(self) -> Any:
        try:
            btf = self.btf
            if btf is None:
                return None
            section = btf.record(btf.find(TYPES_SECTION, Kind.DATASEC))
        except BpfError:
            return None  # no BTF, or nothing exported
        wanted = EVENT_VAR_PREFIX + self.name
        for var_id, _offset, _size in section.vars:
            var = btf.record(var_id)
            if var.kind != Kind.VAR or var.name != wanted:
                continue
            pointer = btf.resolve(var.ref)
            try:
                if pointer.kind != Kind.PTR:
                    raise BtfError(errno.EINVAL, f"{wanted} is not a pointer", context="look up BTF type")
                return btf.type_by_id(pointer.ref)
            except BtfError as exc:
                raise BtfError(
                    exc.errno or errno.EINVAL,
                    str(exc.strerror),
                    context=f"record type of map '{self.name}' (PYPROBE_EVENT_TYPE)",
                    hint="name a complete struct, union or integer type",
                ) from exc
        return None

    def set_types(self, *, key_type: type[Any] | None = None, value_type: type[Any] | None = None) -> None:
        """Sets the record type (``value_type``, a ctypes type, or ``bytes`` for raw records) readers use by default.

        It replaces the type ``PYPROBE_EVENT_TYPE`` names; a reader's own
        ``event_type`` still wins. These maps have no keys to decode: a
        ``key_type`` raises TypeError, as does anything but a ctypes type of
        non-zero size or ``bytes``.
        """
        kind = self.type.name.lower()
        if key_type is not None:
            raise TypeError(
                f"map '{self.name}' is a {kind} map: it has no keys to type; value_type sets its record type"
            )
        if value_type is None:
            return
        if value_type is not bytes:
            check_ctype(value_type, f"value_type of map '{self.name}'")
            if ctypes.sizeof(value_type) == 0:
                raise ValueError(f"value_type {value_type.__name__} of map '{self.name}' has size 0")
        self._record_type = value_type


class RingBufMap(_EventMap[E]):
    """BPF_MAP_TYPE_RINGBUF: read it through :meth:`reader`; ``RingBufMap[E]`` carries records of type ``E``."""

    @overload
    def reader(
        self, callback: Callable[[E], object] | None = None, *, event_type: None = None, drain_interval: float = 0.1
    ) -> RingBuffer[E]: ...
    @overload
    def reader(
        self, callback: Callable[[T], object] | None = None, *, event_type: type[T], drain_interval: float = 0.1
    ) -> RingBuffer[T]: ...
    @overload
    def reader(
        self, callback: Callable[[Any], object] | None = None, *, event_type: str, drain_interval: float = 0.1
    ) -> RingBuffer[Any]: ...
    def reader(
        self,
        callback: Callable[[Any], object] | None = None,
        *,
        event_type: type[Any] | str | None = None,
        drain_interval: float = 0.1,
    ) -> RingBuffer[Any]:
        """A :class:`~pyprobe.RingBuffer` over this map (see there for what it owns, blocks on and raises).

        Records decode to ``event_type`` (a ctypes type, a BTF type name, or
        ``bytes``); without one, to :attr:`event_type` (bytes when None).
        """
        ringbuf = importlib.import_module("pyprobe.ringbuf")
        reader: RingBuffer[Any] = ringbuf.RingBuffer(
            self, callback, event_type=event_type, drain_interval=drain_interval
        )
        return reader


class PerfEventArrayMap(_EventMap[E]):
    """BPF_MAP_TYPE_PERF_EVENT_ARRAY: read it through :meth:`reader`; ``PerfEventArrayMap[E]`` carries ``E`` samples."""

    @overload
    def reader(
        self,
        callback: Callable[[E], object] | None = None,
        *,
        lost: Callable[[int], object] | None = None,
        pages: int = 64,
        event_type: None = None,
        wakeup_events: int = 1,
        drain_interval: float = 0.1,
    ) -> PerfBuffer[E]: ...
    @overload
    def reader(
        self,
        callback: Callable[[T], object] | None = None,
        *,
        lost: Callable[[int], object] | None = None,
        pages: int = 64,
        event_type: type[T],
        wakeup_events: int = 1,
        drain_interval: float = 0.1,
    ) -> PerfBuffer[T]: ...
    @overload
    def reader(
        self,
        callback: Callable[[Any], object] | None = None,
        *,
        lost: Callable[[int], object] | None = None,
        pages: int = 64,
        event_type: str,
        wakeup_events: int = 1,
        drain_interval: float = 0.1,
    ) -> PerfBuffer[Any]: ...
    def reader(
        self,
        callback: Callable[[Any], object] | None = None,
        *,
        lost: Callable[[int], object] | None = None,
        pages: int = 64,
        event_type: type[Any] | str | None = None,
        wakeup_events: int = 1,
        drain_interval: float = 0.1,
    ) -> PerfBuffer[Any]:
        """A :class:`~pyprobe.PerfBuffer` over this map (see there for what it owns, blocks on and raises).

        Samples decode to ``event_type`` (a ctypes type, a BTF type name, or
        ``bytes``); without one, to :attr:`event_type` (bytes when None).
        """
        perfbuf = importlib.import_module("pyprobe.perfbuf")
        reader: PerfBuffer[Any] = perfbuf.PerfBuffer(
            self, callback, lost=lost, pages=pages, event_type=event_type,
            wakeup_events=wakeup_events, drain_interval=drain_interval,
        )  # fmt: skip
        return reader


Map._classes.update(
    {
        MapType.HASH: HashMap,
        MapType.LRU_HASH: LruHashMap,
        MapType.ARRAY: ArrayMap,
        MapType.PERCPU_HASH: PerCpuHashMap,
        MapType.PERCPU_ARRAY: PerCpuArrayMap,
        MapType.LRU_PERCPU_HASH: LruPerCpuHashMap,
        MapType.RINGBUF: RingBufMap,
        MapType.PERF_EVENT_ARRAY: PerfEventArrayMap,
    }
)
