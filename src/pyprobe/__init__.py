"""pyprobe: load CO-RE BPF objects with libbpf and drive them from Python.

>>> import pyprobe
>>> with pyprobe.load("probe.bpf.o") as obj:
...     links = obj.attach()
"""

from __future__ import annotations

from pyprobe import features, perf_event, symbols, system, usdt
from pyprobe._data import cmake_dir
from pyprobe._ffi import libbpf_version
from pyprobe._reader import ReaderBusyError
from pyprobe._resource import ClosedError
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
    ArrayMap,
    ArrayOfMaps,
    BloomFilterMap,
    HashMap,
    HashOfMaps,
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
    RingBufMap,
    StackMap,
    StackTraceMap,
    UpdateFlags,
)
from pyprobe.object import BpfObject, load, open
from pyprobe.perfbuf import PerfBuffer
from pyprobe.program import Program, TestRunResult
from pyprobe.ringbuf import RingBuffer
from pyprobe.skeleton import Skeleton
from pyprobe.tracefs import TraceLine, trace_pipe

__version__ = "0.1.0"


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
