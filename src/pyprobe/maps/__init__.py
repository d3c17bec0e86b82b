"""BPF maps: the :class:`Map` base and one typed class per kind of map, chosen by map type.

``from pyprobe.maps import Map`` gives the base; :meth:`Map._wrap` is the
factory objects use, :meth:`Map.create` and :meth:`Map.from_pinned` make
standalone maps. Keys and values convert through the map's BTF types.
"""

from __future__ import annotations

from pyprobe.maps._base import KeyExistsError, Map, UpdateFlags
from pyprobe.maps._cgroup import (
    CgroupId,
    CgroupLocalStorageMap,
    CgroupStorageKey,
    CgroupStorageMap,
    InodeStorageMap,
    TaskStorageMap,
)
from pyprobe.maps._iter import ArenaMap, StructOpsMap, UserRingBufMap
from pyprobe.maps._kinds import (
    ArrayMap,
    ArrayOfMaps,
    BloomFilterMap,
    HashMap,
    HashOfMaps,
    KeyValueMap,
    LruHashMap,
    LruPerCpuHashMap,
    MapItems,
    PerCpuArrayMap,
    PerCpuHashMap,
    PerfEventArrayMap,
    ProgArrayMap,
    QueueMap,
    RingBufMap,
    StackMap,
    StackTraceMap,
)
from pyprobe.maps._network import CpuMap, DevMap, DevMapHash, LpmTrieMap, XskMap
from pyprobe.maps._socket import ReuseportSockArrayMap, SockHashMap, SockMap, socket_cookie

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
