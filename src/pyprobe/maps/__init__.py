"""BPF maps: the :class:`Map` base and one typed class per kind of map, chosen by map type.

``from pyprobe.maps import Map`` gives the base; :meth:`Map._wrap` is the
factory objects use, :meth:`Map.create` and :meth:`Map.from_pinned` make
standalone maps. Keys and values convert through the map's BTF types.
"""

from __future__ import annotations

import sys

from pyprobe.maps._base import KeyExistsError, Map, UpdateFlags
from pyprobe.maps._kinds import (
    ArrayMap,
    HashMap,
    KeyValueMap,
    LruHashMap,
    LruPerCpuHashMap,
    MapItems,
    PerCpuArrayMap,
    PerCpuHashMap,
    PerfEventArrayMap,
    RingBufMap,
)

TYPE_CHECKING = False  # typing.TYPE_CHECKING; type checkers see every name below
if TYPE_CHECKING:  # the kind modules below are imported on first use of a name (PEP 562) or of their map type
    from typing import Any

    from pyprobe.maps._cgroup import (
        CgroupId,
        CgroupLocalStorageMap,
        CgroupStorageKey,
        CgroupStorageMap,
        InodeStorageMap,
        TaskStorageMap,
    )
    from pyprobe.maps._fdmaps import ArrayOfMaps, HashOfMaps, ProgArrayMap
    from pyprobe.maps._iter import ArenaMap, StructOpsMap, UserRingBufMap
    from pyprobe.maps._network import CpuMap, DevMap, DevMapHash, LpmTrieMap, XskMap
    from pyprobe.maps._socket import ReuseportSockArrayMap, SockHashMap, SockMap, socket_cookie
    from pyprobe.maps._values import BloomFilterMap, QueueMap, StackMap, StackTraceMap

_LAZY = {
    "CgroupId": "_cgroup", "CgroupLocalStorageMap": "_cgroup", "CgroupStorageKey": "_cgroup",
    "CgroupStorageMap": "_cgroup", "InodeStorageMap": "_cgroup", "TaskStorageMap": "_cgroup",
    "ArrayOfMaps": "_fdmaps", "HashOfMaps": "_fdmaps", "ProgArrayMap": "_fdmaps",
    "ArenaMap": "_iter", "StructOpsMap": "_iter", "UserRingBufMap": "_iter",
    "CpuMap": "_network", "DevMap": "_network", "DevMapHash": "_network", "LpmTrieMap": "_network",
    "XskMap": "_network",
    "ReuseportSockArrayMap": "_socket", "SockHashMap": "_socket", "SockMap": "_socket",
    "socket_cookie": "_socket",
    "BloomFilterMap": "_values", "QueueMap": "_values", "StackMap": "_values", "StackTraceMap": "_values",
}  # fmt: skip
"""Public name -> the kind module (of pyprobe.maps) defining it: imported when the name is first used, or
when an object has a map of one of its types (see ``_base._KIND_MODULES``), so that socket, ipaddress and
selectors load only where a network, socket, cgroup or iterator map is used."""

if not TYPE_CHECKING:

    def __getattr__(name: str) -> Any:
        """Imports the kind module of a public name on first use (PEP 562)."""
        try:
            module = _LAZY[name]
        except KeyError:
            raise AttributeError(f"module 'pyprobe.maps' has no attribute {name!r}") from None
        __import__(f"pyprobe.maps.{module}")
        value = getattr(sys.modules[f"pyprobe.maps.{module}"], name)
        globals()[name] = value
        return value

    def __dir__() -> list[str]:
        return sorted(set(globals()) | set(_LAZY))


__all__ = [
    "ArenaMap",
    "StructOpsMap",
    "UserRingBufMap",
    "ArrayMap",
    "ArrayOfMaps",
    "BloomFilterMap",
    "CgroupId",
    "CgroupLocalStorageMap",
    "CgroupStorageKey",
    "CgroupStorageMap",
    "HashMap",
    "HashOfMaps",
    "InodeStorageMap",
    "KeyExistsError",
    "KeyValueMap",
    "LruHashMap",
    "LruPerCpuHashMap",
    "Map",
    "MapItems",
    "PerCpuArrayMap",
    "PerCpuHashMap",
    "PerfEventArrayMap",
    "ProgArrayMap",
    "QueueMap",
    "ReuseportSockArrayMap",
    "RingBufMap",
    "SockHashMap",
    "SockMap",
    "StackMap",
    "StackTraceMap",
    "TaskStorageMap",
    "UpdateFlags",
    "socket_cookie",
    # network maps
    "CpuMap",
    "DevMap",
    "DevMapHash",
    "LpmTrieMap",
    "XskMap",
]
