"""Addresses to frames: user code through /proc/PID/maps and ELF symbols, JIT code through perf maps, the kernel
through /proc/kallsyms.

A process's mappings are read while it runs (the profiler symbolizes each
interval's samples at once), so the frames of a process that has exited by
the end of the profile stay named. Each ELF file's symbols are read once per
file version (device, inode, size, mtime), shared by every process that maps
it; everything read from /proc and from files is untrusted and bounded
(:data:`MAX_MAPS_BYTES`, :data:`MAX_PERF_MAP_BYTES`, :data:`MAX_KALLSYMS_BYTES`,
:data:`MAX_ELF_FILES`).
"""

from __future__ import annotations

import bisect
import io
import os
import re
import threading
from collections import OrderedDict
from typing import NamedTuple

from pyprobe.profile._model import Frame

__all__ = ["KernelSymbols", "Symbolizer"]

UNKNOWN = "[unknown]"
KERNEL_MODULE = "[kernel.kallsyms]"
MAX_MAPS_BYTES = 16 << 20
"""The most of one /proc/PID/maps read (a process with more mappings is symbolized from the first ones)."""
MAX_PERF_MAP_BYTES = 256 << 20
"""The most of one /tmp/perf-PID.map read, in total over the run."""
MAX_PERF_MAP_ENTRIES = 4_000_000
MAX_KALLSYMS_BYTES = 256 << 20
MAX_ELF_FILES = 512
"""ELF files whose symbol index is kept (least recently used ones go first)."""
MAX_ELF_SIZE = 4 << 30
"""Larger files are not read for symbols (their frames are ``[unknown]`` with the offset)."""
MAX_VDSO_SIZE = 1 << 20


_LAST = 0x1000
"""The extent given to a last symbol without a size."""


class _Index:
    """Function symbols of one file (or the kernel) sorted by start, for lookups by address or file offset.

    A name is a str, or an int: the offset of a raw name in ``strtab`` (an
    ELF string table), decoded and demangled only when a lookup finds it.
    """

    __slots__ = ("_demangled", "ends", "names", "starts", "strtab")

    def __init__(self, entries: list[tuple[int, int, str | int]], strtab: bytes = b"") -> None:
        entries.sort(key=lambda e: (e[0], e[1]))
        self.starts = [e[0] for e in entries]
        self.names = [e[2] for e in entries]
        self.strtab = strtab
        ends = [0] * len(entries)
        following = -1  # the next greater start, walking from the end (linear, whatever the aliases)
        for i in range(len(entries) - 1, -1, -1):
            start, size, _ = entries[i]
            # no size (assembly, the kernel): up to the next symbol
            ends[i] = start + size if size > 0 else (following if following > start else start + _LAST)
            if i == 0 or entries[i - 1][0] != start:
                following = start
        self.ends = ends
        self._demangled: dict[int, str] = {}

    def find(self, where: int) -> tuple[str, int] | None:
        """(demangled name, symbol start) of the symbol holding ``where``, or None."""
        i = bisect.bisect_right(self.starts, where) - 1
        # aliases and nested symbols share starts: look back over the few that start at or before `where`
        for j in range(i, max(-1, i - 8), -1):
            if self.starts[j] <= where < self.ends[j]:
                name = self._demangled.get(j)
                if name is None:
                    name = self._demangled[j] = self._name(j)
                return name, self.starts[j]
        return None

    def _name(self, j: int) -> str:
        from pyprobe.symbols import demangle

        raw = self.names[j]
        if isinstance(raw, int):
            from pyprobe._elf import cstring

            raw = cstring(self.strtab, raw).decode("latin-1").split("@", 1)[0] or UNKNOWN
        return demangle(raw)


class _Mapping(NamedTuple):
    start: int
    end: int
    pgoff: int
    path: str  # "" for anonymous memory


def parse_maps(text: str) -> list[_Mapping]:
    """The executable mappings of a /proc/PID/maps text, sorted by start."""
    out: list[_Mapping] = []
    for line in text.splitlines():
        parts = line.split(None, 5)
        if len(parts) < 5 or len(parts[1]) < 3 or parts[1][2] != "x":
            continue
        try:
            lo, _, hi = parts[0].partition("-")
            start, end, pgoff = int(lo, 16), int(hi, 16), int(parts[2], 16)
        except ValueError:
            continue
        path = parts[5].strip() if len(parts) == 6 else ""
        out.append(_Mapping(start, end, pgoff, path))
    out.sort()
    return out


class _PerfMap:
    """``/tmp/perf-PID.map`` (``START SIZE name`` in hex, one JIT function a line), read as it grows."""

    def __init__(self, pid: int) -> None:
        self.path = f"/tmp/perf-{pid}.map"
        self.module = f"[perf-{pid}.map]"
        self._pos = 0
        self._rest = b""
        self._entries: list[tuple[int, int, str | int]] = []
        self._index: _Index | None = None

    def refresh(self) -> None:
        if self._pos >= MAX_PERF_MAP_BYTES:
            return
        try:
            with open(self.path, "rb") as f:
                f.seek(self._pos)
                data = f.read(MAX_PERF_MAP_BYTES - self._pos)
        except OSError:
            return
        if not data:
            return
        self._pos += len(data)
        data = self._rest + data
        cut = data.rfind(b"\n") + 1
        self._rest = data[cut:]
        for line in data[:cut].decode("utf-8", "replace").splitlines():
            parts = line.split(None, 2)
            if len(parts) != 3:
                continue
            try:
                start, size = int(parts[0], 16), int(parts[1], 16)
            except ValueError:
                continue
            self._entries.append((start, max(size, 1), parts[2]))
            if len(self._entries) >= MAX_PERF_MAP_ENTRIES:
                self._pos = MAX_PERF_MAP_BYTES  # no more
                break
        self._index = None

    def find(self, address: int) -> tuple[str, int] | None:
        if self._index is None:
            if not self._entries:
                return None
            self._index = _Index(list(self._entries))  # later entries for one address come last: bisect finds them
        return self._index.find(address)


class _Process:
    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.maps: list[_Mapping] = []
        self.starts: list[int] = []
        self.read_at = -1  # the drain generation of the last read
        self.perf_map = _PerfMap(pid)
        self.perf_read_at = -1
        self.indexes: dict[_Mapping, _Index | None] = {}
        """Each mapping's symbols, kept once found: they outlive the process and its file."""

    def read_maps(self, generation: int) -> None:
        self.read_at = generation
        try:
            with open(f"/proc/{self.pid}/maps", "rb") as f:
                text = f.read(MAX_MAPS_BYTES).decode("utf-8", "surrogateescape")
        except OSError:
            return  # gone: keep what was read while it ran
        maps = parse_maps(text)
        if maps:  # a zombie's maps are empty: keep what was read while it ran
            self.maps = maps
            self.starts = [m.start for m in maps]

    def mapping(self, address: int) -> _Mapping | None:
        i = bisect.bisect_right(self.starts, address) - 1
        if i >= 0 and address < self.maps[i].end:
            return self.maps[i]
        return None


_KALLSYMS_LINE = re.compile(rb"^([0-9a-f]+) [tTwW] (\S+)(?:\t\[([^\]]+)\])?$", re.MULTILINE)
_kernel_cache: list[tuple[bytes, KernelSymbols]] = []


_kernel_lock = threading.Lock()


def kernel_symbols() -> KernelSymbols:
    """/proc/kallsyms read once per set of loaded modules (shared by every profiler of this process).

    Thread-safe: a second caller waits for the first one's read.
    """
    with _kernel_lock:
        try:
            with open("/proc/modules", "rb") as f:
                modules = f.read(4 << 20)
        except OSError:
            modules = b""
        if _kernel_cache and _kernel_cache[0][0] == modules:
            return _kernel_cache[0][1]
        found = KernelSymbols()
        _kernel_cache[:] = [(modules, found)]
        return found


class KernelSymbols:
    """/proc/kallsyms as an index (needs root to see real addresses; all zero otherwise: every frame unknown)."""

    def __init__(self, path: str = "/proc/kallsyms") -> None:
        self.modules: dict[int, str] = {}
        try:
            with open(path, "rb") as f:
                data = f.read(MAX_KALLSYMS_BYTES)
        except OSError:
            data = b""
        entries: list[tuple[int, int, str | int]] = []
        for address_hex, name, module in _KALLSYMS_LINE.findall(data):
            address = int(address_hex, 16)
            if address:
                entries.append((address, 0, name.decode("latin-1")))
                if module:
                    self.modules[address] = module.decode("latin-1")
        self._index = _Index(entries)

    def frame(self, address: int, leaf: bool) -> Frame:
        where = address if leaf else address - 1
        found = self._index.find(where) if self._index.starts else None
        if found is None:
            return Frame(UNKNOWN, KERNEL_MODULE, address, 0, "kernel")
        name, start = found
        module = self.modules.get(start)
        return Frame(name, f"[{module}]" if module else KERNEL_MODULE, address, address - start, "kernel")


def _elf_index(f: io.BufferedIOBase | io.BytesIO) -> _Index | None:
    """The function symbols of the ELF file open as ``f`` by file offset (.symtab, else .dynsym); None for none.

    Names stay undecoded offsets into the string table until looked up.
    """
    from pyprobe._elf import PT_LOAD, SHT_DYNSYM, SHT_SYMTAB, ElfFile, ElfFormatError

    try:
        elf = ElfFile(f)  # type: ignore[arg-type]
        segments = [(s.vaddr, s.vaddr + max(s.memsz, s.filesz), s.offset) for s in elf.segments if s.type == PT_LOAD]
        for name in (".symtab", ".dynsym"):
            section = elf.section(name)
            if section is None or section.type not in (SHT_SYMTAB, SHT_DYNSYM):
                continue
            out: list[tuple[int, int, str | int]] = []
            for st_name, value, size, kind, _bind, shndx in elf.symbols(section):
                if kind not in (2, 10) or shndx == 0 or not value:  # STT_FUNC, STT_GNU_IFUNC; defined
                    continue
                for vaddr, end, offset in segments:
                    if vaddr <= value < end:
                        out.append((value - vaddr + offset, size, st_name))
                        break
            if out:
                return _Index(out, elf.strings(section.link))
        return None
    except (ElfFormatError, OSError, ValueError):
        return None


class Symbolizer:
    """Turns the addresses of sampled stacks into :class:`Frame` objects (not thread-safe: one drain at a time).

    Call :meth:`new_generation` once per drain: a process's mappings are
    read again at most once per generation, when an address falls outside
    the ones known.
    """

    def __init__(self) -> None:
        self._procs: dict[int, _Process] = {}
        self._files: OrderedDict[tuple[int, int, int, int], _Index | None] = OrderedDict()
        self._vdso: _Index | None = None
        self._kernel: KernelSymbols | None = None
        self._user_cache: dict[tuple[int, int, bool], Frame] = {}
        self._kernel_cache: dict[tuple[int, bool], Frame] = {}
        self.generation = 0
        self.lookups = 0
        """Distinct addresses symbolized (the cache misses), for the benchmark."""

    @staticmethod
    def warm(*, kernel: bool) -> None:
        """Reads what every profile needs ahead of the first drain (the kernel's symbols); thread-safe."""
        if kernel:
            kernel_symbols()

    def new_generation(self) -> None:
        self.generation += 1

    def watch(self, pid: int, *, force: bool = False) -> None:
        """Reads ``pid``'s mappings now (if not read yet in this generation, or with ``force``).

        A process that has exited keeps the mappings read last.
        """
        proc = self._procs.get(pid)
        if proc is None:
            proc = self._procs[pid] = _Process(pid)
        if force or proc.read_at != self.generation:
            proc.read_maps(self.generation)

    # --- kernel ---------------------------------------------------------------------

    def kernel_frames(self, addresses: tuple[int, ...]) -> list[Frame]:
        """Frames of a kernel stack given leaf first, returned leaf first."""
        out = []
        for i, address in enumerate(addresses):
            key = (address, i == 0)
            frame = self._kernel_cache.get(key)
            if frame is None:
                if self._kernel is None:
                    self._kernel = kernel_symbols()
                self.lookups += 1
                frame = self._kernel_cache[key] = self._kernel.frame(address, i == 0)
            out.append(frame)
        return out

    # --- user -----------------------------------------------------------------------

    def user_frames(self, pid: int, addresses: tuple[int, ...]) -> list[Frame]:
        """Frames of a user stack of ``pid`` given leaf first, returned leaf first."""
        out = []
        for i, address in enumerate(addresses):
            key = (pid, address, i == 0)
            frame = self._user_cache.get(key)
            if frame is None:
                self.lookups += 1
                frame = self._user_frame(pid, address, i == 0)
                if frame.name != UNKNOWN or frame.module is not None:
                    self._user_cache[key] = frame
            out.append(frame)
        return out

    def _user_frame(self, pid: int, address: int, leaf: bool) -> Frame:
        proc = self._procs.get(pid)
        if proc is None:
            self.watch(pid)
            proc = self._procs[pid]
        where = address if leaf else address - 1  # a return address may be past its call's function
        mapping = proc.mapping(where)
        if mapping is None and proc.read_at != self.generation:
            proc.read_maps(self.generation)
            mapping = proc.mapping(where)
        if mapping is None or not mapping.path.startswith("/"):
            found = self._jit(proc, where)
            if found is not None:
                name, start = found
                return Frame(name, proc.perf_map.module, address, address - start, "jit")
            if mapping is not None and mapping.path == "[vdso]":
                return self._vdso_frame(proc, mapping, address, where)
            module = (mapping.path or "[anon]") if mapping is not None else None
            return Frame(UNKNOWN, module, address, address - mapping.start if mapping else 0, "user")
        path = mapping.path.removesuffix(" (deleted)")
        offset = where - mapping.start + mapping.pgoff
        index = self._file_index(proc, mapping)
        found = index.find(offset) if index is not None else None
        if found is None:
            jit = self._jit(proc, where)  # JIT code in shared memory shows as /dev/zero, /memfd:...
            if jit is not None:
                return Frame(jit[0], proc.perf_map.module, address, address - jit[1], "jit")
            return Frame(UNKNOWN, path, address, address - mapping.start + mapping.pgoff, "user")
        name, start = found
        return Frame(name, path, address, offset - start + (address - where), "user")

    def _jit(self, proc: _Process, where: int) -> tuple[str, int] | None:
        found = proc.perf_map.find(where)
        if found is None and proc.perf_read_at != self.generation:
            proc.perf_read_at = self.generation
            proc.perf_map.refresh()
            found = proc.perf_map.find(where)
        return found

    def _file_index(self, proc: _Process, mapping: _Mapping) -> _Index | None:
        if mapping in proc.indexes:
            return proc.indexes[mapping]
        index = self._read_index(proc, mapping)
        proc.indexes[mapping] = index
        return index

    def _read_index(self, proc: _Process, mapping: _Mapping) -> _Index | None:
        # map_files opens the very file mapped (also when deleted or in another mount namespace)
        candidates = (f"/proc/{proc.pid}/map_files/{mapping.start:x}-{mapping.end:x}",
                      f"/proc/{proc.pid}/root{mapping.path.removesuffix(' (deleted)')}", mapping.path)  # fmt: skip
        for path in candidates:
            try:
                st = os.stat(path)
            except OSError:
                continue
            key = (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)
            if key in self._files:
                self._files.move_to_end(key)
                return self._files[key]
            index = None
            if st.st_size <= MAX_ELF_SIZE:
                try:
                    with open(path, "rb") as f:
                        index = _elf_index(f)
                except OSError:
                    continue
            self._files[key] = index
            if len(self._files) > MAX_ELF_FILES:
                self._files.popitem(last=False)
            return index
        return None

    def _vdso_frame(self, proc: _Process, mapping: _Mapping, address: int, where: int) -> Frame:
        if self._vdso is None and mapping.end - mapping.start <= MAX_VDSO_SIZE:
            try:
                with open(f"/proc/{proc.pid}/mem", "rb") as f:
                    f.seek(mapping.start)
                    image = f.read(mapping.end - mapping.start)
                self._vdso = _elf_index(io.BytesIO(image))
            except (OSError, OverflowError, ValueError):
                self._vdso = None
        found = self._vdso.find(where - mapping.start) if self._vdso is not None else None
        if found is None:
            return Frame(UNKNOWN, "[vdso]", address, address - mapping.start, "user")
        name, start = found
        return Frame(name, "[vdso]", address, address - mapping.start - start, "user")
