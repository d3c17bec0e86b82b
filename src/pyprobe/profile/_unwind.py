"""User-space DWARF unwinding of the stacks profile_dwarf.bpf.c copies: the modules of each process and their CFI.

A process's executable mappings come from ``/proc/PID/maps``; each mapped
ELF file's ``.eh_frame_hdr`` and ``.eh_frame`` are read once per file
(cached by device, inode, size and modification time, so every process
running the same binary or library shares them) and handed to the unwinder
in C (``_ffi/csrc/unwind.c``), which walks a whole batch of samples in one
call. The vDSO is read from this process's own memory (the kernel maps the
same image into every 64-bit process). x86-64 only.

Everything read from a file or from /proc is untrusted: sections larger
than :data:`MAX_SECTION` are skipped, the total cached is bounded by
``max_cfi_bytes``, and the C side checks every offset it follows.
"""

from __future__ import annotations

import ctypes
import io
import os
import struct
import time
from typing import TYPE_CHECKING, Any, NamedTuple

from pyprobe._elf import PT_LOAD, ElfFile, ElfFormatError
from pyprobe._ffi import ffi, lib

if TYPE_CHECKING:
    from typing import BinaryIO

__all__ = [
    "F_BAD_CFI", "F_FP", "F_MAX_FRAMES", "F_NO_CFI", "F_NO_MODULE", "F_OUTERMOST", "F_STACK_END", "HEADER_SIZE",
    "MAX_SECTION", "NREGS", "Mapping", "ModuleCfi", "ProcessModules", "Unwinder", "load_cfi", "read_maps",
]  # fmt: skip

NREGS = 17
"""Registers per sample: rax rdx rcx rbx rsi rdi rbp rsp r8..r15 rip (DWARF numbering)."""
HEADER_SIZE = 176
"""Bytes of a profile_dwarf record before its stack copy (``PD_HEADER_SIZE``)."""
MAX_SECTION = 256 << 20
"""The largest .eh_frame or .eh_frame_hdr read from one file."""

# why an unwind stopped (UW_F_* in unwind.c)
F_NO_MODULE, F_NO_CFI, F_BAD_CFI, F_STACK_END, F_MAX_FRAMES, F_OUTERMOST, F_FP = 1, 2, 4, 8, 16, 32, 64

_PT_GNU_EH_FRAME = 0x6474E550
_EM_X86_64 = "EM_X86_64"


class ModuleCfi(NamedTuple):
    """The unwind tables of one ELF file, with the addresses they have in the file."""

    eh_frame: bytes
    eh_frame_vaddr: int
    hdr: bytes
    hdr_vaddr: int
    loads: tuple[tuple[int, int, int], ...]  # PT_LOAD (offset, vaddr, filesz)


class Mapping(NamedTuple):
    """One executable mapping of ``/proc/PID/maps``."""

    start: int
    end: int
    offset: int
    path: str


def _read(f: BinaryIO, offset: int, size: int, end: int) -> bytes | None:
    if offset < 0 or size <= 0 or size > MAX_SECTION or offset + size > end:
        return None
    f.seek(offset)
    data = f.read(size)
    return data if len(data) == size else None


def load_cfi(f: BinaryIO) -> ModuleCfi | None:
    """The CFI of the x86-64 ELF file open as ``f``, or None when it has none (or is not such a file).

    Uses the ``PT_GNU_EH_FRAME`` segment (what the C runtime unwinds with)
    and the ``.eh_frame`` section; without section headers, .eh_frame runs
    from the header's pointer to the end of its loaded segment. Reads at most
    :data:`MAX_SECTION` bytes per table; never raises for a malformed file.
    """
    try:
        elf = ElfFile(f)
    except (ElfFormatError, OSError):
        return None
    if elf.bits != 64 or not elf.little or elf.machine != _EM_X86_64:
        return None
    end = f.seek(0, 2)
    loads = tuple((s.offset, s.vaddr, s.filesz) for s in elf.segments if s.type == PT_LOAD)
    seg = next((s for s in elf.segments if s.type == _PT_GNU_EH_FRAME), None)
    try:
        if seg is not None:
            hdr, hdr_vaddr = _read(f, seg.offset, seg.filesz, end), seg.vaddr
        else:
            sec = elf.section(".eh_frame_hdr")
            hdr, hdr_vaddr = (_read(f, sec.offset, sec.size, end), sec.addr) if sec else (None, 0)
        if not hdr or len(hdr) < 8 or hdr[0] != 1:
            return None
        sec = elf.section(".eh_frame")
        if sec is not None and sec.size:
            frame, frame_vaddr = _read(f, sec.offset, sec.size, end), sec.addr
        else:
            ptr = _eh_frame_ptr(hdr, hdr_vaddr)
            frame, frame_vaddr = None, ptr or 0
            for off, vaddr, filesz in loads:
                if ptr is not None and vaddr <= ptr < vaddr + filesz:
                    frame = _read(f, off + ptr - vaddr, vaddr + filesz - ptr, end)
        if not frame:
            return None
    except (ElfFormatError, OSError):
        return None
    return ModuleCfi(frame, frame_vaddr, hdr, hdr_vaddr, loads)


def _eh_frame_ptr(hdr: bytes, hdr_vaddr: int) -> int | None:
    """The address .eh_frame_hdr gives for .eh_frame (the encodings linkers write)."""
    enc = hdr[1]
    if enc == 0x1B:  # pcrel | sdata4
        rel: int = struct.unpack_from("<i", hdr, 4)[0]
        return (hdr_vaddr + 4 + rel) & (2**64 - 1)
    if enc == 0x03:  # udata4
        value: int = struct.unpack_from("<I", hdr, 4)[0]
        return value
    return None


def read_maps(pid: int) -> list[Mapping] | None:
    """The executable mappings of process ``pid`` (file-backed and the vDSO), or None when it is gone.

    Reads ``/proc/PID/maps`` once (bounded by the kernel: one line per mapping).
    """
    try:
        with open(f"/proc/{pid}/maps", "rb") as f:
            text = f.read()
    except OSError:
        return None
    out: list[Mapping] = []
    for line in text.splitlines():
        parts = line.split(None, 5)
        if len(parts) < 6 or b"x" not in parts[1]:
            continue
        path = parts[5].decode("utf-8", "surrogateescape")
        if not (path.startswith("/") or path == "[vdso]"):
            continue
        try:
            lo, _, hi = parts[0].partition(b"-")
            out.append(Mapping(int(lo, 16), int(hi, 16), int(parts[2], 16), path))
        except ValueError:
            continue
    return out


def _own_vdso() -> ModuleCfi | None:
    maps = read_maps(os.getpid()) or []
    for m in maps:
        if m.path == "[vdso]":
            return load_cfi(io.BytesIO(ctypes.string_at(m.start, m.end - m.start)))
    return None


class ProcessModules:
    """The module table of one process, as the C unwinder reads it (sorted, non-overlapping)."""

    __slots__ = ("array", "keep", "mappings", "missing", "nmods", "pid", "read_at")

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.array: Any = ffi.NULL
        self.nmods = 0
        self.keep: list[Any] = []
        self.mappings: list[Mapping] = []
        self.missing: list[str] = []  # mapped files without usable CFI
        self.read_at = 0.0


class Unwinder:
    """Unwinds batches of profile_dwarf records into user instruction pointers, leaf first.

    Holds per-file CFI (shared across processes) and per-process module
    tables; ``max_frames`` bounds each stack, ``max_cfi_bytes`` the CFI kept
    in memory (files beyond it unwind no further than their first frame).
    Not thread-safe: one thread calls it. Owns only Python memory.
    """

    def __init__(
        self, *, max_frames: int = 127, max_cfi_bytes: int = 1 << 30, max_records: int = 4096, cache_entries: int = 4096
    ) -> None:
        if cache_entries & (cache_entries - 1):
            raise ValueError(f"cache_entries must be 0 or a power of two, not {cache_entries}")
        self.max_frames = max_frames
        self.cache_entries = cache_entries
        # rows of the CFI by (module, address), kept between batches (zeroed: no entry matches)
        self._cache = ffi.new("char[]", max(cache_entries, 1) * int(lib.pyprobe_uw_cache_entry_size()))
        self._cache_ptr = ffi.cast("struct pyprobe_uw_cache_entry *", self._cache) if cache_entries else ffi.NULL
        self.max_cfi_bytes = max_cfi_bytes
        self._files: dict[tuple[int, ...], tuple[ModuleCfi | None, Any, Any]] = {}
        self._cfi_bytes = 0
        self._vdso: tuple[ModuleCfi | None, Any, Any] | None = None
        self.procs: dict[int, ProcessModules] = {}
        self._cap = 0
        self._grow(max_records)

    def _grow(self, records: int) -> None:
        self._cap = records
        self._ips = ffi.new("uint64_t[]", records * self.max_frames)
        self._nips = ffi.new("uint32_t[]", records)
        self._flags = ffi.new("uint32_t[]", records)
        self._ips_view = memoryview(ffi.buffer(self._ips)).cast("Q")

    def _file(self, pid: int, m: Mapping) -> tuple[ModuleCfi | None, Any, Any]:
        if m.path == "[vdso]":
            if self._vdso is None:
                self._vdso = self._pin(_own_vdso())
            return self._vdso
        # map_files reaches the mapped file itself (deleted, or in another mount namespace)
        candidates = (f"/proc/{pid}/map_files/{m.start:x}-{m.end:x}", f"/proc/{pid}/root{m.path}", m.path)
        for path in candidates:
            try:
                f = open(path, "rb")  # noqa: SIM115 - closed below
            except OSError:
                continue
            with f:
                st = os.fstat(f.fileno())
                key = (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)
                hit = self._files.get(key)
                if hit is None:
                    cfi = load_cfi(f) if self._cfi_bytes < self.max_cfi_bytes else None
                    hit = self._files[key] = self._pin(cfi)
                    if cfi is not None:
                        self._cfi_bytes += len(cfi.eh_frame) + len(cfi.hdr)
                return hit
        return None, ffi.NULL, ffi.NULL

    @staticmethod
    def _pin(cfi: ModuleCfi | None) -> tuple[ModuleCfi | None, Any, Any]:
        if cfi is None:
            return None, ffi.NULL, ffi.NULL
        return cfi, ffi.from_buffer("uint8_t[]", cfi.eh_frame), ffi.from_buffer("uint8_t[]", cfi.hdr)

    def refresh(self, pid: int) -> ProcessModules:
        """Reads ``/proc/PID/maps`` again and rebuilds the process's table (kept as it was when the process is gone)."""
        proc = self.procs.get(pid)
        if proc is None:
            proc = self.procs[pid] = ProcessModules(pid)
        proc.read_at = time.monotonic()
        maps = read_maps(pid)
        if maps is None or (not maps and proc.mappings):
            return proc  # gone, or a zombie (whose maps are empty): its last table stays
        rows: list[tuple[Mapping, ModuleCfi, Any, Any]] = []
        missing: list[str] = []
        for m in maps:
            cfi, frame, hdr = self._file(pid, m)
            if cfi is None:
                missing.append(m.path)
                continue
            rows.append((m, cfi, frame, hdr))
        rows.sort(key=lambda r: r[0].start)
        array = ffi.new("struct pyprobe_uw_module[]", max(len(rows), 1))
        keep: list[Any] = [array]
        n = 0
        for m, cfi, frame, hdr in rows:
            bias = _bias(m, cfi)
            if bias is None or (n and m.start < array[n - 1].end):
                missing.append(m.path)
                continue
            e = array[n]
            e.start, e.end, e.bias = m.start, m.end, bias
            e.eh_frame, e.eh_frame_len, e.eh_frame_vaddr = frame, len(cfi.eh_frame), cfi.eh_frame_vaddr
            e.hdr, e.hdr_len, e.hdr_vaddr = hdr, len(cfi.hdr), cfi.hdr_vaddr
            keep += (frame, hdr)
            n += 1
        proc.array, proc.nmods, proc.keep, proc.mappings, proc.missing = array, n, keep, maps, missing
        return proc

    def forget(self, pid: int) -> None:
        """Drops the table of a process (its files' CFI stays cached)."""
        self.procs.pop(pid, None)

    def unwind(self, buf: Any, offsets: Any, n: int, pids: list[int]) -> tuple[memoryview, Any, Any]:
        """Unwinds records 0..n-1 of ``buf`` (cffi char buffer; ``offsets``: n + 1 record bounds) of processes ``pids``.

        Returns (ips, nips, flags): record i's frames are
        ``ips[i * max_frames : i * max_frames + nips[i]]``, leaf first.
        Runs in C without the GIL; valid until the next call.
        """
        if n > self._cap:
            self._grow(n)
        order = sorted(set(pids))
        procs = ffi.new("struct pyprobe_uw_proc[]", max(len(order), 1))
        for i, pid in enumerate(order):
            proc = self.procs.get(pid)
            procs[i].pid = pid
            if proc is not None:
                procs[i].nmods, procs[i].mods = proc.nmods, proc.array
        lib.pyprobe_uw_batch(
            procs, len(order), buf, offsets, n, HEADER_SIZE, self._ips, self._nips, self._flags, self.max_frames,
            self._cache_ptr, self.cache_entries,
        )  # fmt: skip
        return self._ips_view, self._nips, self._flags


def _bias(m: Mapping, cfi: ModuleCfi) -> int | None:
    """Address in the process minus address in the file, for mapping ``m`` of the file (None when no segment fits)."""
    if m.path == "[vdso]":
        return (m.start - min((v for _, v, _ in cfi.loads), default=0)) & (2**64 - 1)
    for off, vaddr, filesz in cfi.loads:
        if off - (off % 4096) <= m.offset < off + max(filesz, 1):
            return (m.start - (vaddr + m.offset - off)) & (2**64 - 1)
    return None
