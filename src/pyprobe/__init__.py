"""pyprobe: load CO-RE BPF objects with libbpf and drive them from Python.

>>> import pyprobe
>>> with pyprobe.load("probe.bpf.o") as obj:
...     links = obj.attach()
"""

from __future__ import annotations

from pyprobe import features, perf_event, symbols, usdt
from pyprobe._ffi import libbpf_version
from pyprobe._resource import ClosedError
from pyprobe.enums import AttachType, LinkType, MapType, ProgramType
from pyprobe.errors import (
    AmbiguousSymbolError,
    AttachError,
    BpfError,
    BpfPermissionError,
    KeyNotFoundError,
    LoadError,
    MapError,
    MapFullError,
    SymbolNotFoundError,
    UnsupportedError,
)
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
from pyprobe.maps import Map
from pyprobe.object import BpfObject, load, open
from pyprobe.program import Program, TestRunResult

__version__ = "0.1.0"

__all__ = [
    "AmbiguousSymbolError",
    "AttachError",
    "AttachType",
    "BpfError",
    "BpfObject",
    "BpfPermissionError",
    "ClosedError",
    "KeyNotFoundError",
    "KprobeLink",
    "Link",
    "LinkType",
    "LoadError",
    "Map",
    "MapError",
    "MapFullError",
    "MapType",
    "PerfEventLink",
    "Program",
    "ProgramType",
    "RawTracepointLink",
    "SymbolNotFoundError",
    "TestRunResult",
    "TraceLink",
    "TracepointLink",
    "UnsupportedError",
    "UprobeLink",
    "UprobeMultiLink",
    "UsdtLink",
    "XdpLink",
    "__version__",
    "features",
    "libbpf_version",
    "load",
    "open",
    "perf_event",
    "symbols",
    "usdt",
]
