"""Maps of a BPF object: attributes, and raw-bytes access by key."""

from __future__ import annotations

import errno
import os
from typing import TYPE_CHECKING, Any

from pyprobe._ffi import cstr, ffi, lib
from pyprobe.enums import MapType
from pyprobe.errors import BpfError, KeyNotFoundError, MapError, check_int

if TYPE_CHECKING:
    from pyprobe.object import BpfObject

__all__ = ["Map"]


class Map:
    """One map of a :class:`~pyprobe.BpfObject`; it keeps its object alive."""

    def __init__(self, obj: BpfObject, ptr: Any) -> None:
        self._object = obj
        self._ptr = ptr
        self.name: str = cstr(lib.bpf_map__name(ptr))
        """The map's name in the C source."""

    @classmethod
    def _wrap(cls, obj: BpfObject, ptr: Any) -> Map:
        """The Map object for a libbpf map of ``obj``."""
        return cls(obj, ptr)

    def _live(self) -> Any:
        self._object._check_open()
        return self._ptr

    @property
    def type(self) -> MapType:
        """The map type."""
        return MapType(int(lib.bpf_map__type(self._live())))

    @property
    def key_size(self) -> int:
        """Size of a key in bytes."""
        return int(lib.bpf_map__key_size(self._live()))

    @property
    def value_size(self) -> int:
        """Size of a value in bytes (per CPU for per-CPU maps)."""
        return int(lib.bpf_map__value_size(self._live()))

    @property
    def max_entries(self) -> int:
        """Capacity of the map; settable before load."""
        return int(lib.bpf_map__max_entries(self._live()))

    @max_entries.setter
    def max_entries(self, value: int) -> None:
        if not isinstance(value, int) or value <= 0:
            raise ValueError(f"max_entries of map '{self.name}' must be a positive int, not {value!r}")
        ret = lib.bpf_map__set_max_entries(self._live(), value)
        if ret < 0 and self._object.state == "loaded":
            raise MapError(-ret, "max_entries can only be set before load", context=f"map '{self.name}'")
        check_int(ret, f"set max_entries of map '{self.name}'", MapError)

    @property
    def flags(self) -> int:
        """The map's creation flags (BPF_F_*)."""
        return int(lib.bpf_map__map_flags(self._live()))

    @property
    def fd(self) -> int:
        """The map's fd, owned by the object; -1 before load."""
        return max(int(lib.bpf_map__fd(self._live())), -1)

    def _loaded_fd(self, doing: str) -> int:
        fd = self.fd
        if fd < 0:
            raise MapError(errno.EBADF, f"map '{self.name}' is not created yet: load its object first", context=doing)
        return fd

    @property
    def id(self) -> int:
        """The kernel's id of the map."""
        info = ffi.new("struct bpf_map_info *")
        size = ffi.new("__u32 *", ffi.sizeof("struct bpf_map_info"))
        fd = self._loaded_fd(f"get info of map '{self.name}'")
        check_int(lib.bpf_map_get_info_by_fd(fd, info, size), f"get info of map '{self.name}'", MapError)
        return int(info.id)

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
        fd = self._loaded_fd(f"lookup in map '{self.name}'")
        value = ffi.new("char[]", self.value_size * self._value_copies())
        ret = lib.bpf_map_lookup_elem(fd, raw_key, value)
        if ret == -errno.ENOENT:
            return None
        check_int(ret, f"lookup in map '{self.name}'", MapError)
        return bytes(ffi.buffer(value))

    def update_bytes(self, key: bytes, value: bytes, flags: int = 0) -> None:
        """Stores the raw ``value`` at the raw ``key``."""
        raw_key = self._check_bytes(key, self.key_size, "key")
        raw_value = self._check_bytes(value, self.value_size * self._value_copies(), "value")
        fd = self._loaded_fd(f"update map '{self.name}'")
        check_int(lib.bpf_map_update_elem(fd, raw_key, raw_value, flags), f"update map '{self.name}'", MapError)

    def _value_copies(self) -> int:
        if self.type in (MapType.PERCPU_ARRAY, MapType.PERCPU_HASH, MapType.LRU_PERCPU_HASH):
            return int(lib.libbpf_num_possible_cpus())
        return 1

    def get_bytes(self, key: bytes) -> bytes:
        """Like :meth:`lookup_bytes`, but raises :class:`KeyNotFoundError` for an absent key."""
        value = self.lookup_bytes(key)
        if value is None:
            raise KeyNotFoundError(errno.ENOENT, f"key {bytes(key).hex()} not found", context=f"map '{self.name}'")
        return value

    def pin(self, path: str | os.PathLike[str]) -> None:
        """Pins the map on bpffs at ``path``."""
        path = os.fspath(path)
        check_int(lib.bpf_map__pin(self._live(), path.encode()), f"pin map '{self.name}' at {path}", MapError)

    def unpin(self) -> None:
        """Removes the pin made by :meth:`pin`."""
        path = cstr(lib.bpf_map__pin_path(self._live()))
        if not path:
            raise BpfError(errno.ENOENT, "not pinned", context=f"unpin map '{self.name}'")
        check_int(lib.bpf_map__unpin(self._live(), ffi.NULL), f"unpin map '{self.name}'", MapError)

    def __repr__(self) -> str:
        kind = self.type.name.lower()
        return f"<{type(self).__name__} {self.name!r} {kind} key={self.key_size} value={self.value_size}>"
