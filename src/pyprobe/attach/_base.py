"""What every attach family builds on: a program's libbpf pointer, its object, its type and the shared checks."""

from __future__ import annotations

import errno
import os
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

from pyprobe._ffi import cstr, lib
from pyprobe.enums import AttachType, ProgramType
from pyprobe.errors import AttachError, BpfError, check_int

if TYPE_CHECKING:
    from pyprobe.object import BpfObject

T = TypeVar("T")

__all__ = ["ProgramCore"]


class ProgramCore:
    """The state and checks a :class:`~pyprobe.Program` shares with its attach families (one mixin per family)."""

    def __init__(self, obj: BpfObject, ptr: Any) -> None:
        self._object = obj
        self._ptr = ptr
        self.name: str = cstr(lib.bpf_program__name(ptr))
        """The program's function name in the C source."""
        self.section: str = cstr(lib.bpf_program__section_name(ptr))
        """The ELF section (SEC name), e.g. ``uprobe//bin/true:main``."""

    def _live(self) -> Any:
        self._object._check_open()
        return self._ptr

    def _call(self, fn: Callable[..., T], *args: Any) -> T:
        """``fn(ptr, *args)`` on the program's libbpf pointer, with the object held open (ClosedError after close)."""
        with self._object._guard:
            return fn(self._ptr, *args)

    @property
    def object(self) -> BpfObject:
        """The object this program belongs to."""
        return self._object

    @property
    def type(self) -> ProgramType:
        """The program type libbpf derived from the section name (or set before load)."""
        return ProgramType(int(self._call(lib.bpf_program__type)))

    @type.setter
    def type(self, value: ProgramType | str | int) -> None:
        ptype = ProgramType.parse(value)
        check_int(self._call(lib.bpf_program__set_type, int(ptype)), f"set type of program '{self.name}'")

    @property
    def attach_type(self) -> AttachType:
        """The expected attach type."""
        return AttachType(int(self._call(lib.bpf_program__expected_attach_type)))

    @attach_type.setter
    def attach_type(self, value: AttachType | str | int) -> None:
        """Sets the expected attach type before load (with :attr:`type`, for sections libbpf does not know)."""
        atype = AttachType.parse(value)
        check_int(
            lib.bpf_program__set_expected_attach_type(self._live(), int(atype)),
            f"set expected attach type of program '{self.name}'",
        )

    @property
    def fd(self) -> int:
        """The program's fd, owned by the object; -1 before load or when not loaded."""
        return max(int(self._call(lib.bpf_program__fd)), -1)

    def _loaded_fd(self, doing: str) -> int:
        fd = self.fd
        if fd < 0:
            why = "its object is not loaded" if self._object.state != "loaded" else "it was not loaded (autoload off)"
            raise BpfError(errno.EBADF, f"program '{self.name}' has no fd: {why}", context=doing)
        return fd

    def _attach_context(self) -> str:
        return f"attach program '{self.name}' (SEC(\"{self.section}\"))"

    # --- checks shared by the attach methods -----------------------------------------

    def _require_kind(self, method: str, types: tuple[ProgramType, ...], wanted: str, context: str) -> None:
        """Raises AttachError (EINVAL) when the program's type cannot be attached by ``method``."""
        ptype = self.type
        if ptype not in types:
            raise AttachError(
                errno.EINVAL,
                f"program '{self.name}' is a {ptype.name.lower()} program (SEC(\"{self.section}\")); "
                f"{method} needs {wanted}",
                context=context,
            )

    @staticmethod
    def _check_int_arg(value: Any, what: str, low: int, high: int, context: str) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise TypeError(f"{context}: {what} must be an int, not {type(value).__name__}")
        if not low <= value <= high:
            raise ValueError(f"{context}: {what} {value} is out of range [{low}, {high}]")
        return value

    def _check_pid(self, pid: Any, context: str) -> int:
        checked = self._check_int_arg(pid, "pid", -1, 2**31 - 1, context)
        if checked > 0 and not os.path.exists(f"/proc/{checked}"):
            raise AttachError(errno.ESRCH, f"no process with pid {pid}", context=context)
        return checked
