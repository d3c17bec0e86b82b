"""Function symbols of ELF binaries: find a function by name and compute the file offset a uprobe needs.

Names are matched against the ELF symbol tables (``.symtab`` and ``.dynsym``,
read by :mod:`pyprobe._elf`) in this order: the exact symbol (``main.main`` in Go,
``_Z9utest_addii`` in C++), the demangled name (``utest_add(int, int)``,
demangled by libstdc++'s own ``__cxa_demangle``), then the bare name
(``utest_add``: the demangled name without its parameter list). A bare name
that matches functions at several addresses raises
:class:`~pyprobe.AmbiguousSymbolError` listing them.

Symbol names are untrusted input: a crafted mangled name can demangle to
gigabytes (back-references that nest). Names are demangled only when needed
(a lookup by demangled or bare name demangles only the symbols whose mangled
name spells the function's identifier; listing demangles each once), and the
demangler stops at a bounded output length (:data:`DEMANGLED_MAX`, and at
most :data:`DEMANGLE_RATIO` times the mangled length), so a symbol table
costs time and memory in proportion to its size. A name that would demangle
past that bound, or longer than :data:`MANGLED_MAX`, keeps its raw form.

A ``binary`` is a path, or a library name (``libc.so.6``, ``libc``) found as
the dynamic loader would (``ld.so.cache``, then the standard directories).
With a ``pid`` it is looked up in that process's mappings (``/proc/PID/maps``)
and opened through ``/proc/PID/root``, so that a process in another mount
namespace is traced by the file it really runs.
"""

from __future__ import annotations

import errno
import fnmatch
import functools
import os
import re
from typing import Any, NamedTuple

from pyprobe._elf import PT_LOAD, SHT_DYNSYM, SHT_SYMTAB, ElfFile, ElfFormatError, ElfSection, cstring
from pyprobe._ffi import ffi, lib
from pyprobe._record import FrozenRecord
from pyprobe.errors import AmbiguousSymbolError, AttachError, BinaryNotFoundError, SymbolNotFoundError

__all__ = ["ElfInfo", "Symbol", "demangle", "find", "is_go_binary", "resolve", "resolve_binary"]


class Symbol(NamedTuple):
    """A function in a binary: its symbol, demangled name, file offset (what a uprobe takes) and size."""

    name: str
    """The symbol as it stands in the symbol table (mangled for C++)."""
    demangled: str
    """The demangled C++ name, or ``name`` itself when it is not a C++ symbol."""
    offset: int
    """File offset of the function's first instruction."""
    size: int
    binary: str
    """The resolved path of the binary."""
    address: int = 0
    """The symbol's virtual address (``st_value``)."""

    @property
    def bare(self) -> str:
        """The demangled name without its parameter list (``utest_add``)."""
        return _bare(self.demangled)


MANGLED_MAX = 16384
"""Longest mangled name demangled (the demangler's tables take stack in proportion to it)."""
DEMANGLED_MAX = 65536
"""Longest demangled name produced; a name that would demangle longer keeps its raw form."""
DEMANGLE_RATIO = 32
"""A demangled name may also be at most this many times its mangled length (at least 1024 bytes)."""
_FIRST_TRY = 512


def demangle(name: str) -> str:
    """The demangled form of a C++ (Itanium ABI) symbol, or ``name`` unchanged when it is not one.

    Bounded: a name longer than :data:`MANGLED_MAX`, or one whose demangled
    form would pass :data:`DEMANGLED_MAX` bytes (or :data:`DEMANGLE_RATIO`
    times its own length), comes back unchanged, whatever it encodes.
    """
    if not name.startswith("_Z"):
        return name
    return _demangle(name)


@functools.lru_cache(maxsize=65536)
def _demangle(name: str) -> str:
    codec = "latin-1" if max(name) <= "\xff" else "utf-8"  # symbol tables are read as latin-1
    raw = name.encode(codec, "surrogateescape")
    if len(raw) > MANGLED_MAX or b"\0" in raw:
        return name
    limit = min(DEMANGLED_MAX, max(1024, DEMANGLE_RATIO * len(raw))) + 1
    size = min(_FIRST_TRY, limit)
    while True:
        buf = ffi.new("char[]", size)
        n = int(lib.pyprobe_demangle(raw, buf, size))
        if n == -1:
            return name
        if n >= 0:
            return str(ffi.string(buf, n).decode(codec, "replace"))
        if size >= limit:
            return name
        size = limit


_NOT_SPELLED = frozenset(
    {"operator", "std", "allocator", "basic_string", "string", "basic_istream", "basic_ostream",
     "basic_iostream", "istream", "ostream", "iostream", "char_traits"}
)  # fmt: skip
"""Identifiers that a mangled name may not spell out as ``<length><identifier>`` (``Sa``, ``Ss``, operators)."""


_PLAIN_NAME = re.compile(r"(?:[A-Za-z_$][\w$]*::)*~?([A-Za-z_$][\w$]*)(?:\[abi:[\w$]+\])*")


def _spelled(name: str) -> str | None:
    """The ``<length><identifier>`` every mangled name that demangles to ``name`` (or to ``name(...)``) holds.

    That is the function's own identifier (``compute`` in ``ns::compute(int)``:
    ``7compute``), its template arguments and a return type left out; None
    when the name is anything but a plain qualified name (operators, lambdas,
    anonymous namespaces, names from the standard abbreviations such as
    ``std::allocator``) and every mangled name must be demangled to find it.
    """
    out: list[str] = []
    depth = 0
    for ch in _bare(name):
        if ch == "<":
            depth += 1
        elif ch == ">":
            depth = max(0, depth - 1)
        elif depth == 0:
            out.append(ch)
    words = "".join(out).split()
    if not words or "operator" in "".join(out):
        return None
    match = _PLAIN_NAME.fullmatch(words[-1])
    if match is None or match[1] in _NOT_SPELLED:
        return None
    return f"{len(match[1])}{match[1]}"


def _bare(demangled: str) -> str:
    """``ns::f(int)`` -> ``ns::f``; ``f`` -> ``f``; keeps templates' angle brackets."""
    depth = 0
    for i, ch in enumerate(demangled):
        if ch == "<":
            depth += 1
        elif ch == ">":
            depth -= 1
        elif ch == "(" and depth == 0 and i > 0:
            return demangled[:i]
    return demangled


_Index = tuple[dict[str, list[Symbol]], dict[str, list[Symbol]], dict[str, list[Symbol]]]


class SymbolEntry(NamedTuple):
    """A function symbol as read from a symbol table, not yet demangled."""

    name: str
    offset: int
    size: int
    address: int


class ElfInfo(FrozenRecord):
    """What pyprobe needs from one ELF file: its function symbols and a few facts.

    ``entries`` are the raw function symbols; ``symbols`` demangles them all
    (once, bounded: see :func:`demangle`), :meth:`lookup` only those a name needs.
    """

    __slots__ = ("_by_name", "_index", "_symbols", "entries", "has_symtab", "is_go", "machine", "path", "segments")
    _fields_ = ("path", "entries", "has_symtab", "is_go", "machine", "segments")

    path: str
    entries: tuple[SymbolEntry, ...]
    has_symtab: bool
    is_go: bool
    machine: str
    segments: tuple[tuple[int, int, int, int], ...]
    """PT_LOAD segments as (vaddr, memsz, offset, filesz)."""

    def __init__(
        self, path: str, entries: tuple[SymbolEntry, ...], has_symtab: bool, is_go: bool, machine: str,
        segments: tuple[tuple[int, int, int, int], ...],
    ) -> None:  # fmt: skip
        for name, value in zip(self._fields_, (path, entries, has_symtab, is_go, machine, segments), strict=True):
            object.__setattr__(self, name, value)
        object.__setattr__(self, "_index", None)
        object.__setattr__(self, "_symbols", None)
        object.__setattr__(self, "_by_name", None)

    _index: _Index | None
    _symbols: tuple[Symbol, ...] | None
    _by_name: dict[str, list[SymbolEntry]] | None

    def _symbol(self, entry: SymbolEntry) -> Symbol:
        return Symbol(entry.name, demangle(entry.name), entry.offset, entry.size, self.path, entry.address)

    @property
    def symbols(self) -> tuple[Symbol, ...]:
        """Every function symbol, demangled (each name once, bounded), by offset."""
        found = self._symbols
        if found is None:
            found = tuple(self._symbol(e) for e in self.entries)
            object.__setattr__(self, "_symbols", found)
        return found

    @property
    def index(self) -> _Index:
        """Symbols by name, by demangled name and by bare name (built once per file; demangles every symbol)."""
        index: _Index | None = self._index
        if index is None:
            index = self._build_index()
            object.__setattr__(self, "_index", index)
        return index

    def _build_index(self) -> _Index:
        by_name: dict[str, list[Symbol]] = {}
        by_demangled: dict[str, list[Symbol]] = {}
        by_bare: dict[str, list[Symbol]] = {}
        for sym in self.symbols:
            by_name.setdefault(sym.name, []).append(sym)
            by_demangled.setdefault(sym.demangled, []).append(sym)
            by_bare.setdefault(_bare(sym.demangled), []).append(sym)
        return by_name, by_demangled, by_bare

    def lookup(self, name: str) -> tuple[list[Symbol], list[Symbol], list[Symbol]]:
        """The symbols whose raw, demangled and bare names are ``name``.

        Demangles only the C++ symbols whose mangled name spells the
        identifier ``name`` ends with (see :func:`_spelled`), and none when
        ``name`` is a raw symbol.
        """
        by_name = self._by_name
        if by_name is None:
            by_name = {}
            for entry in self.entries:
                by_name.setdefault(entry.name, []).append(entry)
            object.__setattr__(self, "_by_name", by_name)
        exact = [self._symbol(e) for e in by_name.get(name, [])]
        if exact:
            return exact, [], []
        spelled = _spelled(name)
        by_demangled: list[Symbol] = []
        by_bare: list[Symbol] = []
        for entry in self.entries:
            if entry.name.startswith("_Z") and spelled is not None and spelled not in entry.name:
                continue
            text = demangle(entry.name)
            if text == name:
                by_demangled.append(self._symbol(entry))
            elif _bare(text) == name:
                by_bare.append(self._symbol(entry))
        return exact, by_demangled, by_bare

    def vaddr_to_offset(self, vaddr: int) -> int | None:
        """File offset of virtual address ``vaddr``, or None when no loaded segment holds it."""
        for start, memsz, offset, filesz in self.segments:
            if start <= vaddr < start + max(memsz, filesz):
                return vaddr - start + offset
        return None


def _err(cls: type[AttachError], err: int, message: str, context: str, **kw: Any) -> AttachError:
    return cls(err, message, context=context, **kw)


def _check_file(path: str, context: str) -> None:
    if not os.path.exists(path):
        raise _err(BinaryNotFoundError, errno.ENOENT, f"no such file: {path}", context)
    if os.path.isdir(path):
        raise _err(AttachError, errno.EISDIR, f"{path} is a directory, not an ELF binary", context)
    if not os.access(path, os.R_OK):
        raise _err(AttachError, errno.EACCES, f"{path} is not readable", context)


@functools.lru_cache(maxsize=64)
def _load(path: str, _mtime_ns: int, _size: int, _ino: int) -> ElfInfo:
    context = f"read symbols of {path}"
    with open(path, "rb") as f:
        head = f.read(4)
        if head != b"\x7fELF":
            raise _not_elf(path, head + f.read(252), context)
        try:
            elf = ElfFile(f)
            segments = tuple((s.vaddr, s.memsz, s.offset, s.filesz) for s in elf.segments if s.type == PT_LOAD)
            info = _ElfBuilder(path, segments)
            has_symtab = False
            for name in (".symtab", ".dynsym"):
                section = elf.section(name)
                if section is None or section.type not in (SHT_SYMTAB, SHT_DYNSYM):
                    continue
                has_symtab = has_symtab or name == ".symtab"
                info.add_table(elf, section)
            is_go = any(elf.section(n) is not None for n in (".go.buildinfo", ".gopclntab", ".note.go.buildid"))
            return ElfInfo(path, info.entries(), has_symtab, is_go, elf.machine, segments)
        except ElfFormatError as exc:
            raise _err(AttachError, errno.ENOEXEC, f"{path} is not a valid ELF file ({exc})", context) from None


_STT_FUNC = 2
"""Function symbols. STT_GNU_IFUNC ones are left out: their address is the resolver, run once at load."""


class _ElfBuilder:
    def __init__(self, path: str, segments: tuple[tuple[int, int, int, int], ...]) -> None:
        self.path = path
        self.segments = segments
        self.seen: dict[tuple[str, int], SymbolEntry] = {}

    def add_table(self, elf: ElfFile, section: ElfSection) -> None:
        strtab = elf.strings(section.link)
        for st_name, value, size, kind, _bind, shndx in elf.symbols(section):
            if kind != _STT_FUNC or shndx == 0 or not value:  # shndx 0: SHN_UNDEF (an import)
                continue
            raw = cstring(strtab, st_name)
            if not raw:
                continue
            name = raw.decode("latin-1").split("@", 1)[0]
            key = (name, value)
            if key in self.seen:
                continue
            offset = self._offset(value)
            if offset is None:
                continue
            self.seen[key] = SymbolEntry(name, offset, size, value)

    def _offset(self, vaddr: int) -> int | None:
        for start, memsz, offset, filesz in self.segments:
            if start <= vaddr < start + max(memsz, filesz):
                return vaddr - start + offset
        return None

    def entries(self) -> tuple[SymbolEntry, ...]:
        return tuple(sorted(self.seen.values(), key=lambda s: (s.offset, s.name)))


def elf_info(path: str) -> ElfInfo:
    """Parses ``path`` (cached while the file is unchanged). Raises AttachError for a missing, non-ELF file."""
    context = f"read symbols of {path}"
    _check_file(path, context)
    st = os.stat(path)
    return _load(path, st.st_mtime_ns, st.st_size, st.st_ino)


def is_go_binary(binary: str | os.PathLike[str], pid: int | None = None) -> bool:
    """True when ``binary`` was built by the Go toolchain."""
    return elf_info(resolve_binary(binary, pid)).is_go


# --- binary resolution ---------------------------------------------------------

_STANDARD_DIRS = (
    "/lib/x86_64-linux-gnu", "/usr/lib/x86_64-linux-gnu", "/lib/aarch64-linux-gnu", "/usr/lib/aarch64-linux-gnu",
    "/lib64", "/usr/lib64", "/lib", "/usr/lib", "/usr/local/lib",
)  # fmt: skip

_ARCH_TAGS = {"x86_64": "x86-64", "aarch64": "AArch64"}


@functools.lru_cache(maxsize=1)
def _ld_cache() -> tuple[tuple[str, str], ...]:
    """(soname, path) pairs from ``ldconfig -p`` for this machine's architecture."""
    import shutil  # imported here, as are the others that only a library name needs

    ldconfig = shutil.which("ldconfig") or ("/sbin/ldconfig" if os.path.exists("/sbin/ldconfig") else None)
    if ldconfig is None:
        return ()
    import subprocess

    try:
        out = subprocess.run([ldconfig, "-p"], capture_output=True, text=True, check=False, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        return ()
    tag = _ARCH_TAGS.get(os.uname().machine, "")
    pairs = []
    for line in out.splitlines():
        match = re.match(r"\s+(\S+) \(([^)]*)\) => (\S+)", line)
        if match and (not tag or tag in match[2] or "," not in match[2]):
            pairs.append((match[1], match[3]))
    return tuple(pairs)


def _library_matches(name: str, filename: str) -> bool:
    """True when ``filename`` is the library ``name`` (``libc``, ``libc.so``, ``libc.so.6``, ``c``)."""
    if filename == name:
        return True
    stem = name if name.startswith("lib") or ".so" in name else f"lib{name}"
    if ".so" in stem:
        return filename.startswith(stem + ".") or filename == stem
    return filename.startswith(stem + ".so") or filename.startswith(stem + "-")


def _find_library(name: str) -> str | None:
    for soname, path in _ld_cache():
        if soname == name and os.path.exists(path):
            return path
    for soname, path in _ld_cache():
        if _library_matches(name, soname) and os.path.exists(path):
            return path
    dirs = [d for d in os.environ.get("LD_LIBRARY_PATH", "").split(":") if d] + list(_STANDARD_DIRS)
    for directory in dirs:
        candidate = os.path.join(directory, name)
        if os.path.isfile(candidate):
            return candidate
    for directory in dirs:
        try:
            entries = sorted(os.listdir(directory))
        except OSError:
            continue
        for entry in entries:
            if _library_matches(name, entry) and os.path.isfile(os.path.join(directory, entry)):
                return os.path.join(directory, entry)
    return None


def _process_root(pid: int) -> str:
    """The prefix that opens files as process ``pid`` sees them: "" when it shares our mount namespace and root."""
    root = f"/proc/{pid}/root"
    try:
        same_ns = os.readlink(f"/proc/{pid}/ns/mnt") == os.readlink("/proc/self/ns/mnt")
        theirs, ours = os.stat(root), os.stat("/")
        if same_ns and (theirs.st_dev, theirs.st_ino) == (ours.st_dev, ours.st_ino):
            return ""
    except OSError:
        pass
    return root


_MAX_LINKS = 40
"""Symbolic links followed in one path before ELOOP, as the kernel does."""


def _in_root(pid: int, path: str, context: str) -> str:
    """The absolute ``path`` as process ``pid`` sees it, opened through ``/proc/PID/root``.

    Resolves the path inside the process's root as ``openat2(RESOLVE_IN_ROOT)``
    does: a symbolic link is followed there (an absolute one from that root,
    ``..`` stops at it), never out to this process's files; the result holds no
    link after ``/proc/PID/root``, so the kernel opens the same file. Returns
    ``path`` itself when the process shares this one's root. Raises
    :class:`~pyprobe.BinaryNotFoundError` naming the path and the pid when
    the file is not there, AttachError (ELOOP, ENOTDIR, EACCES) for a path
    that cannot be resolved.
    """
    root = _process_root(pid)
    if not root:
        return path
    todo = [p for p in path.split("/") if p not in ("", ".")]
    todo.reverse()
    done: list[str] = []
    links = 0
    while todo:
        part = todo.pop()
        if part == "..":
            if done:
                done.pop()
            continue
        here = root + "/" + "/".join([*done, part])
        try:
            target = os.readlink(here)
        except OSError as exc:
            if exc.errno == errno.EINVAL:  # a file or directory, not a link
                done.append(part)
                continue
            where = "/" + "/".join([*done, part])
            if exc.errno == errno.ENOENT:
                missing = f"no such file in the root of pid {pid}: {path}"
                missing += f" ({where} is missing)" if where != path else ""
                raise _err(BinaryNotFoundError, errno.ENOENT, missing, context) from None
            raise _err(AttachError, exc.errno or errno.EIO, f"{path} in the root of pid {pid}: {where}: {exc.strerror}",
                       context) from None  # fmt: skip
        links += 1
        if links > _MAX_LINKS:
            raise _err(AttachError, errno.ELOOP, f"{path} in the root of pid {pid}: too many symbolic links", context)
        if target.startswith("/"):
            done = []
        todo.extend(reversed([p for p in target.split("/") if p not in ("", ".")]))
    return root + "/" + "/".join(done)


def _check_pid(pid: int, context: str) -> int:
    real = os.getpid() if pid == 0 else pid
    if not isinstance(pid, int) or pid < -1:
        raise _err(
            AttachError, errno.EINVAL, f"pid must be -1 (every process), 0 (this one) or a pid, not {pid!r}", context
        )
    if real > 0 and not os.path.exists(f"/proc/{real}"):
        raise _err(AttachError, errno.ESRCH, f"no process with pid {pid}", context)
    return real


def _mapped_files(pid: int) -> list[str]:
    paths: list[str] = []
    try:
        with open(f"/proc/{pid}/maps") as f:
            for line in f:
                parts = line.split(None, 5)
                if len(parts) == 6 and parts[5].startswith("/"):
                    path = parts[5].rstrip("\n").removesuffix(" (deleted)")
                    if path not in paths:
                        paths.append(path)
    except OSError:
        pass
    return paths


def resolve_binary(binary: str | os.PathLike[str], pid: int | None = None) -> str:
    """The absolute path of the file ``binary`` names, as a uprobe needs it.

    ``binary`` is a path or a library name (``libc.so.6``, ``libc``) found as
    the dynamic loader would; a bare program name is then looked up in PATH.
    With ``pid`` (> 0) a library name is looked up in the process's mappings
    and every path is resolved inside the process's root and opened through
    ``/proc/PID/root`` (see :func:`_in_root`: a container's symbolic links
    stay in the container, and a file missing there is an error, not the
    host's file of that name). Raises :class:`~pyprobe.BinaryNotFoundError`
    (an AttachError and a FileNotFoundError) naming the binary (and the pid)
    when it is not there, :class:`~pyprobe.AttachError` (EISDIR, ESRCH, ELOOP)
    otherwise.
    """
    name = os.fspath(binary)
    if not isinstance(name, str) or not name:
        raise TypeError(f"binary must be a non-empty path or library name, not {binary!r}")
    context = f"find binary '{name}'" + (f" for pid {pid}" if pid not in (None, -1) else "")
    real_pid = _check_pid(pid, context) if pid is not None and pid != -1 else -1
    if "/" in name:
        path = _in_root(real_pid, name, context) if real_pid > 0 and os.path.isabs(name) else os.path.abspath(name)
        _check_file(path, context)
        return path
    if real_pid > 0:
        for mapped in _mapped_files(real_pid):
            if _library_matches(name, os.path.basename(mapped)):
                path = _in_root(real_pid, mapped, context)
                _check_file(path, context)
                return path
    found = _find_library(name)
    if found is None:
        import shutil

        found = shutil.which(name)
    if found is None:
        where = f" (nor mapped by pid {pid})" if real_pid > 0 else ""
        raise _err(
            BinaryNotFoundError, errno.ENOENT,
            f"no file, library or program named '{name}' (searched ld.so.cache, the standard library "
            f"directories and PATH){where}",
            context,
        )  # fmt: skip
    path = os.path.abspath(found)
    if real_pid > 0:
        path = _in_root(real_pid, path, context)
    _check_file(path, context)
    return path


# --- symbol lookup -----------------------------------------------------------------


def _stripped_hint(info: ElfInfo) -> str:
    if info.has_symtab:
        return ""
    return "the binary is stripped (no .symtab; only exported functions can be found): use a build with symbols"


def resolve(binary: str | os.PathLike[str], name: str, pid: int | None = None) -> Symbol:
    """The function ``name`` in ``binary``: exact symbol, demangled name, or unambiguous bare name.

    Raises :class:`~pyprobe.SymbolNotFoundError` naming the binary and the
    name, :class:`~pyprobe.AmbiguousSymbolError` (``.candidates``) when a bare
    name matches functions at several addresses, :class:`~pyprobe.AttachError`
    for a missing or non-ELF binary. Reads the file (cached while unchanged).
    """
    if not isinstance(name, str) or not name:
        raise TypeError(f"function name must be a non-empty str, not {name!r}")
    path = resolve_binary(binary, pid)
    info = elf_info(path)
    context = f"find function '{name}' in {path}"
    for matches in info.lookup(name):
        if not matches:
            continue
        by_offset: dict[int, Symbol] = {}
        for sym in matches:
            by_offset.setdefault(sym.offset, sym)
        if len(by_offset) == 1:
            return matches[0]
        candidates = [f"{s.demangled} [{s.name} at {s.offset:#x}]" for s in by_offset.values()]
        raise AmbiguousSymbolError(
            errno.EINVAL, f"'{name}' matches {len(candidates)} functions: {'; '.join(candidates)}",
            context=context, hint="pass the mangled symbol or the full demangled name", candidates=candidates,
        )  # fmt: skip
    raise SymbolNotFoundError(
        errno.ENOENT, f"no function '{name}' in {path}", context=f"find function in {path}", hint=_stripped_hint(info)
    )


def find(binary: str | os.PathLike[str], pattern: str, pid: int | None = None) -> list[Symbol]:
    """Functions of ``binary`` whose symbol or demangled name matches the glob ``pattern``, by offset.

    An empty list when none matches; raises :class:`~pyprobe.AttachError` for
    a missing or non-ELF binary. Aliases (several names at one address) all appear.
    """
    if not isinstance(pattern, str) or not pattern:
        raise TypeError(f"pattern must be a non-empty str, not {pattern!r}")
    info = elf_info(resolve_binary(binary, pid))
    regex = re.compile(fnmatch.translate(pattern))
    return [s for s in info.symbols if regex.match(s.name) or regex.match(s.demangled) or regex.match(s.bare)]


def _not_elf(path: str, head: bytes, context: str) -> AttachError:
    """The ENOEXEC error for a file that is not ELF; for a ``#!`` script, it names the interpreter."""
    message = f"{path} is not an ELF file"
    hint = ""
    if head.startswith(b"#!"):
        line = head[2:].split(b"\n", 1)[0].decode("utf-8", "backslashreplace").strip()
        message += f": it is a script run by {line!r}" if line else ": it is a script"
        hint = "probe the ELF program the script runs (for a pyenv shim: `pyenv which NAME`)"
    return _err(AttachError, errno.ENOEXEC, message, context, hint=hint)
