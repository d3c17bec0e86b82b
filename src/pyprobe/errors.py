"""The exception hierarchy, and the two return checkers every libbpf call goes through.

``check_int`` takes a negative-errno return, ``check_ptr`` a NULL pointer
with errno set (libbpf 1.x); both map errno to the right exception class
through one table and prefix the message with what was being done.
"""

from __future__ import annotations

import errno as _errno
import os
from typing import Any

from pyprobe._ffi import ffi, lib

__all__ = [
    "AmbiguousSymbolError",
    "AttachError",
    "BpfError",
    "BpfPermissionError",
    "KeyNotFoundError",
    "LoadError",
    "MapError",
    "MapFullError",
    "MapIndexError",
    "ObjectNotFoundError",
    "SymbolNotFoundError",
    "UnsupportedError",
    "check_int",
    "check_ptr",
    "error_from_errno",
]


class BpfError(OSError):
    """Base of every pyprobe error: ``errno``, ``strerror`` and ``context`` (what was being done)."""

    def __init__(self, err: int, message: str, *, context: str = "", hint: str = "") -> None:
        super().__init__(err, message)
        self.context = context
        self.hint = hint

    def __str__(self) -> str:
        text = str(self.strerror)
        if self.context:
            text = f"{self.context}: {text}"
        if self.errno:
            name = _errno.errorcode.get(self.errno) or _KERNEL_ERRNO.get(self.errno, ("", ""))[0]
            if name and name not in text:
                text = f"{text} [{name}]"
        if self.hint:
            text = f"{text}; {self.hint}"
        return text

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild, (type(self), self.errno, self.strerror, self.context, self.hint, self.__dict__))


def _rebuild(cls: type[BpfError], err: int, message: str, context: str, hint: str, state: dict[str, Any]) -> BpfError:
    exc = cls.__new__(cls)
    BpfError.__init__(exc, err, message, context=context, hint=hint)
    exc.__dict__.update(state)
    return exc


class LoadError(BpfError):
    """Loading an object failed; ``log`` holds the verifier log, ``program`` the failing program's name."""

    def __init__(
        self, err: int, message: str, *, context: str = "", hint: str = "", log: str = "", program: str | None = None
    ) -> None:
        super().__init__(err, message, context=context, hint=hint)
        self.log = log
        self.program = program


class ObjectNotFoundError(LoadError, FileNotFoundError):
    """The object file (or the BTF file) given to :func:`pyprobe.open` does not exist; ``filename`` names it."""


class AttachError(BpfError):
    """Attaching a program failed."""


class SymbolNotFoundError(AttachError, LookupError):
    """No such function in the binary."""


class BinaryNotFoundError(AttachError, FileNotFoundError):
    """No such binary (for a pid: no such file inside the process's root); the message names it and the pid."""


BinaryNotFoundError.__module__ = "pyprobe"


class AmbiguousSymbolError(AttachError, LookupError):
    """A bare name matched several functions; ``candidates`` lists them."""

    def __init__(
        self, err: int, message: str, *, context: str = "", hint: str = "", candidates: list[str] | None = None
    ) -> None:
        super().__init__(err, message, context=context, hint=hint)
        self.candidates = list(candidates or [])


class MapError(BpfError):
    """A map operation failed."""


class KeyNotFoundError(MapError, KeyError):
    """The key is not in the map."""

    def __str__(self) -> str:  # KeyError's own __str__ would repr the args
        return BpfError.__str__(self)


class MapFullError(MapError):
    """The map has no room for another entry (E2BIG)."""


class MapIndexError(KeyNotFoundError, IndexError):
    """An array map's index is outside 0..max_entries-1 (E2BIG on update, ENOENT on lookup).

    An IndexError, and a :class:`KeyNotFoundError` (so a KeyError) as a
    missing key of a map is.
    """


class UnsupportedError(BpfError):
    """The running kernel (or libbpf) lacks the feature; the message says which."""


class BpfPermissionError(BpfError, PermissionError):
    """Missing CAP_BPF / CAP_PERFMON / root, or a kernel lockdown refusal."""


for _cls in (
    BpfError, LoadError, ObjectNotFoundError, AttachError, SymbolNotFoundError, AmbiguousSymbolError,
    MapError, KeyNotFoundError, MapFullError, MapIndexError, UnsupportedError, BpfPermissionError,
):  # fmt: skip
    _cls.__module__ = "pyprobe"

_PERMISSION_HINT = "run as root or grant CAP_BPF and CAP_PERFMON"


def _has_bpf_caps() -> bool:
    """True when the process holds CAP_SYS_ADMIN, or CAP_BPF and CAP_PERFMON."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("CapEff:"):
                    caps = int(line.split()[1], 16)
                    return bool(caps & (1 << 21)) or (bool(caps & (1 << 39)) and bool(caps & (1 << 38)))
    except OSError:
        pass
    return os.geteuid() == 0


def _lockdown() -> str | None:
    """The active kernel lockdown mode, if any (``integrity`` or ``confidentiality``)."""
    try:
        with open("/sys/kernel/security/lockdown") as f:
            text = f.read()
    except OSError:
        return None
    start, end = text.find("["), text.find("]")
    mode = text[start + 1 : end] if 0 <= start < end else ""
    return mode if mode and mode != "none" else None


# Kernel-internal errnos that reach user space from the bpf() syscall; libc has no name for them.
ENOTSUPP = 524
_KERNEL_ERRNO = {ENOTSUPP: ("ENOTSUPP", "Operation not supported by this program or map type")}

# libbpf's own error codes (enum libbpf_errno in libbpf.h), returned as negative errnos; their text is
# libbpf_strerror's.
LIBBPF_ERRNO_START = 4000
_LIBBPF_ERRNO_NAMES = (
    "LIBELF", "FORMAT", "KVERSION", "ENDIAN", "INTERNAL", "RELOC", "LOAD", "VERIFY", "PROG2BIG", "KVER",
    "PROGTYPE", "WRNGPID", "INVSEQ", "NLPARSE",
)  # fmt: skip


def _libbpf_strerror(err: int) -> str:
    buf = ffi.new("char[]", 128)
    lib.libbpf_strerror(err, buf, 128)
    return str(ffi.string(buf).decode("utf-8", "replace"))


for _offset, _name in enumerate(_LIBBPF_ERRNO_NAMES):
    _err = LIBBPF_ERRNO_START + _offset
    _KERNEL_ERRNO[_err] = (f"LIBBPF_ERRNO__{_name}", _libbpf_strerror(_err))


def error_from_errno(err: int, context: str, cls: type[BpfError] = BpfError, **extra: Any) -> BpfError:
    """Builds the exception for ``err`` (positive errno) while doing ``context``.

    EPERM becomes :class:`BpfPermissionError` (with a hint that says what to
    grant, or names the kernel lockdown when the capabilities are there) and
    EOPNOTSUPP :class:`UnsupportedError`, unless ``cls`` is more specific.
    """
    err = abs(err)
    message = _KERNEL_ERRNO[err][1] if err in _KERNEL_ERRNO else os.strerror(err) if err else "unknown error"
    hint = extra.pop("hint", "")
    if cls in (BpfError, AttachError, MapError) or (cls is LoadError and err == _errno.EPERM):
        if err in (_errno.EPERM,) and not _has_bpf_caps():
            return BpfPermissionError(err, message, context=context, hint=hint or _PERMISSION_HINT)
        if err == _errno.EPERM and (mode := _lockdown()):
            return UnsupportedError(
                err, message, context=context,
                hint=hint or f"the kernel is in lockdown mode '{mode}', which refuses this even to root",
            )  # fmt: skip
        if err in (_errno.EOPNOTSUPP, _errno.ENOTSUP, ENOTSUPP):
            return UnsupportedError(err, message, context=context, hint=hint)
    return cls(err, message, context=context, hint=hint, **extra)


def check_int(ret: int, context: str, cls: type[BpfError] = BpfError, **extra: Any) -> int:
    """Returns ``ret``, or raises when it is a negative errno."""
    if ret < 0:
        raise error_from_errno(-ret, context, cls, **extra)
    return ret


def check_ptr(ptr: Any, context: str, cls: type[BpfError] = BpfError, **extra: Any) -> Any:
    """Returns ``ptr``, or raises from errno when it is NULL."""
    if ptr == ffi.NULL:
        raise error_from_errno(ffi.errno or _errno.EINVAL, context, cls, **extra)
    return ptr
