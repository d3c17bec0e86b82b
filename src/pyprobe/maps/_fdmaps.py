"""Maps whose values are file descriptors: program arrays (tail calls) and maps of maps.

A value goes in as a Program, a Map or an fd, and comes out as the id the kernel gives the program or
map in the slot.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pyprobe.enums import MapType
from pyprobe.maps._base import Map
from pyprobe.maps._kinds import _shown

if TYPE_CHECKING:
    from pyprobe.program import Program

__all__ = ["ArrayOfMaps", "HashOfMaps", "ProgArrayMap"]

_FD_MAX = (1 << 31) - 1


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
        if fd > _FD_MAX:
            raise ValueError(f"program fd for map '{self.name}' must be below 2**31, not {fd}")
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


class _OfMaps(Map):
    """Maps of maps: ``m[k] = inner_map`` (a Map or a map fd); ``m[k]`` gives the inner map's id."""

    def _inner_fd(self, inner: Any) -> bytes:
        fd = inner if isinstance(inner, int) and not isinstance(inner, bool) else getattr(inner, "fd", None)
        if not isinstance(fd, int) or isinstance(fd, bool) or isinstance(inner, bool):
            raise TypeError(f"map '{self.name}' holds maps (Map or fd), not {type(inner).__name__}")
        if fd < 0:
            raise ValueError(f"inner map for map '{self.name}' is not created yet")
        if fd > _FD_MAX:
            raise ValueError(f"inner map fd for map '{self.name}' must be below 2**31, not {fd}")
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


Map._classes.update(
    {
        MapType.PROG_ARRAY: ProgArrayMap,
        MapType.ARRAY_OF_MAPS: ArrayOfMaps,
        MapType.HASH_OF_MAPS: HashOfMaps,
    }
)
