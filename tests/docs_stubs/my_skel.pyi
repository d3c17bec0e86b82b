"""The skeleton `pyprobe gen skeleton my.bpf.o -o my_skel.py` writes for the README's probe (its types)."""

from typing import Any, ClassVar

import pyprobe
from pyprobe.btf import BtfStruct
from pyprobe.skeleton import Globals, Links, Maps, Programs, Skeleton

__all__ = ["MySkeleton", "OpenEvent"]

class OpenEvent(BtfStruct):
    pid: int
    filename: bytes

class MyPrograms(Programs):
    handler: pyprobe.Program

class MyMaps(Maps):
    TYPES: ClassVar[dict[str, tuple[type[Any] | None, type[Any] | None]]]
    counts: pyprobe.HashMap[int, int]
    events: pyprobe.RingBufMap[OpenEvent]

class MyLinks(Links):
    handler: pyprobe.Link | None

class MyBss(Globals):
    hits: int

class MyRodata(Globals):
    target_pid: int

class MySkeleton(Skeleton):
    progs: MyPrograms
    maps: MyMaps
    links: MyLinks
    bss: MyBss
    rodata: MyRodata
