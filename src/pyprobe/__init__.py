"""pyprobe: load CO-RE BPF objects with libbpf and drive them from Python.

>>> import pyprobe
>>> with pyprobe.load("probe.bpf.o") as obj:
...     links = obj.attach()
"""

from __future__ import annotations

from pyprobe._ffi import libbpf_version
from pyprobe._resource import ClosedError
from pyprobe.batch import Batch
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
from pyprobe.link import Link
from pyprobe.maps import Map
from pyprobe.object import BpfObject, load, open
from pyprobe.perfbuf import PerfBuffer
from pyprobe.program import Program, TestRunResult
from pyprobe.ringbuf import RingBuffer
from pyprobe.tracefs import TraceLine, trace_pipe

__version__ = "0.1.0"

__all__ = [
    "AmbiguousSymbolError",
    "AttachError",
    "AttachType",
    "Batch",
    "BpfError",
    "BpfObject",
    "BpfPermissionError",
    "ClosedError",
    "KeyNotFoundError",
    "Link",
    "LinkType",
    "LoadError",
    "Map",
    "MapError",
    "MapFullError",
    "MapType",
    "PerfBuffer",
    "Program",
    "ProgramType",
    "RingBuffer",
    "SymbolNotFoundError",
    "TestRunResult",
    "TraceLine",
    "UnsupportedError",
    "__version__",
    "libbpf_version",
    "load",
    "open",
    "trace_pipe",
]
