"""Compiling BPF C probes with clang, against the headers that ship inside the package.

The package carries everything a CO-RE probe includes: ``pyprobe/*.h``,
libbpf's BPF-side headers (``bpf/bpf_helpers.h``, ``bpf_tracing.h``,
``bpf_core_read.h``, ``bpf_endian.h``, ``usdt.bpf.h``), ``vmlinux.h`` for x86
and arm64, and a fallback ``<linux/errno.h>``, so a machine needs clang (and
llvm's strip) but neither libbpf-dev nor the kernel's UAPI headers.
:func:`compile_probe` builds the way the package's own probes are built:
``-target bpf -g -O2``, ``-D__TARGET_ARCH_<arch>``, then ``llvm-strip -g``
drops the DWARF and keeps the BTF that CO-RE and pyprobe's typed maps need.

>>> from pyprobe.compiler import compile_probe
>>> compile_probe("probe.bpf.c", "probe.bpf.o", skeleton="probe_skel.py")
'probe.bpf.o'
"""

from __future__ import annotations

import functools
import logging
import os
import platform
import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterable

__all__ = [
    "ARCHES",
    "ClangNotFoundError",
    "CompileError",
    "cflags",
    "compile_probe",
    "include_dir",
    "machine_arch",
]

log = logging.getLogger("pyprobe.compiler")

ARCHES = ("x86", "arm64")
"""The architectures a probe can be compiled for (one ``vmlinux.h`` each)."""

_ARCH_ALIASES = {"x86": "x86", "x86_64": "x86", "amd64": "x86", "arm64": "arm64", "aarch64": "arm64"}
_CLANG_VERSIONS = range(21, 13, -1)
CLANG_HINT = (
    "install clang and llvm (Debian, Ubuntu: apt-get install clang llvm; Fedora: dnf install clang llvm), "
    "or name the compiler in PYPROBE_CLANG"
)
UAPI_HINT = (
    "<linux/...> and <asm/...> headers other than those pyprobe ships come from the kernel's UAPI headers: "
    "install linux-libc-dev (Debian, Ubuntu) or kernel-headers (Fedora); "
    "probes that include only vmlinux.h, <pyprobe/...> and <bpf/...> need none"
)
_UAPI_MISSING = re.compile(r"fatal error: '(linux|asm|asm-generic|uapi)/[^']*' file not found")


class ClangNotFoundError(FileNotFoundError):
    """No clang on PATH (nor in ``PYPROBE_CLANG``); the message says which package to install."""


class CompileError(Exception):
    """clang failed: ``returncode`` is its exit status, ``output`` what it printed, exactly.

    ``command`` is the argument list that ran, ``hint`` a line of advice
    (which package provides a missing system header) or "".
    """

    def __init__(self, source: str, returncode: int, output: str, command: list[str], hint: str = "") -> None:
        self.source = source
        self.returncode = returncode
        self.output = output
        self.command = command
        self.hint = hint
        super().__init__(source, returncode, output)

    def __str__(self) -> str:
        text = f"clang failed to compile {self.source} (exit status {self.returncode})"
        if self.output:
            text += ":\n" + self.output.rstrip("\n")
        if self.hint:
            text += "\n" + self.hint
        return text


def include_dir() -> str:
    """The directory of the headers installed with pyprobe (``-I`` it to build probes).

    It holds ``pyprobe/``, ``bpf/`` (libbpf's BPF-side headers),
    ``vmlinux/<arch>/vmlinux.h`` and ``compat/``. Raises FileNotFoundError when
    the package was installed without them.
    """
    import pyprobe

    for base in pyprobe.__path__:
        candidate = os.path.join(base, "include")
        if os.path.isfile(os.path.join(candidate, "pyprobe", "common.h")):
            return candidate
    raise FileNotFoundError(f"pyprobe's include directory is not installed (looked in {', '.join(pyprobe.__path__)})")


def machine_arch() -> str:
    """This machine's architecture as :data:`ARCHES` names it; ValueError on another machine."""
    machine = platform.machine()
    arch = _ARCH_ALIASES.get(machine.lower())
    if arch is None:
        raise ValueError(f"no vmlinux.h for this machine ({machine}): pass an architecture, one of {', '.join(ARCHES)}")
    return arch


def _arch(arch: str | None) -> str:
    if arch is None:
        return machine_arch()
    name = _ARCH_ALIASES.get(arch.lower())
    if name is None:
        raise ValueError(f"unknown architecture {arch!r}: choose one of {', '.join(ARCHES)}")
    return name


def find_clang() -> str:
    """The clang to run: ``$PYPROBE_CLANG``, else ``clang``, else the newest ``clang-NN`` on PATH.

    Raises :class:`ClangNotFoundError` naming the package to install.
    """
    wanted = os.environ.get("PYPROBE_CLANG")
    if wanted:
        found = shutil.which(wanted)
        if found is None:
            raise ClangNotFoundError(f"PYPROBE_CLANG names {wanted!r}, which is not an executable on PATH")
        return found
    for name in ("clang", *(f"clang-{v}" for v in _CLANG_VERSIONS)):
        found = shutil.which(name)
        if found is not None:
            return found
    raise ClangNotFoundError(f"clang is needed to compile BPF programs and is not on PATH: {CLANG_HINT}")


def find_strip(clang: str) -> list[str] | None:
    """The command that drops DWARF from an object (``llvm-strip -g``), or None when llvm is missing.

    Looks next to ``clang`` first (``llvm-strip-NN`` for ``clang-NN``), then on PATH.
    """
    suffix = ""
    match = re.search(r"-(\d+)$", os.path.basename(clang))
    if match:
        suffix = f"-{match.group(1)}"
    names = [f"llvm-strip{suffix}", "llvm-strip", *(f"llvm-strip-{v}" for v in _CLANG_VERSIONS)]
    for directory in (os.path.dirname(os.path.realpath(clang)), os.path.dirname(clang), None):
        for name in names:
            found = shutil.which(name, path=directory)
            if found is not None:
                return [found, "-g"]
    objcopy = shutil.which(f"llvm-objcopy{suffix}") or shutil.which("llvm-objcopy")
    return [objcopy, "--strip-debug"] if objcopy else None


@functools.lru_cache(maxsize=4)
def _host_include_dirs(clang: str) -> tuple[str, ...]:
    """The host's system include dirs as clang lists them for the host target (``clang -v -E``).

    ``-target bpf`` leaves out the multiarch dir (``/usr/include/x86_64-linux-gnu``,
    where ``asm/`` lives), which probes including the kernel's UAPI headers need.
    """
    proc = subprocess.run(
        [clang, "-v", "-E", "-x", "c", "-", "-o", os.devnull],
        input=b"",
        capture_output=True,
        check=False,
    )
    lines = proc.stderr.decode(errors="replace").splitlines()
    dirs: list[str] = []
    inside = False
    for line in lines:
        if line.startswith("#include <...> search starts here"):
            inside = True
        elif line.startswith("End of search list"):
            break
        elif inside and line.startswith(" /"):
            dirs.append(line.strip().removesuffix(" (framework directory)"))
    return tuple(dirs)


def cflags(arch: str | None = None, *, host_includes: bool = True) -> list[str]:
    """The clang flags that build a probe against pyprobe's headers (without ``-g -O2``).

    ``-target bpf``, ``-D__TARGET_ARCH_<arch>`` (``arch``: ``x86`` or
    ``arm64``, default this machine's), ``-I`` the vmlinux.h of that arch and
    :func:`include_dir`, then ``-idirafter`` the host's system include dirs
    (found by running clang once, unless ``host_includes`` is False) and
    pyprobe's fallback headers. Raises ValueError for an unknown arch,
    ClangNotFoundError when the host dirs are wanted and there is no clang.
    """
    name = _arch(arch)
    inc = include_dir()
    flags = [
        "-target",
        "bpf",
        f"-D__TARGET_ARCH_{name}",
        f"-I{os.path.join(inc, 'vmlinux', name)}",
        f"-I{inc}",
    ]
    if host_includes:
        for directory in _host_include_dirs(find_clang()):
            flags += ["-idirafter", directory]
    flags += ["-idirafter", os.path.join(inc, "compat")]
    return flags


def _default_output(source: str) -> str:
    base = source[: -len(".c")] if source.endswith(".c") else source
    return base + ".o"


def _check_dir(directory: str, path: str) -> None:
    if not os.path.isdir(directory):
        raise FileNotFoundError(f"cannot write {path}: no such directory {directory}")


def _run(command: list[str], source: str) -> str:
    """Runs ``command``; returns what it printed, raises CompileError with it on failure."""
    proc = subprocess.run(command, capture_output=True, check=False)
    output = (proc.stdout + proc.stderr).decode(errors="replace")
    if proc.returncode != 0:
        hint = UAPI_HINT if _UAPI_MISSING.search(output) else ""
        raise CompileError(source, proc.returncode, output, command, hint)
    return output


def compile_probe(
    source: str | os.PathLike[str],
    output: str | os.PathLike[str] | None = None,
    *,
    arch: str | None = None,
    include_dirs: Iterable[str | os.PathLike[str]] = (),
    defines: Iterable[str] = (),
    skeleton: str | os.PathLike[str] | None = None,
) -> str:
    """Compiles ``source`` (a BPF C file) into a CO-RE object; returns the object's path.

    ``output`` defaults to the source's path with ``.c`` replaced by ``.o``
    (``probe.bpf.c`` -> ``probe.bpf.o``). ``include_dirs`` are added with
    ``-I`` before pyprobe's, ``defines`` with ``-D`` (``"X"`` or ``"X=1"``).
    The object is written whole or not at all (through a temporary file in
    the output's directory). clang's warnings go to the ``pyprobe.compiler``
    logger. With ``skeleton`` (a path), the typed skeleton module for the
    object (``pyprobe gen skeleton``) is written there too.

    Blocks while clang runs. Raises FileNotFoundError when ``source`` or the
    directory of ``output`` or ``skeleton`` is missing, :class:`ClangNotFoundError` without clang, :class:`CompileError`
    (clang's exit status and output kept) when it fails, ValueError for an
    unknown ``arch``. Without llvm-strip or llvm-objcopy the object keeps its
    DWARF (it loads the same, only larger) and a warning is logged.
    """
    src = os.fspath(source)
    if not os.path.isfile(src):
        raise FileNotFoundError(f"no such BPF source file: {src}")
    out = os.fspath(output) if output is not None else _default_output(src)
    clang = find_clang()
    flags = cflags(arch)
    user = [f"-I{os.fspath(d)}" for d in include_dirs] + [f"-D{d}" for d in defines]
    out_dir = os.path.dirname(os.path.abspath(out))
    _check_dir(out_dir, out)
    if skeleton is not None:
        _check_dir(os.path.dirname(os.path.abspath(skeleton)), os.fspath(skeleton))
    fd, tmp = tempfile.mkstemp(prefix=".pyprobe-", suffix=".o", dir=out_dir)
    os.close(fd)
    try:
        command = [clang, "-g", "-O2", "-Wall", *user, *flags, "-c", src, "-o", tmp]
        warnings = _run(command, src)
        if warnings.strip():
            log.warning("%s", warnings.rstrip("\n"))
        strip = find_strip(clang)
        if strip is None:
            log.warning("llvm-strip not found: %s keeps its DWARF debug info (install llvm to drop it)", out)
        else:
            _run([*strip, tmp], src)
        os.chmod(tmp, 0o644)
        os.replace(tmp, out)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    if skeleton is not None:
        _write_skeleton(out, os.fspath(skeleton))
    return out


def _write_skeleton(obj: str, path: str) -> None:
    """Writes the skeleton module for ``obj`` to ``path`` (whole or not at all)."""
    from pyprobe.cli.gen import generate

    text = generate(obj)
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".pyprobe-", suffix=".py", dir=directory)
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
