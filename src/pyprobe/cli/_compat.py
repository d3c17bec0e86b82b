"""What the command needs from pyprobe's symbol, USDT, ring buffer and trace_pipe modules.

Each helper uses the public module (``pyprobe.symbols``, ``pyprobe.usdt``,
``pyprobe.trace_pipe``) when the installed pyprobe has it, and otherwise a
small local implementation with the same results, so the command works on
any pyprobe version that has the loader.
"""

from __future__ import annotations

import fnmatch
import mmap
import os
import re
import shutil
import struct
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyprobe

__all__ = [
    "FuncSymbol",
    "Note",
    "PipeReader",
    "Ring",
    "TraceLine",
    "find_symbols",
    "resolve_binary",
    "trace_pipe",
    "usdt_probes",
]


@dataclass(frozen=True)
class FuncSymbol:
    """A function in a binary: raw symbol name, demangled name, file offset, size, binary path."""

    name: str
    demangled: str
    offset: int
    size: int
    binary: str


# --- binaries ----------------------------------------------------------------------

_LIB_DIRS = ("/lib/x86_64-linux-gnu", "/usr/lib/x86_64-linux-gnu", "/lib64", "/usr/lib64", "/lib", "/usr/lib")


def _is_elf(path: str) -> bool:
    try:
        with open(path, "rb") as f:
            return f.read(4) == b"\x7fELF"
    except OSError:
        return False


def resolve_binary(binary: str, pid: int | None = None) -> str:
    """An absolute path for ``binary``: a path, a program on PATH, or a library name (``libc``, ``libc.so.6``).

    Raises FileNotFoundError naming the binary when nothing matches.
    """
    if "/" in binary:
        if os.path.exists(binary):
            return os.path.realpath(binary)
        raise FileNotFoundError(f"binary {binary!r} does not exist")
    if binary.startswith("lib"):
        stem = binary if ".so" in binary else f"{binary}.so"
        if pid is not None:
            try:
                with open(f"/proc/{pid}/maps") as f:
                    for line in f:
                        path = line.split(maxsplit=5)[-1].strip()
                        if os.path.basename(path).startswith(stem):
                            return f"/proc/{pid}/root{path}"
            except OSError:
                pass
        for d in _LIB_DIRS:
            for candidate in sorted(Path(d).glob(f"{stem}*")) if os.path.isdir(d) else []:
                if candidate.is_file() and _is_elf(str(candidate)):
                    return os.path.realpath(candidate)
    found = shutil.which(binary)
    if found:
        return os.path.realpath(found)
    if os.path.exists(binary):
        return os.path.realpath(binary)
    raise FileNotFoundError(f"binary {binary!r} not found (give a path, a program on PATH or a library name)")


# --- symbols -------------------------------------------------------------------------


def _demangle(names: list[str]) -> list[str]:
    mangled = [n for n in names if n.startswith("_Z")]
    if not mangled or shutil.which("c++filt") is None:
        return names
    out = subprocess.run(["c++filt"], input="\n".join(mangled), capture_output=True, text=True, check=False)
    table = dict(zip(mangled, out.stdout.splitlines(), strict=False))
    return [table.get(n, n) for n in names]


def _elf_raw(path: str) -> list[tuple[str, int, int]]:
    """(raw name, file offset, size) of each defined function of a 64-bit little-endian ELF file."""
    with open(path, "rb") as f:
        data = f.read()
    if data[:4] != b"\x7fELF":
        raise ValueError(f"{path} is not an ELF file")
    if data[4] != 2 or data[5] != 1:
        return _elf_raw_slow(path)
    phoff, shoff = struct.unpack_from("<QQ", data, 0x20)
    phentsize, phnum, shentsize, shnum = struct.unpack_from("<HHHH", data, 0x36)
    loads = []
    for i in range(phnum):
        ptype, _, poff, vaddr, _, _, memsz, _ = struct.unpack_from("<IIQQQQQQ", data, phoff + i * phentsize)
        if ptype == 1:
            loads.append((vaddr, memsz, poff))
    sections = [struct.unpack_from("<IIQQQQIIQQ", data, shoff + i * shentsize) for i in range(shnum)]
    out: dict[str, tuple[int, int]] = {}
    for sh in sections:
        if sh[1] not in (2, 11) or sh[6] >= len(sections):  # SHT_SYMTAB, SHT_DYNSYM
            continue
        _, _, _, _, str_off, str_size, *_ = sections[sh[6]]
        strtab = data[str_off : str_off + str_size]
        for name_off, info, _, shndx, value, size in struct.iter_unpack("<IBBHQQ", data[sh[4] : sh[4] + sh[5]]):
            if (info & 0xF) not in (2, 10) or shndx == 0 or value == 0:  # STT_FUNC, STT_GNU_IFUNC
                continue
            name = strtab[name_off : strtab.index(b"\0", name_off)].decode("utf-8", "replace").split("@")[0]
            if not name or name in out:
                continue
            for vaddr, memsz, poff in loads:
                if vaddr <= value < vaddr + memsz:
                    out[name] = (value - vaddr + poff, size)
                    break
    return [(n, o, sz) for n, (o, sz) in out.items()]


def _elf_raw_slow(path: str) -> list[tuple[str, int, int]]:
    from elftools.elf.elffile import ELFFile

    raw: dict[str, tuple[int, int]] = {}
    with open(path, "rb") as f:
        elf = ELFFile(f)
        loads = [s for s in elf.iter_segments() if s["p_type"] == "PT_LOAD"]
        for section_name in (".symtab", ".dynsym"):
            section: Any = elf.get_section_by_name(section_name)
            if section is None:
                continue
            for sym in section.iter_symbols():
                if sym["st_info"]["type"] not in ("STT_FUNC", "STT_GNU_IFUNC") or sym["st_shndx"] == "SHN_UNDEF":
                    continue
                addr = sym["st_value"]
                if not sym.name or addr == 0 or sym.name in raw:
                    continue
                for seg in loads:
                    if seg["p_vaddr"] <= addr < seg["p_vaddr"] + seg["p_memsz"]:
                        raw[sym.name.split("@")[0]] = (addr - seg["p_vaddr"] + seg["p_offset"], sym["st_size"])
                        break
    return [(n, o, sz) for n, (o, sz) in raw.items()]


_RAW_CACHE: dict[str, list[tuple[str, int, int]]] = {}


def _raw_functions(path: str) -> list[tuple[str, int, int]]:
    if path not in _RAW_CACHE:
        _RAW_CACHE[path] = _elf_raw(path)
    return _RAW_CACHE[path]


def _elf_functions(path: str, keep: Any = None) -> list[FuncSymbol]:
    """The functions of ``path`` with demangled names; ``keep(raw_name)`` filters before demangling."""
    raw = [r for r in _raw_functions(path) if keep is None or keep(r[0])]
    names = [r[0] for r in raw]
    return [FuncSymbol(n, d, o, sz, path) for (n, o, sz), d in zip(raw, _demangle(names), strict=True)]


_SYMBOL_CACHE: dict[str, list[FuncSymbol]] = {}


def _all_functions(path: str) -> list[FuncSymbol]:
    if path not in _SYMBOL_CACHE:
        _SYMBOL_CACHE[path] = _elf_functions(path)
    return _SYMBOL_CACHE[path]


def _from_public(sym: Any, path: str) -> FuncSymbol:
    return FuncSymbol(sym.name, sym.demangled or sym.name, int(sym.offset), int(sym.size), str(sym.binary or path))


def find_symbols(binary: str, pattern: str | None = None, *, pid: int | None = None) -> list[FuncSymbol]:
    """The functions of ``binary`` whose raw or demangled name matches the glob ``pattern`` (all when None)."""
    path = resolve_binary(binary, pid)
    try:
        from pyprobe import symbols  # type: ignore[attr-defined,unused-ignore]

        return [_from_public(s, path) for s in symbols.find(path, pattern or "*")]
    except ImportError:
        pass
    funcs = _all_functions(path)
    if pattern is None:
        return funcs
    bare = [f for f in funcs if pattern in (_bare(f.demangled), f.name, f.demangled)]
    if bare:
        return bare
    return [
        f
        for f in funcs
        if fnmatch.fnmatchcase(f.name, pattern)
        or fnmatch.fnmatchcase(f.demangled, pattern)
        or fnmatch.fnmatchcase(_bare(f.demangled), pattern)
    ]


def _bare(demangled: str) -> str:
    """``ns::f(int, int)`` -> ``ns::f``."""
    return demangled.split("(", 1)[0] if "(" in demangled else demangled


def resolve_symbol(binary: str, function: str, *, pid: int | None = None) -> FuncSymbol:
    """The one function ``function`` names in ``binary`` (raw, demangled or bare name).

    Raises pyprobe.SymbolNotFoundError or pyprobe.AmbiguousSymbolError.
    """
    path = resolve_binary(binary, pid)
    try:
        from pyprobe import symbols  # type: ignore[attr-defined,unused-ignore]

        return _from_public(symbols.resolve(path, function, pid=pid), path)
    except ImportError:
        pass
    raw = [r for r in _raw_functions(path) if r[0] == function]
    if raw:
        return FuncSymbol(function, function, raw[0][1], raw[0][2], path)
    last = _bare(function).split("::")[-1]
    funcs = _elf_functions(path, lambda n: n.startswith("_Z") and last in n)
    for exact in (
        lambda f: f.name == function,
        lambda f: f.demangled == function,
        lambda f: _bare(f.demangled) == function,
    ):
        hits = [f for f in funcs if exact(f)]
        if len(hits) == 1:
            return hits[0]
        if len(hits) > 1:
            # aliases at one address are one function
            if len({h.offset for h in hits}) == 1:
                return hits[0]
            raise pyprobe.AmbiguousSymbolError(
                2, f"{function!r} matches {len(hits)} functions: {', '.join(h.demangled for h in hits[:8])}",
                context=f"resolve {function} in {path}", candidates=[h.demangled for h in hits],
                hint="give the full demangled name or the mangled symbol",
            )  # fmt: skip
    raise pyprobe.SymbolNotFoundError(
        2, f"no function {function!r}", context=f"resolve {function} in {path}",
        hint=f"see `pyprobe list symbols {binary}`",
    )  # fmt: skip


# --- USDT ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Note:
    """A USDT probe: provider, name, address, semaphore address, argument spec."""

    provider: str
    name: str
    address: int
    semaphore: int
    arguments: str


def usdt_probes(binary: str) -> list[Note]:
    """The USDT probes of ``binary`` (its .note.stapsdt notes)."""
    path = resolve_binary(binary)
    try:
        from pyprobe import usdt  # type: ignore[attr-defined,unused-ignore]

        return [
            Note(p.provider, p.name, int(p.address), int(p.semaphore or 0), _args_text(p.arguments))
            for p in usdt.probes(path)
        ]
    except ImportError:
        pass
    from elftools.elf.elffile import ELFFile

    out: list[Note] = []
    with open(path, "rb") as f:
        elf = ELFFile(f)
        section = elf.get_section_by_name(".note.stapsdt")
        if section is None:
            return out
        data = section.data()
    pos = 0
    while pos + 12 <= len(data):
        namesz, descsz, ntype = struct.unpack_from("<III", data, pos)
        pos += 12
        name = data[pos : pos + namesz]
        pos += (namesz + 3) & ~3
        desc = data[pos : pos + descsz]
        pos += (descsz + 3) & ~3
        if name.rstrip(b"\0") != b"stapsdt" or ntype != 3:
            continue
        pc, _base, sem = struct.unpack_from("<QQQ", desc, 0)
        strings = desc[24:].split(b"\0")
        out.append(Note(strings[0].decode(), strings[1].decode(), pc, sem, strings[2].decode()))
    return out


def _args_text(arguments: object) -> str:
    if isinstance(arguments, str):
        return arguments
    try:
        return " ".join(str(a) for a in arguments)  # type: ignore[attr-defined]
    except TypeError:
        return str(arguments)


# --- ring buffer -----------------------------------------------------------------------

_BUSY = 1 << 31
_DISCARD = 1 << 30


class Ring:
    """Reads a BPF ring buffer map by mapping it: ``drain()`` returns the records written since the last call.

    Producers submit without waking the reader (BPF_RB_NO_WAKEUP); the reader
    drains on its own timer, so nothing here blocks. Owns two mappings of the
    map's fd; ``close()`` releases them.
    """

    def __init__(self, fd: int, size: int) -> None:
        page = mmap.PAGESIZE
        self._mask = size - 1
        self._cons = mmap.mmap(fd, page, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE, offset=0)
        self._prod = mmap.mmap(fd, page + 2 * size, mmap.MAP_SHARED, mmap.PROT_READ, offset=page)
        self._page = page
        self._view = memoryview(self._prod)

    def drain(self, limit: int = 1 << 20) -> list[memoryview]:
        """The records (views valid until the next drain) produced since the last call, at most ``limit``."""
        (cons,) = struct.unpack_from("<Q", self._cons, 0)
        (prod,) = struct.unpack_from("<Q", self._prod, 0)
        out: list[memoryview] = []
        base = self._page
        view = self._view
        while cons < prod and len(out) < limit:
            off = base + (cons & self._mask)
            (hdr,) = struct.unpack_from("<I", self._prod, off)
            if hdr & _BUSY:
                break
            length = hdr & ~(_BUSY | _DISCARD)
            if not hdr & _DISCARD:
                out.append(view[off + 8 : off + 8 + length])
            cons += (length + 8 + 7) & ~7
        struct.pack_into("<Q", self._cons, 0, cons)
        return out

    def close(self) -> None:
        """Unmaps the ring (views from drain() must be released first)."""
        self._view.release()
        self._prod.close()
        self._cons.close()


# --- trace_pipe -------------------------------------------------------------------------


@dataclass(frozen=True)
class TraceLine:
    """One trace_pipe line: task, pid, cpu, timestamp (s) and the message."""

    task: str
    pid: int
    cpu: int
    timestamp: float
    message: str


_LINE = re.compile(
    r"^\s*(?P<task>.*?)-(?P<pid>\d+)\s+(?:\(\s*[-\d]+\)\s+)?\[(?P<cpu>\d+)\]\s+(?:[\w.]{4,5}\s+)?"
    r"(?P<ts>\d+\.\d+):\s+(?:bpf_trace_printk:\s|[\w:]+:\s)?(?P<msg>.*)$"
)


def parse_trace_line(line: str) -> TraceLine | None:
    """Parses one trace_pipe line (None when it is not an event line)."""
    m = _LINE.match(line.rstrip("\n"))
    if m is None:
        return None
    return TraceLine(m["task"], int(m["pid"]), int(m["cpu"]), float(m["ts"]), m["msg"])


def tracefs() -> str:
    """The tracefs mount point, mounting it at /sys/kernel/tracing when nothing is mounted."""
    for path in ("/sys/kernel/tracing", "/sys/kernel/debug/tracing"):
        if os.path.exists(f"{path}/trace_pipe"):
            return path
    subprocess.run(["mount", "-t", "tracefs", "tracefs", "/sys/kernel/tracing"], check=False, capture_output=True)
    if os.path.exists("/sys/kernel/tracing/trace_pipe"):
        return "/sys/kernel/tracing"
    raise FileNotFoundError("tracefs is not mounted: mount -t tracefs tracefs /sys/kernel/tracing")


class PipeReader:
    """Non-blocking reader of trace_pipe: :meth:`read` returns the complete lines available now.

    Owns the fd; ``close()`` releases it. Raises FileNotFoundError when tracefs is missing.
    """

    def __init__(self) -> None:
        self.fd = os.open(f"{tracefs()}/trace_pipe", os.O_RDONLY | os.O_NONBLOCK)
        self._pending = b""

    def read(self) -> list[TraceLine]:
        """The parsed lines that can be read without waiting."""
        out: list[TraceLine] = []
        while True:
            try:
                chunk = os.read(self.fd, 65536)
            except BlockingIOError:
                break
            if not chunk:
                break
            self._pending += chunk
        *lines, self._pending = self._pending.split(b"\n")
        for raw in lines:
            parsed = parse_trace_line(raw.decode("utf-8", "replace"))
            if parsed is not None:
                out.append(parsed)
        return out

    def close(self) -> None:
        """Closes the fd (idempotent)."""
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


def trace_pipe(timeout: float | None = None) -> Iterator[TraceLine]:
    """bpf_printk lines as they come; ends after ``timeout`` s with no line (None: never)."""
    public = getattr(pyprobe, "trace_pipe", None)
    if public is not None:
        for line in public(timeout=timeout):
            yield TraceLine(line.task, line.pid, line.cpu, float(line.timestamp), line.message)
        return
    import select

    reader = PipeReader()
    try:
        last = time.monotonic()
        while True:
            ready, _, _ = select.select([reader.fd], [], [], 0.2)
            lines = reader.read() if ready else []
            if lines:
                last = time.monotonic()
                yield from lines
            elif timeout is not None and time.monotonic() - last >= timeout:
                return
    finally:
        reader.close()
