"""Links: a program attached somewhere. Detaching is closing the link."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from pyprobe._ffi import cstr, ffi, lib
from pyprobe._resource import Resource
from pyprobe.enums import LinkType
from pyprobe.errors import BpfError, check_int, check_ptr

if TYPE_CHECKING:
    from pyprobe.program import Program

__all__ = ["Link"]


class Link(Resource):
    """A program attached to a hook; ``detach()`` (or ``close()``) removes it.

    A link made by an attach call belongs to its program's object and is
    detached when the object closes; ``pin()`` makes it outlive the process.
    """

    def __init__(self, ptr: Any, program: Program | None, *, description: str = "") -> None:
        self._ptr = ptr
        self.program = program
        self.description = description or (f"link of program '{program.name}'" if program else "link")
        self._own(lambda: lib.bpf_link__destroy(ptr), self.description)
        if program is not None:
            program._object._adopt_link(self)

    def close(self) -> None:
        """Detaches the link. Calling it again does nothing."""
        if self.closed:
            return
        Resource.close(self)
        if self.program is not None:
            self.program._object._forget_link(self)

    def detach(self) -> None:
        """Detaches the program from its hook and frees the link (same as :meth:`close`)."""
        self.close()

    @property
    def fd(self) -> int:
        """The link's file descriptor (owned by the link)."""
        self._check_open()
        return int(lib.bpf_link__fd(self._ptr))

    def _info(self) -> Any:
        info = ffi.new("struct bpf_link_info *")
        size = ffi.new("__u32 *", ffi.sizeof("struct bpf_link_info"))
        check_int(lib.bpf_link_get_info_by_fd(self.fd, info, size), f"get info of {self.description}")
        return info

    @property
    def id(self) -> int:
        """The kernel's id of the link."""
        return int(self._info().id)

    @property
    def type(self) -> LinkType:
        """The kernel's link type (perf-event based links report ``PERF_EVENT``)."""
        return LinkType(int(self._info().type))

    @property
    def pin_path(self) -> str | None:
        """Where the link is pinned, or None."""
        self._check_open()
        return cstr(lib.bpf_link__pin_path(self._ptr)) or None

    def pin(self, path: str | os.PathLike[str]) -> None:
        """Pins the link on bpffs at ``path`` so that it outlives this process."""
        self._check_open()
        path = os.fspath(path)
        check_int(lib.bpf_link__pin(self._ptr, path.encode()), f"pin {self.description} at {path}")

    def unpin(self) -> None:
        """Removes the pin file made by :meth:`pin`."""
        self._check_open()
        check_int(lib.bpf_link__unpin(self._ptr), f"unpin {self.description}")

    @classmethod
    def from_pinned(cls, path: str | os.PathLike[str]) -> Link:
        """Opens a link pinned at ``path``; closing it leaves the pin in place."""
        path = os.fspath(path)
        if not os.path.exists(path):
            raise BpfError(2, "No such file or directory", context=f"open pinned link {path}")
        ptr = check_ptr(lib.bpf_link__open(path.encode()), f"open pinned link {path}")
        return cls(ptr, None, description=f"pinned link {path}")

    def __repr__(self) -> str:
        state = "detached" if self.closed else f"fd={self.fd}"
        return f"<{type(self).__name__} {self.description} {state}>"
