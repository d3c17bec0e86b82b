"""The Map base class: attributes, typed keys and values, pinning, standalone maps."""

from __future__ import annotations

import builtins
import ctypes
import enum
import errno
import os
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

from pyprobe._ffi import cstr, ffi, lib
from pyprobe._resource import Resource
from pyprobe.btf import Btf, Kind
from pyprobe.enums import IntFlagBody, MapType, built_as
from pyprobe.errors import (
    BpfError,
    KeyNotFoundError,
    MapError,
    MapFullError,
    MapIndexError,
    check_int,
    error_from_errno,
)  # fmt: skip
from pyprobe.maps._codec import Codec, PerCpuCodec

if TYPE_CHECKING:
    from pyprobe.object import BpfObject

__all__ = ["KeyExistsError", "Map", "UpdateFlags"]

TYPES_SECTION = ".pyprobe.types"
"""The BTF DATASEC of the types ``<pyprobe/btf.h>`` exports (PYPROBE_EXPORT_TYPE, PYPROBE_EVENT_TYPE)."""


@built_as(enum.IntFlag)
class UpdateFlags(IntFlagBody):
    """Flags of a map update: ANY (insert or replace), NOEXIST (insert only), EXIST (replace only)."""

    ANY = 0
    NOEXIST = 1
    EXIST = 2
    F_LOCK = 4


UpdateFlags.__module__ = "pyprobe"


class KeyExistsError(MapError):
    """An update with ``UpdateFlags.NOEXIST`` found the key already there (EEXIST)."""


KeyExistsError.__module__ = "pyprobe"

PER_CPU_TYPES = (MapType.PERCPU_ARRAY, MapType.PERCPU_HASH, MapType.LRU_PERCPU_HASH, MapType.PERCPU_CGROUP_STORAGE)
T = TypeVar("T")
_INDEXED = (MapType.ARRAY, MapType.PERCPU_ARRAY, MapType.ARRAY_OF_MAPS, MapType.PROG_ARRAY)
_ARRAYS = (MapType.ARRAY, MapType.PERCPU_ARRAY)
"""Maps whose every index 0..max_entries-1 always holds a value: ENOENT on lookup means out of range."""
U32_MAX = (1 << 32) - 1
U64_MAX = (1 << 64) - 1
EINVAL_HINTS = {
    MapType.ARRAY: "elements of an array map cannot be deleted; set them to zero instead",
    MapType.PERCPU_ARRAY: "elements of an array map cannot be deleted; set them to zero instead",
}


def _close_fd(fd: int) -> None:
    os.close(fd)


class Map(Resource):
    """One BPF map: of a :class:`~pyprobe.BpfObject` (it keeps the object alive), or standalone.

    Keys and values decode into the ctypes types made from the map's BTF,
    or into those given to :meth:`set_types`; the typed subclasses are
    generic in them for type checkers (``obj.maps.typed("counts",
    HashMap[int, int])``). Object maps are owned by their object:
    :meth:`close` does nothing for them, closing the object frees them. Standalone maps
    (:meth:`create`, :meth:`from_pinned`) own their fd: ``close()`` or the
    end of a ``with`` block releases it.
    """

    _classes: ClassVar[dict[int, type[Map]]] = {}

    def __init__(
        self,
        obj: BpfObject | None,
        ptr: Any,
        *,
        fd: int = -1,
        info: Any = None,
        btf: Btf | None = None,
        key_type: Any = None,
        value_type: Any = None,
    ) -> None:
        self._object = obj
        self._ptr = ptr
        self._info_cache = info
        self._btf = btf
        self._explicit_types = (key_type, value_type)
        self._codecs: tuple[Codec, Codec] | None = None
        self._pin_path: str | None = None
        if obj is not None:
            self._guard = obj._guard  # calls on an object's map hold off the object's release
            self.name: str = cstr(lib.bpf_map__name(ptr))
            """The map's name in the C source (or given to :meth:`create`)."""
        else:
            unnamed = f"{MapType(int(info.type)).name.lower()}#{int(info.id)}"
            self.name = ffi.string(info.name).decode("utf-8", "replace") or unnamed
            self._own_fd = fd
            self._own(lambda: _close_fd(fd), f"map '{self.name}' (fd {fd})")

    @classmethod
    def _wrap(cls, obj: BpfObject, ptr: Any) -> Map:
        """The Map object of the right subclass for a libbpf map of ``obj``."""
        return _class_for(int(lib.bpf_map__type(ptr)))(obj, ptr)

    # --- life cycle -------------------------------------------------------------
    # ``closed`` and ``_check_open`` come from Resource: an object's map shares
    # its object's guard. Every use of the map's fd or libbpf pointer runs
    # inside ``with self._guard:`` so that a close() in another thread never
    # frees either under a call (the fd number could go to another map).

    def close(self) -> None:
        """Closes a standalone map's fd; does nothing for a map owned by an object.

        A call in flight in another thread finishes first: the fd is closed
        when it leaves, and calls made after close() raise ClosedError.
        """
        if self._object is None:
            Resource.close(self)

    def _live(self) -> Any:
        self._check_open()
        return self._ptr

    def _call(self, fn: Callable[..., T], *args: Any) -> T:
        """``fn(ptr, *args)`` on the map's libbpf pointer, with the object held open."""
        with self._guard:
            return fn(self._ptr, *args)

    def _info(self) -> Any:
        if self._object is None:
            self._check_open()
            return self._info_cache
        info = ffi.new("struct bpf_map_info *")
        size = ffi.new("__u32 *", ffi.sizeof("struct bpf_map_info"))
        with self._guard:
            fd = self._loaded_fd(f"get info of map '{self.name}'")
            check_int(lib.bpf_map_get_info_by_fd(fd, info, size), f"get info of map '{self.name}'", MapError)
        return info

    # --- attributes -------------------------------------------------------------
    @property
    def type(self) -> MapType:
        """The map type."""
        if self._object is None:
            return MapType(int(self._info().type))
        return MapType(int(self._call(lib.bpf_map__type)))

    @property
    def key_size(self) -> int:
        """Size of a key in bytes."""
        if self._object is None:
            return int(self._info().key_size)
        return int(self._call(lib.bpf_map__key_size))

    @property
    def value_size(self) -> int:
        """Size of a value in bytes (per CPU for per-CPU maps)."""
        if self._object is None:
            return int(self._info().value_size)
        return int(self._call(lib.bpf_map__value_size))

    @property
    def max_entries(self) -> int:
        """Capacity of the map; settable before load."""
        if self._object is None:
            return int(self._info().max_entries)
        return int(self._call(lib.bpf_map__max_entries))

    @max_entries.setter
    def max_entries(self, value: int) -> None:
        if not isinstance(value, int) or isinstance(value, bool) or not 0 < value <= U32_MAX:
            raise ValueError(f"max_entries of map '{self.name}' must be a positive int below 2**32, not {value!r}")
        if self._object is None:
            raise MapError(errno.EINVAL, "max_entries of an existing map cannot change", context=f"map '{self.name}'")
        ret = self._call(lib.bpf_map__set_max_entries, value)
        if ret < 0 and self._object._loaded:
            raise MapError(-ret, "max_entries can only be set before load", context=f"map '{self.name}'")
        check_int(ret, f"set max_entries of map '{self.name}'", MapError)

    @property
    def flags(self) -> int:
        """The map's creation flags (BPF_F_*)."""
        if self._object is None:
            return int(self._info().map_flags)
        return int(self._call(lib.bpf_map__map_flags))

    @property
    def fd(self) -> int:
        """The map's fd (owned by the object, or by this map when standalone); -1 before load.

        The number is valid only while the map is open: a caller that hands
        it to C while another thread may close the map holds the map's
        guard meanwhile (the library's own calls do).
        """
        if self._object is None:
            self._check_open()
            return self._own_fd
        return max(int(self._call(lib.bpf_map__fd)), -1)

    def _loaded_fd(self, doing: str) -> int:
        """The fd, for a call made inside ``with self._guard:``."""
        if self._object is None:
            return self._own_fd
        fd = max(int(lib.bpf_map__fd(self._ptr)), -1)
        if fd < 0:
            raise MapError(errno.EBADF, f"map '{self.name}' is not created yet: load its object first", context=doing)
        return fd

    @property
    def id(self) -> int:
        """The kernel's id of the map."""
        return int(self._info().id)

    @property
    def btf(self) -> Btf | None:
        """The BTF the map's types come from (its object's, or the kernel's for a pinned map), if any."""
        if self._object is not None:
            return self._object.btf
        return self._btf

    def _btf_type(self, type_id: int) -> Any:
        btf = self.btf
        if not type_id or btf is None:
            return None
        try:
            return btf.type_by_id(type_id)
        except BpfError:
            return None

    def _declared_types(self) -> tuple[Any, Any]:
        """Key and value types from the map's definition in the ``.maps`` section.

        libbpf drops the BTF ids of some maps (queues, stacks, maps of maps)
        before creating them; their declaration still names the types.
        """
        btf = self.btf
        found: list[Any] = [None, None]
        if btf is None:
            return None, None
        try:
            section = btf.record(btf.find(".maps", Kind.DATASEC))
            for var_id, _offset, _size in section.vars:
                var = btf.record(var_id)
                if var.name != self.name:
                    continue
                for member in btf.resolve(var.ref).members:
                    if member.name in ("key", "value"):
                        pointer = btf.resolve(member.type_id)
                        if pointer.kind == Kind.PTR:
                            found[member.name == "value"] = btf.type_by_id(pointer.ref)
        except BpfError:
            pass
        return found[0], found[1]

    def _make_codecs(self) -> tuple[Codec, Codec]:
        key_type, value_type = self._explicit_types
        if self._object is not None:
            key_type = key_type or self._btf_type(int(self._call(lib.bpf_map__btf_key_type_id)))
            value_type = value_type or self._btf_type(int(self._call(lib.bpf_map__btf_value_type_id)))
            if key_type is None or value_type is None:
                declared_key, declared_value = self._declared_types()
                key_type = key_type or declared_key
                value_type = value_type or declared_value
        elif self._btf is not None:
            key_type = key_type or self._btf_type(int(self._info_cache.btf_key_type_id))
            value_type = value_type or self._btf_type(int(self._info_cache.btf_value_type_id))
        if key_type is None and self.type in _INDEXED and self.key_size == 4:
            key_type = ctypes.c_uint32  # array indexes, also without BTF
        key = Codec(key_type, self.key_size, f"key of map '{self.name}'")
        value = Codec(value_type, self.value_size, f"value of map '{self.name}'")
        if self.type in PER_CPU_TYPES:
            value = PerCpuCodec(value, int(lib.libbpf_num_possible_cpus()))
        return key, value

    @property
    def _codec(self) -> tuple[Codec, Codec]:
        if self._codecs is None:
            codecs = self._make_codecs()
            # A close in another thread meanwhile makes BTF lookups fail, which
            # _make_codecs reads as "no type": raise ClosedError, cache nothing.
            self._check_open()
            self._codecs = codecs
        return self._codecs

    @property
    def key_type(self) -> Any:
        """The Python type of keys made from BTF (a ctypes type), or ``bytes`` when the map has no BTF."""
        return self._codec[0].python_type

    @property
    def value_type(self) -> Any:
        """The Python type of values (per CPU for per-CPU maps), or ``bytes`` when the map has no BTF."""
        return self._codec[1].python_type

    def set_types(
        self, *, key_type: builtins.type[Any] | None = None, value_type: builtins.type[Any] | None = None
    ) -> None:
        """Decodes keys and values into these ctypes types instead of the ones made from BTF.

        E.g. a generated skeleton's struct classes, or types for a map
        without BTF. ``bytes`` reads that side raw; None leaves it as it is.
        A type's size must be the map's ``key_size`` / ``value_size`` (for
        per-CPU maps: the size of one CPU's value). For ring buffers and
        perf event arrays ``value_type`` is the record type readers use by
        default (see ``RingBufMap.event_type``). Raises TypeError for
        something that is not a ctypes type, ValueError naming the map when
        a size differs; no system call.
        """
        checked: list[Any] = []
        for what, given, size in (("key_type", key_type, self.key_size), ("value_type", value_type, self.value_size)):
            if given is not None and given is not bytes:
                check_ctype(given, f"{what} of map '{self.name}'")
                if ctypes.sizeof(given) != size:
                    side = what.removesuffix("_type")
                    raise ValueError(
                        f"{what} {given.__name__} of map '{self.name}' is {ctypes.sizeof(given)} bytes, "
                        f"but the map's {side}s are {size} bytes"
                    )
            checked.append(given)
        old_key, old_value = self._explicit_types
        self._explicit_types = (
            old_key if checked[0] is None else checked[0],
            old_value if checked[1] is None else checked[1],
        )
        self._codecs = None

    # --- raw access -------------------------------------------------------------
    def _value_copies(self) -> int:
        if self.type in PER_CPU_TYPES:
            return int(lib.libbpf_num_possible_cpus())
        return 1

    def _value_buffer_size(self) -> int:
        return self._codec[1].size

    def _check_bytes(self, value: object, size: int, what: str) -> bytes:
        if not isinstance(value, (bytes, bytearray, memoryview)):
            raise TypeError(f"{what} of map '{self.name}' must be bytes, not {type(value).__name__}")
        raw = bytes(value)
        if len(raw) != size:
            raise ValueError(f"{what} of map '{self.name}' must be {size} bytes, not {len(raw)}")
        return raw

    def lookup_bytes(self, key: bytes) -> bytes | None:
        """The raw value stored at the raw ``key``, or None when the key is absent."""
        raw_key = self._check_bytes(key, self.key_size, "key")
        return self._lookup_raw(raw_key)

    def _lookup_raw(self, raw_key: bytes | None) -> bytes | None:
        value = ffi.new("char[]", max(self._value_buffer_size(), 1))
        with self._guard:
            fd = self._loaded_fd(f"lookup in map '{self.name}'")
            ret = lib.bpf_map_lookup_elem(fd, raw_key if raw_key is not None else ffi.NULL, value)
        if ret == -errno.ENOENT:
            return None
        check_int(ret, f"lookup in map '{self.name}'", MapError)
        return bytes(ffi.buffer(value, self._value_buffer_size()))

    def update_bytes(self, key: bytes, value: bytes, flags: int = 0) -> None:
        """Stores the raw ``value`` at the raw ``key``."""
        if not isinstance(flags, int) or not 0 <= flags <= U64_MAX:
            raise self._bad_flags(flags)
        raw_key = self._check_bytes(key, self.key_size, "key")
        raw_value = self._check_bytes(value, self._value_buffer_size(), "value")
        self._update_raw(raw_key, raw_value, flags, repr(bytes(key).hex()))

    def _update_raw(self, raw_key: bytes | None, raw_value: bytes, flags: int, shown: str) -> None:
        with self._guard:
            fd = self._loaded_fd(f"update map '{self.name}'")
            ret = lib.bpf_map_update_elem(fd, raw_key if raw_key is not None else ffi.NULL, raw_value, int(flags))
        if ret < 0:
            raise self._update_error(-ret, shown, flags)

    def _bad_flags(self, flags: object) -> Exception:
        if not isinstance(flags, int):
            return TypeError(f"flags of map '{self.name}' must be UpdateFlags, not {builtins_type(flags).__name__}")
        return ValueError(f"flags of map '{self.name}' must be UpdateFlags (0..2**64-1), not {flags}")

    def _out_of_range(self, err: int, shown: str, context: str) -> MapIndexError:
        last = self.max_entries - 1
        return MapIndexError(err, f"index {shown} is out of range 0..{last}", context=context)

    def _update_error(self, err: int, shown: str, flags: int, *, key: str | None = None) -> BpfError:
        context = f"update map '{self.name}' at key {shown}"
        if err == errno.E2BIG and self.type in _INDEXED:  # the kernel's answer to an index past the end
            return self._out_of_range(err, shown if key is None else key, context)
        if err == errno.E2BIG:
            return MapFullError(err, f"the map is full ({self.max_entries} entries)", context=context)
        if err == errno.EEXIST and flags & UpdateFlags.NOEXIST:
            return KeyExistsError(err, "the key is already there (flags NOEXIST)", context=context)
        if err == errno.ENOENT and flags & UpdateFlags.EXIST:
            return KeyNotFoundError(err, "the key is not there (flags EXIST)", context=context)
        return error_from_errno(err, context, MapError)

    def _missing(self, shown: str, doing: str = "lookup in") -> KeyNotFoundError:
        context = f"{doing} map '{self.name}'"
        if self.type in _ARRAYS:
            return self._out_of_range(errno.ENOENT, shown, context)
        return KeyNotFoundError(errno.ENOENT, f"key {shown} not found", context=context)

    def get_bytes(self, key: bytes) -> bytes:
        """Like :meth:`lookup_bytes`, but raises :class:`KeyNotFoundError` for an absent key."""
        value = self.lookup_bytes(key)
        if value is None:
            raise self._missing(bytes(key).hex())
        return value

    def _delete_raw(self, raw_key: bytes, shown: str) -> None:
        with self._guard:
            fd = self._loaded_fd(f"delete from map '{self.name}'")
            ret = lib.bpf_map_delete_elem(fd, raw_key)
        if ret == -errno.ENOENT:
            raise self._missing(shown, "delete from")
        if ret == -errno.EINVAL and self.type in EINVAL_HINTS:
            raise MapError(
                errno.EINVAL, "Invalid argument", context=f"delete key {shown} from map '{self.name}'",
                hint=EINVAL_HINTS[self.type],
            )  # fmt: skip
        check_int(ret, f"delete key {shown} from map '{self.name}'", MapError)

    def _raw_keys(self) -> Iterator[bytes]:
        """Each key once, also while keys are deleted meanwhile.

        When the previous key was deleted, get_next_key starts again from the
        first key of the map; keys already seen are then skipped, so every key
        present during the whole iteration comes exactly once. Each step
        holds the map open for its system call: once the map is closed the
        next step raises ClosedError (the fd number may belong to another
        map by then).
        """
        guard, doing = self._guard, f"iterate map '{self.name}'"
        with guard:
            self._loaded_fd(doing)
        size = self.key_size
        bufs = (ffi.new("char[]", max(size, 1)), ffi.new("char[]", max(size, 1)))
        seen: set[bytes] = set()
        prev: Any = ffi.NULL
        steps, limit = 0, 16 * (self.max_entries + 16)
        cur = 0
        while True:
            with guard:
                ret = lib.bpf_map_get_next_key(self._loaded_fd(doing), prev, bufs[cur])
            if ret == -errno.ENOENT:
                return
            check_int(ret, f"iterate map '{self.name}'", MapError)
            raw = bytes(ffi.buffer(bufs[cur], size))
            if raw not in seen:
                seen.add(raw)
                yield raw
            prev = bufs[cur]
            cur ^= 1
            steps += 1
            if steps > limit:
                raise MapError(
                    errno.EAGAIN, "the map changes faster than it can be walked", context=f"iterate map '{self.name}'"
                )

    # --- pinning and standalone maps --------------------------------------------
    @property
    def pin_path(self) -> str | None:
        """Where this map was pinned by :meth:`pin` (or opened from), or None."""
        if self._object is not None:
            return cstr(self._call(lib.bpf_map__pin_path)) or None
        return self._pin_path

    def pin(self, path: str | os.PathLike[str]) -> None:
        """Pins the map on bpffs at ``path`` (the map then outlives this process)."""
        path = os.fspath(path)
        context = f"pin map '{self.name}' at {path}"
        if self._object is not None:
            check_int(self._call(lib.bpf_map__pin, path.encode()), context, MapError)
        else:
            with self._guard:
                check_int(lib.bpf_obj_pin(self._own_fd, os.fsencode(path)), context, MapError)
            self._pin_path = path

    def unpin(self) -> None:
        """Removes the pin made by :meth:`pin`."""
        path = self.pin_path
        if not path:
            raise MapError(errno.ENOENT, "not pinned", context=f"unpin map '{self.name}'")
        if self._object is not None:
            check_int(self._call(lib.bpf_map__unpin, ffi.NULL), f"unpin map '{self.name}'", MapError)
        else:
            try:
                os.unlink(path)
            except OSError as exc:
                raise error_from_errno(
                    exc.errno or errno.EIO, f"unpin map '{self.name}' from {path}", MapError
                ) from exc
            self._pin_path = None

    @classmethod
    def _from_fd(cls, fd: int, *, key_type: Any = None, value_type: Any = None, load_btf: bool = True) -> Map:
        """A standalone Map owning ``fd``, of the subclass its type calls for."""
        info = ffi.new("struct bpf_map_info *")
        size = ffi.new("__u32 *", ffi.sizeof("struct bpf_map_info"))
        ret = lib.bpf_map_get_info_by_fd(fd, info, size)
        if ret < 0:
            os.close(fd)
            check_int(ret, "get info of map", MapError)
        btf = None
        if load_btf and info.btf_id:
            try:
                btf = Btf.from_kernel(int(info.btf_id))
            except BpfError:
                btf = None
        kind = _class_for(int(info.type))
        return kind(None, ffi.NULL, fd=fd, info=info, btf=btf, key_type=key_type, value_type=value_type)

    @classmethod
    def from_pinned(cls, path: str | os.PathLike[str], *, key_type: Any = None, value_type: Any = None) -> Any:
        """Opens the map pinned at ``path``; its key and value types come back from its BTF.

        ``key_type``/``value_type`` (ctypes types) override BTF, e.g. for a map
        made by :meth:`create` without types. The returned map owns a new fd.
        """
        path = os.fspath(path)
        context = f"open pinned map {path}"
        if not os.path.exists(path):
            raise MapError(errno.ENOENT, "No such file or directory", context=context)
        fd = check_int(lib.bpf_obj_get(os.fsencode(path)), context, MapError)
        found = cls._from_fd(fd, key_type=key_type, value_type=value_type)
        found._pin_path = path
        if cls is not Map and not isinstance(found, cls):
            kind = found.type.name.lower()
            found.close()
            raise MapError(errno.EINVAL, f"the map there is a {kind} map, not a {cls.__name__}", context=context)
        return found

    @classmethod
    def from_id(cls, map_id: int) -> Any:
        """Opens the kernel's map with id ``map_id`` (a new fd owned by the returned map)."""
        if not isinstance(map_id, int) or isinstance(map_id, bool) or not 0 <= map_id <= U32_MAX:
            raise ValueError(f"a map id is an int in 0..2**32-1, not {map_id!r}")
        fd = check_int(lib.bpf_map_get_fd_by_id(map_id), f"open map id {map_id}", MapError)
        return cls._from_fd(fd)

    @classmethod
    def create(
        cls,
        type: MapType | str | int,
        *,
        key_size: int | None = None,
        value_size: int | None = None,
        max_entries: int,
        name: str | None = None,
        flags: int = 0,
        key_type: Any = None,
        value_type: Any = None,
        inner_map: Map | None = None,
        map_extra: int = 0,
    ) -> Any:
        """Creates a standalone map in the kernel (it lives while its fd or a pin does).

        ``type`` is a MapType or its name (``"hash"``, ``"percpu_array"``).
        ``key_type``/``value_type`` are ctypes types giving the Python types
        (and, when the sizes are left out, the sizes; array maps default to
        4-byte keys). When both are given
        (array maps: ``value_type`` alone, keys being u32), the map is created
        with BTF describing them, so :meth:`from_pinned` in another process
        gets them back by name. Types BTF cannot express (bitfields, pointers,
        byte-swapped types; see ``pyprobe._btf_write``), map types the kernel
        takes no BTF for, and kernels refusing the BTF leave the map created
        without BTF (logged at debug level to ``pyprobe``): such a map reopens
        as raw bytes unless types are passed again. ``inner_map`` is the
        template of a map-of-maps. Raises TypeError/ValueError naming the
        argument and the map on bad arguments (an unknown type, sizes, counts
        or flags outside their C types, an ``inner_map`` that is no Map) before
        any system call, MapError when the kernel refuses.
        """
        mtype = _map_type(type, name)
        label = name or mtype.name.lower()
        for what, sized in (("key_type", key_type), ("value_type", value_type)):
            if sized is not None and sized is not bytes and not (isinstance(sized, builtins_type) and _is_ctype(sized)):
                raise TypeError(f"{what} of map '{label}' must be a ctypes type, not {sized!r}")
        if key_size is None:
            if key_type not in (None, bytes):
                key_size = ctypes.sizeof(key_type)
            else:  # array-like maps are indexed by u32; the others have no natural key
                key_size = 4 if mtype in (*_INDEXED, MapType.PERF_EVENT_ARRAY) else 0
        if value_size is None:
            value_size = ctypes.sizeof(value_type) if value_type not in (None, bytes) else 0
        for what, v, top in (
            ("key_size", key_size, U32_MAX), ("value_size", value_size, U32_MAX),
            ("max_entries", max_entries, U32_MAX), ("flags", flags, U32_MAX), ("map_extra", map_extra, U64_MAX),
        ):  # fmt: skip
            if not isinstance(v, int) or isinstance(v, bool) or not 0 <= v <= top:
                bound = "2**64" if top == U64_MAX else "2**32"
                raise ValueError(f"{what} of map '{label}' must be a non-negative int below {bound}, not {v!r}")
        if key_type not in (None, bytes) and ctypes.sizeof(key_type) != key_size:
            raise ValueError(f"key_type of map '{label}' is {ctypes.sizeof(key_type)} bytes, key_size {key_size}")
        if value_type not in (None, bytes) and ctypes.sizeof(value_type) != value_size:
            raise ValueError(
                f"value_type of map '{label}' is {ctypes.sizeof(value_type)} bytes, value_size {value_size}"
            )
        if name is not None and (not isinstance(name, str) or len(name.encode()) > 15):
            raise ValueError(f"map name must be a str of at most 15 bytes, not {name!r}")
        opts = ffi.new("struct bpf_map_create_opts *")
        opts.sz = ffi.sizeof("struct bpf_map_create_opts")
        opts.map_flags = flags
        opts.map_extra = map_extra
        if inner_map is not None:
            if not isinstance(inner_map, Map):
                shown = builtins_type(inner_map).__name__
                raise TypeError(f"inner_map of map '{label}' must be a Map (the inner maps' template), not {shown}")
            opts.inner_map_fd = inner_map.fd
        cname = name.encode() if name else ffi.NULL
        btf_key = key_type if key_type is not bytes else None
        if btf_key is None and mtype in _INDEXED and key_size == 4:
            btf_key = ctypes.c_uint32  # what the map's keys read as anyway
        fd = _create_with_btf(mtype, cname, key_size, value_size, max_entries, opts, btf_key, value_type, label)
        if fd is None:
            fd = lib.bpf_map_create(int(mtype), cname, key_size, value_size, max_entries, opts)
        check_int(fd, f"create {mtype.name.lower()} map '{label}'", MapError)
        return cls._from_fd(fd, key_type=key_type, value_type=value_type, load_btf=False)

    def __repr__(self) -> str:
        if self.closed:
            return f"<{type(self).__name__} {self.name!r} closed>"
        kind = self.type.name.lower()
        return f"<{type(self).__name__} {self.name!r} {kind} key={self.key_size} value={self.value_size}>"


builtins_type = type

_KIND_MODULES = {
    "pyprobe.maps._cgroup": (MapType.CGRP_STORAGE, MapType.TASK_STORAGE, MapType.INODE_STORAGE, MapType.CGROUP_STORAGE),
    "pyprobe.maps._fdmaps": (MapType.PROG_ARRAY, MapType.ARRAY_OF_MAPS, MapType.HASH_OF_MAPS),
    "pyprobe.maps._iter": (MapType.USER_RINGBUF, MapType.STRUCT_OPS, MapType.ARENA),
    "pyprobe.maps._network": (MapType.LPM_TRIE, MapType.DEVMAP, MapType.DEVMAP_HASH, MapType.CPUMAP, MapType.XSKMAP),
    "pyprobe.maps._socket": (MapType.SOCKMAP, MapType.SOCKHASH, MapType.REUSEPORT_SOCKARRAY),
    "pyprobe.maps._values": (MapType.STACK_TRACE, MapType.QUEUE, MapType.STACK, MapType.BLOOM_FILTER),
}
"""The kind modules imported on first use of one of their map types (each registers its classes in
``Map._classes`` when imported): socket, ipaddress and selectors load only for a map that needs them.
The common kinds (pyprobe.maps._kinds: hashes, arrays, ring buffers, perf event arrays) are imported
with the package."""
_KIND_MODULE_OF = {int(t): module for module, types in _KIND_MODULES.items() for t in types}


def _class_for(map_type: int) -> builtins.type[Map]:
    """The Map subclass of a map type (:class:`Map` itself for a type without one), importing its module
    the first time; a type no module is listed for imports every kind module once before giving up."""
    found = Map._classes.get(map_type)
    if found is not None:
        return found
    import importlib

    for module in (_KIND_MODULE_OF[map_type],) if map_type in _KIND_MODULE_OF else _KIND_MODULES:
        importlib.import_module(module)
    return Map._classes.get(map_type, Map)


def _debug(message: str, *args: object) -> None:
    import logging  # only here: the import costs 5 ms of every start-up

    logging.getLogger("pyprobe").debug(message, *args)


def _create_with_btf(
    mtype: int, cname: Any, key_size: int, value_size: int, max_entries: int, opts: Any,
    key_type: Any, value_type: Any, label: str,
) -> int | None:  # fmt: skip
    """The fd of the map created with BTF for its key and value types, or None when it cannot be.

    The written BTF's fd and blob are released before returning: the map
    holds its own reference to the BTF in the kernel.
    """
    if key_type in (None, bytes) or value_type in (None, bytes):
        return None
    from pyprobe._btf_write import BtfWriter, UnsupportedType  # only here: standalone maps with types use it

    try:
        with BtfWriter() as writer:
            key_id = writer.add(key_type)
            value_id = writer.add(value_type)
            btf_fd = writer.load()
            opts.btf_fd = btf_fd
            opts.btf_key_type_id = key_id
            opts.btf_value_type_id = value_id
            try:
                fd = int(lib.bpf_map_create(int(mtype), cname, key_size, value_size, max_entries, opts))
            finally:
                opts.btf_fd = opts.btf_key_type_id = opts.btf_value_type_id = 0
    except (UnsupportedType, BpfError) as exc:
        _debug("map '%s' created without BTF: %s", label, exc)
        return None
    if fd < 0:
        _debug("map '%s' created without BTF: the kernel refused it (%s)", label, os.strerror(-fd))
        return None
    return fd


def _map_type(value: object, name: object) -> MapType:
    """The MapType ``value`` names; TypeError or ValueError naming the argument and the map otherwise."""
    where = f"type of map '{name}'" if isinstance(name, str) and name else "map type"
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise TypeError(f"{where} must be a MapType or its name (e.g. 'hash'), not {builtins_type(value).__name__}")
    if isinstance(value, int) and not 0 <= value < 1 << 31:
        raise ValueError(f"{where}: {value} is no MapType (the kernel's enum bpf_map_type)")
    try:
        return MapType(MapType.parse(value))
    except ValueError as exc:
        raise ValueError(f"{where}: {exc}") from None


def _is_ctype(t: Any) -> bool:
    return issubclass(t, (ctypes._SimpleCData, ctypes.Structure, ctypes.Union, ctypes.Array))


def check_ctype(t: object, what: str) -> None:
    """Raises TypeError unless ``t`` is a ctypes type (scalar, Structure, Union or Array)."""
    if not (isinstance(t, builtins_type) and _is_ctype(t)):
        shown = t.__name__ if isinstance(t, builtins_type) else repr(t)
        raise TypeError(f"{what} must be a ctypes type (or bytes), not {shown}")
