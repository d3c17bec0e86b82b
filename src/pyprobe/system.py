"""The BPF programs and maps loaded in the whole system (by any process), like bpftool's listings.

>>> from pyprobe import system
>>> [(p.id, p.name, p.type.name) for p in system.programs()]

Walks the kernel's ids (``BPF_PROG_GET_NEXT_ID``, ``BPF_MAP_GET_NEXT_ID``,
Linux 4.13) and reads each object's info through a short-lived fd. Needs
CAP_SYS_ADMIN: without it the walk raises :class:`~pyprobe.BpfPermissionError`.
"""

from __future__ import annotations

import errno
import os
import time
from collections.abc import Callable, Iterator
from typing import NamedTuple

from pyprobe._ffi import cstr, ffi, lib
from pyprobe.enums import MapType, ProgramType
from pyprobe.errors import BpfError, check_int

__all__ = ["MapInfo", "ProgramInfo", "maps", "programs"]


class ProgramInfo(NamedTuple):
    """One loaded BPF program, as the kernel reports it.

    ``type`` is a :class:`~pyprobe.ProgramType` (or the raw number for a type
    this pyprobe does not know); ``tag`` the hex digest of its instructions;
    ``loaded_at`` the wall-clock time of the load (seconds since the epoch);
    ``run_count`` and ``run_time_ns`` stay 0 unless BPF stats are enabled
    (``sysctl kernel.bpf_stats_enabled=1``).
    """

    id: int
    name: str
    type: ProgramType | int
    tag: str
    xlated_bytes: int
    jited_bytes: int
    verified_insns: int
    loaded_at: float
    uid: int
    map_count: int
    run_count: int
    run_time_ns: int

    @property
    def type_name(self) -> str:
        """The type as bpftool spells it (``kprobe``, ``tracepoint``), or the number when unknown."""
        return self.type.name.lower() if isinstance(self.type, ProgramType) else str(self.type)


class MapInfo(NamedTuple):
    """One BPF map in the kernel: id, name, :class:`~pyprobe.MapType` (or raw number), sizes, flags, BTF id."""

    id: int
    name: str
    type: MapType | int
    key_size: int
    value_size: int
    max_entries: int
    flags: int
    btf_id: int

    @property
    def type_name(self) -> str:
        """The type as bpftool spells it (``hash``, ``ringbuf``), or the number when unknown."""
        return self.type.name.lower() if isinstance(self.type, MapType) else str(self.type)


def _fds(next_id: Callable[[int, object], int], get_fd: Callable[[int], int], what: str) -> Iterator[int]:
    """An fd of every kernel object of one kind in id order, each closed once the caller's step is done."""
    cur = ffi.new("__u32 *", 0)
    while True:
        ret = next_id(cur[0], cur)
        if ret == -errno.ENOENT:
            return
        check_int(ret, f"walk the kernel's {what} ids")
        fd = get_fd(cur[0])
        if fd == -errno.ENOENT:
            continue  # unloaded meanwhile
        check_int(fd, f"open {what} id {cur[0]}")
        try:
            yield fd
        finally:
            os.close(fd)


def _boot_time() -> float:
    return time.time() - time.clock_gettime(time.CLOCK_BOOTTIME)


def _enum(cls: type[ProgramType] | type[MapType], value: int) -> ProgramType | MapType | int:
    try:
        return cls(value)
    except ValueError:
        return value


def programs() -> list[ProgramInfo]:
    """Every BPF program loaded in the kernel, by id.

    Blocks for one system call per program (microseconds each). Raises
    :class:`~pyprobe.BpfPermissionError` without CAP_SYS_ADMIN,
    :class:`~pyprobe.BpfError` for other failures. Minimum kernel 4.13.
    """
    out: list[ProgramInfo] = []
    boot = _boot_time()
    for fd in _fds(lib.bpf_prog_get_next_id, lib.bpf_prog_get_fd_by_id, "program"):
        info = ffi.new("struct bpf_prog_info *")
        size = ffi.new("__u32 *", ffi.sizeof("struct bpf_prog_info"))
        check_int(lib.bpf_prog_get_info_by_fd(fd, info, size), "read program info", BpfError)
        out.append(
            ProgramInfo(
                id=int(info.id), name=cstr(info.name), type=_enum(ProgramType, int(info.type)),
                tag=bytes(ffi.buffer(info.tag, 8)).hex(), xlated_bytes=int(info.xlated_prog_len),
                jited_bytes=int(info.jited_prog_len), verified_insns=int(info.verified_insns),
                loaded_at=boot + int(info.load_time) / 1e9, uid=int(info.created_by_uid),
                map_count=int(info.nr_map_ids), run_count=int(info.run_cnt), run_time_ns=int(info.run_time_ns),
            )
        )  # fmt: skip
    return out


def maps() -> list[MapInfo]:
    """Every BPF map in the kernel, by id.

    Blocks for one system call per map. Raises
    :class:`~pyprobe.BpfPermissionError` without CAP_SYS_ADMIN,
    :class:`~pyprobe.BpfError` for other failures. Minimum kernel 4.13.
    """
    out: list[MapInfo] = []
    for fd in _fds(lib.bpf_map_get_next_id, lib.bpf_map_get_fd_by_id, "map"):
        info = ffi.new("struct bpf_map_info *")
        size = ffi.new("__u32 *", ffi.sizeof("struct bpf_map_info"))
        check_int(lib.bpf_map_get_info_by_fd(fd, info, size), "read map info", BpfError)
        out.append(
            MapInfo(
                id=int(info.id), name=cstr(info.name), type=_enum(MapType, int(info.type)),
                key_size=int(info.key_size), value_size=int(info.value_size), max_entries=int(info.max_entries),
                flags=int(info.map_flags), btf_id=int(info.btf_id),
            )
        )  # fmt: skip
    return out
