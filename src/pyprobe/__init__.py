"""pyprobe: load CO-RE BPF objects with libbpf and drive them from Python.

>>> import pyprobe
>>> with pyprobe.load("probe.bpf.o") as obj:
...     links = obj.attach()
"""

from __future__ import annotations

import sys

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (and re, enum): type checkers know the name
if TYPE_CHECKING:  # the names below are imported on first use (PEP 562 __getattr__), see _LAZY
    from typing import Any

    from pyprobe import features, perf_event, symbols, system, usdt
    from pyprobe._data import cmake_dir
    from pyprobe._ffi import libbpf_version
    from pyprobe._reader import ReaderBusyError
    from pyprobe._resource import ClosedError
    from pyprobe.attach.cgroup import CgroupAttachFlags, CgroupLink
    from pyprobe.attach.iterators import IterLink
    from pyprobe.attach.network import NetfilterLink, NetkitLink, TcLink, TcxLink
    from pyprobe.attach.sections import SectionHandler, register_section_handler
    from pyprobe.attach.socket import NetnsLink, ReuseportLink, SocketFilterLink, SockMapLink
    from pyprobe.attach.struct_ops import StructOpsLink
    from pyprobe.batch import Batch
    from pyprobe.btf import Btf, BtfError
    from pyprobe.enums import AttachType, LinkType, MapType, ProgramType
    from pyprobe.errors import (
        AmbiguousSymbolError,
        AttachError,
        BinaryNotFoundError,
        BpfError,
        BpfPermissionError,
        KeyNotFoundError,
        LoadError,
        MapError,
        MapFullError,
        MapIndexError,
        ObjectNotFoundError,
        SymbolNotFoundError,
        UnsupportedError,
    )
    from pyprobe.globals import GlobalVariables
    from pyprobe.link import (
        KprobeLink,
        Link,
        PerfEventLink,
        RawTracepointLink,
        TraceLink,
        TracepointLink,
        UprobeLink,
        UprobeMultiLink,
        UsdtLink,
        XdpLink,
    )
    from pyprobe.maps import (
        ArenaMap,
        ArrayMap,
        ArrayOfMaps,
        BloomFilterMap,
        CgroupLocalStorageMap,
        CgroupStorageMap,
        HashMap,
        HashOfMaps,
        InodeStorageMap,
        KeyExistsError,
        KeyValueMap,
        LruHashMap,
        LruPerCpuHashMap,
        Map,
        MapItems,
        PerCpuArrayMap,
        PerCpuHashMap,
        PerfEventArrayMap,
        ProgArrayMap,
        QueueMap,
        ReuseportSockArrayMap,
        RingBufMap,
        SockHashMap,
        SockMap,
        StackMap,
        StackTraceMap,
        StructOpsMap,
        TaskStorageMap,
        UpdateFlags,
        UserRingBufMap,
        socket_cookie,
    )
    from pyprobe.maps._network import CpuMap, DevMap, DevMapHash, LpmTrieMap, XskMap
    from pyprobe.object import BpfObject, load, open
    from pyprobe.perfbuf import PerfBuffer
    from pyprobe.program import Program, TestRunResult
    from pyprobe.ringbuf import RingBuffer
    from pyprobe.skeleton import Skeleton
    from pyprobe.tracefs import TraceLine, trace_pipe
    from pyprobe.user_ringbuf import UserRingBuffer, UserRingBufSample

__version__ = "0.1.0"

_LAZY: dict[str, tuple[str, str | None]] = {
    "features": ("pyprobe.features", None),
    "perf_event": ("pyprobe.perf_event", None),
    "symbols": ("pyprobe.symbols", None),
    "system": ("pyprobe.system", None),
    "usdt": ("pyprobe.usdt", None),
    "cmake_dir": ("pyprobe._data", "cmake_dir"),
    "libbpf_version": ("pyprobe._ffi", "libbpf_version"),
    "ReaderBusyError": ("pyprobe._reader", "ReaderBusyError"),
    "ClosedError": ("pyprobe._resource", "ClosedError"),
    "Batch": ("pyprobe.batch", "Batch"),
    "Btf": ("pyprobe.btf", "Btf"),
    "BtfError": ("pyprobe.btf", "BtfError"),
    "AttachType": ("pyprobe.enums", "AttachType"),
    "LinkType": ("pyprobe.enums", "LinkType"),
    "MapType": ("pyprobe.enums", "MapType"),
    "ProgramType": ("pyprobe.enums", "ProgramType"),
    "AmbiguousSymbolError": ("pyprobe.errors", "AmbiguousSymbolError"),
    "AttachError": ("pyprobe.errors", "AttachError"),
    "BinaryNotFoundError": ("pyprobe.errors", "BinaryNotFoundError"),
    "BpfError": ("pyprobe.errors", "BpfError"),
    "BpfPermissionError": ("pyprobe.errors", "BpfPermissionError"),
    "KeyNotFoundError": ("pyprobe.errors", "KeyNotFoundError"),
    "LoadError": ("pyprobe.errors", "LoadError"),
    "MapError": ("pyprobe.errors", "MapError"),
    "MapFullError": ("pyprobe.errors", "MapFullError"),
    "MapIndexError": ("pyprobe.errors", "MapIndexError"),
    "ObjectNotFoundError": ("pyprobe.errors", "ObjectNotFoundError"),
    "SymbolNotFoundError": ("pyprobe.errors", "SymbolNotFoundError"),
    "UnsupportedError": ("pyprobe.errors", "UnsupportedError"),
    "GlobalVariables": ("pyprobe.globals", "GlobalVariables"),
    "IterLink": ("pyprobe.attach.iterators", "IterLink"),
    "SectionHandler": ("pyprobe.attach.sections", "SectionHandler"),
    "register_section_handler": ("pyprobe.attach.sections", "register_section_handler"),
    "StructOpsLink": ("pyprobe.attach.struct_ops", "StructOpsLink"),
    "ArenaMap": ("pyprobe.maps", "ArenaMap"),
    "StructOpsMap": ("pyprobe.maps", "StructOpsMap"),
    "UserRingBufMap": ("pyprobe.maps", "UserRingBufMap"),
    "UserRingBuffer": ("pyprobe.user_ringbuf", "UserRingBuffer"),
    "UserRingBufSample": ("pyprobe.user_ringbuf", "UserRingBufSample"),
    "KprobeLink": ("pyprobe.link", "KprobeLink"),
    "Link": ("pyprobe.link", "Link"),
    "PerfEventLink": ("pyprobe.link", "PerfEventLink"),
    "RawTracepointLink": ("pyprobe.link", "RawTracepointLink"),
    "TraceLink": ("pyprobe.link", "TraceLink"),
    "TracepointLink": ("pyprobe.link", "TracepointLink"),
    "UprobeLink": ("pyprobe.link", "UprobeLink"),
    "UprobeMultiLink": ("pyprobe.link", "UprobeMultiLink"),
    "UsdtLink": ("pyprobe.link", "UsdtLink"),
    "XdpLink": ("pyprobe.link", "XdpLink"),
    "NetnsLink": ("pyprobe.attach.socket", "NetnsLink"),
    "ReuseportLink": ("pyprobe.attach.socket", "ReuseportLink"),
    "SockMapLink": ("pyprobe.attach.socket", "SockMapLink"),
    "SocketFilterLink": ("pyprobe.attach.socket", "SocketFilterLink"),
    "ReuseportSockArrayMap": ("pyprobe.maps", "ReuseportSockArrayMap"),
    "SockHashMap": ("pyprobe.maps", "SockHashMap"),
    "SockMap": ("pyprobe.maps", "SockMap"),
    "socket_cookie": ("pyprobe.maps", "socket_cookie"),
    "CgroupAttachFlags": ("pyprobe.attach.cgroup", "CgroupAttachFlags"),
    "CgroupLink": ("pyprobe.attach.cgroup", "CgroupLink"),
    "CgroupLocalStorageMap": ("pyprobe.maps", "CgroupLocalStorageMap"),
    "CgroupStorageMap": ("pyprobe.maps", "CgroupStorageMap"),
    "InodeStorageMap": ("pyprobe.maps", "InodeStorageMap"),
    "TaskStorageMap": ("pyprobe.maps", "TaskStorageMap"),
    "ArrayMap": ("pyprobe.maps", "ArrayMap"),
    "ArrayOfMaps": ("pyprobe.maps", "ArrayOfMaps"),
    "BloomFilterMap": ("pyprobe.maps", "BloomFilterMap"),
    "HashMap": ("pyprobe.maps", "HashMap"),
    "HashOfMaps": ("pyprobe.maps", "HashOfMaps"),
    "KeyExistsError": ("pyprobe.maps", "KeyExistsError"),
    "KeyValueMap": ("pyprobe.maps", "KeyValueMap"),
    "LruHashMap": ("pyprobe.maps", "LruHashMap"),
    "LruPerCpuHashMap": ("pyprobe.maps", "LruPerCpuHashMap"),
    "Map": ("pyprobe.maps", "Map"),
    "MapItems": ("pyprobe.maps", "MapItems"),
    "PerCpuArrayMap": ("pyprobe.maps", "PerCpuArrayMap"),
    "PerCpuHashMap": ("pyprobe.maps", "PerCpuHashMap"),
    "PerfEventArrayMap": ("pyprobe.maps", "PerfEventArrayMap"),
    "ProgArrayMap": ("pyprobe.maps", "ProgArrayMap"),
    "QueueMap": ("pyprobe.maps", "QueueMap"),
    "RingBufMap": ("pyprobe.maps", "RingBufMap"),
    "StackMap": ("pyprobe.maps", "StackMap"),
    "StackTraceMap": ("pyprobe.maps", "StackTraceMap"),
    "UpdateFlags": ("pyprobe.maps", "UpdateFlags"),
    "NetfilterLink": ("pyprobe.attach.network", "NetfilterLink"),
    "NetkitLink": ("pyprobe.attach.network", "NetkitLink"),
    "TcLink": ("pyprobe.attach.network", "TcLink"),
    "TcxLink": ("pyprobe.attach.network", "TcxLink"),
    "CpuMap": ("pyprobe.maps", "CpuMap"),
    "DevMap": ("pyprobe.maps", "DevMap"),
    "DevMapHash": ("pyprobe.maps", "DevMapHash"),
    "LpmTrieMap": ("pyprobe.maps", "LpmTrieMap"),
    "XskMap": ("pyprobe.maps", "XskMap"),
    "BpfObject": ("pyprobe.object", "BpfObject"),
    "load": ("pyprobe.object", "load"),
    "open": ("pyprobe.object", "open"),
    "PerfBuffer": ("pyprobe.perfbuf", "PerfBuffer"),
    "Program": ("pyprobe.program", "Program"),
    "TestRunResult": ("pyprobe.program", "TestRunResult"),
    "RingBuffer": ("pyprobe.ringbuf", "RingBuffer"),
    "Skeleton": ("pyprobe.skeleton", "Skeleton"),
    "TraceLine": ("pyprobe.tracefs", "TraceLine"),
    "trace_pipe": ("pyprobe.tracefs", "trace_pipe"),
}
"""Public name -> (module, attribute in it; None for the module itself). ``import pyprobe`` imports
none of them: a command that needs only part of the library (``pyprobe trace``) imports only that
part, and a library user pays for what is used."""


_namespace = globals()
"""This module's namespace (the submodule pyprobe.globals shadows the builtin once imported)."""

if not TYPE_CHECKING:  # type checkers see the imports above; a module __getattr__ would make typos Any

    def __getattr__(name: str) -> Any:
        """Imports a public name's module on first use and keeps the name in the package (PEP 562)."""
        try:
            module, attr = _LAZY[name]
        except KeyError:
            raise AttributeError(f"module 'pyprobe' has no attribute {name!r}") from None
        __import__(module)
        value = sys.modules[module] if attr is None else getattr(sys.modules[module], attr)
        _namespace[name] = value
        return value

    def __dir__() -> list[str]:
        return sorted(set(_namespace) | set(_LAZY))


def include_dir() -> str:
    """The directory of the BPF headers installed with pyprobe: ``clang -I`` it to build probes.

    It holds ``pyprobe/*.h``, libbpf's BPF-side headers (``bpf/``) and
    ``vmlinux/<arch>/vmlinux.h``; ``pyprobe cflags`` prints the whole set of
    flags. Raises FileNotFoundError when the package was installed without them.
    """
    from pyprobe.compiler import include_dir as _include_dir

    return _include_dir()


__all__ = [
    "AmbiguousSymbolError",
    "ArrayMap",
    "ArrayOfMaps",
    "AttachError",
    "AttachType",
    "BinaryNotFoundError",
    "BloomFilterMap",
    "Batch",
    "BpfError",
    "BpfObject",
    "BpfPermissionError",
    "Btf",
    "BtfError",
    "ClosedError",
    "GlobalVariables",
    "IterLink",
    "SectionHandler",
    "register_section_handler",
    "StructOpsLink",
    "ArenaMap",
    "StructOpsMap",
    "UserRingBufMap",
    "UserRingBuffer",
    "UserRingBufSample",
    "HashMap",
    "HashOfMaps",
    "KeyExistsError",
    "KeyNotFoundError",
    "KeyValueMap",
    "KprobeLink",
    "Link",
    "LinkType",
    "LoadError",
    "LruHashMap",
    "LruPerCpuHashMap",
    "Map",
    "MapError",
    "MapFullError",
    "MapIndexError",
    "MapItems",
    "MapType",
    "ObjectNotFoundError",
    "PerCpuArrayMap",
    "PerCpuHashMap",
    "PerfEventArrayMap",
    "ProgArrayMap",
    "Program",
    "ProgramType",
    "QueueMap",
    "ReaderBusyError",
    "RingBufMap",
    "StackMap",
    "StackTraceMap",
    "PerfBuffer",
    "RingBuffer",
    "Skeleton",
    "SymbolNotFoundError",
    "TestRunResult",
    "TraceLine",
    "UnsupportedError",
    "UpdateFlags",
    "PerfEventLink",
    "RawTracepointLink",
    "TraceLink",
    "TracepointLink",
    "UprobeLink",
    "UprobeMultiLink",
    "UsdtLink",
    "XdpLink",
    "NetnsLink",
    "ReuseportLink",
    "SockMapLink",
    "SocketFilterLink",
    "ReuseportSockArrayMap",
    "SockHashMap",
    "SockMap",
    "socket_cookie",
    "CgroupAttachFlags",
    "CgroupLink",
    "CgroupLocalStorageMap",
    "CgroupStorageMap",
    "InodeStorageMap",
    "TaskStorageMap",
    "NetfilterLink",
    "NetkitLink",
    "TcLink",
    "TcxLink",
    "CpuMap",
    "DevMap",
    "DevMapHash",
    "LpmTrieMap",
    "XskMap",
    "__version__",
    "cmake_dir",
    "features",
    "include_dir",
    "libbpf_version",
    "load",
    "open",
    "trace_pipe",
    "perf_event",
    "symbols",
    "system",
    "usdt",
]
