"""Links: a program attached somewhere. Detaching is closing the link."""

from __future__ import annotations

import errno
import os
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, cast

from pyprobe._ffi import cstr, ffi, lib
from pyprobe._resource import ClosedError, Resource
from pyprobe.enums import LinkType
from pyprobe.errors import BpfError, check_int, check_ptr

if TYPE_CHECKING:
    from pyprobe.attach._base import ProgramCore
    from pyprobe.program import Program

__all__ = [
    "KprobeLink",
    "Link",
    "PerfEventLink",
    "RawTracepointLink",
    "TraceLink",
    "TracepointLink",
    "UprobeLink",
    "UprobeMultiLink",
    "UsdtLink",
    "XdpLink",
]


class Link(Resource):
    """A program attached to a hook; ``detach()`` (or ``close()``) removes it.

    A link made by an attach call belongs to its program's object and is
    detached when the object closes; ``pin()`` makes it outlive the process.
    """

    def __init__(
        self, ptr: Any, program: ProgramCore | None, *, description: str = "", also: tuple[Any, ...] = ()
    ) -> None:
        self._ptr = ptr
        self._also = also
        self.program = cast("Program | None", program)  # every ProgramCore is a Program's face
        """The attached program (None for a link opened from a pin)."""
        self.description = description or (f"link of program '{program.name}'" if program else "link")

        def release() -> None:
            for extra in also:
                lib.bpf_link__destroy(extra)
            lib.bpf_link__destroy(ptr)

        # A link made through an object also holds the object's guard: the
        # object is not freed while a call on one of its links is in flight.
        self._own(release, self.description, program._object._guard if program is not None else None)
        if program is not None:
            try:
                program._object._adopt_link(self)
            except ClosedError:  # the object was closed in another thread meanwhile
                self.close()
                raise

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
        with self._guard:
            return int(lib.bpf_link__fd(self._ptr))

    def _info(self) -> Any:
        info = ffi.new("struct bpf_link_info *")
        size = ffi.new("__u32 *", ffi.sizeof("struct bpf_link_info"))
        with self._guard:
            fd = int(lib.bpf_link__fd(self._ptr))
            check_int(lib.bpf_link_get_info_by_fd(fd, info, size), f"get info of {self.description}")
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
        with self._guard:
            return cstr(lib.bpf_link__pin_path(self._ptr)) or None

    def pin(self, path: str | os.PathLike[str]) -> None:
        """Pins the link on bpffs at ``path`` so that it outlives this process."""
        self._check_open()
        path = os.fspath(path)
        if self._also:
            raise BpfError(
                errno.EOPNOTSUPP,
                f"this link is made of {1 + len(self._also)} kernel links and cannot be pinned as one",
                context=f"pin {self.description} at {path}",
            )  # fmt: skip
        with self._guard:
            check_int(lib.bpf_link__pin(self._ptr, path.encode()), f"pin {self.description} at {path}")

    def unpin(self) -> None:
        """Removes the pin file made by :meth:`pin`."""
        with self._guard:
            check_int(lib.bpf_link__unpin(self._ptr), f"unpin {self.description}")

    @classmethod
    def from_pinned(cls, path: str | os.PathLike[str]) -> Link:
        """Opens a link pinned at ``path``; closing it leaves the pin in place.

        On a typed subclass (``UprobeLink.from_pinned``) the target attributes
        are None: the kernel does not keep them. Raises BpfError (ENOENT) when
        nothing is pinned there.
        """
        path = os.fspath(path)
        if not os.path.exists(path):
            raise BpfError(2, "No such file or directory", context=f"open pinned link {path}")
        ptr = check_ptr(lib.bpf_link__open(path.encode()), f"open pinned link {path}")
        return cls(ptr, None, description=f"pinned link {path}")

    def __repr__(self) -> str:
        state = "detached" if self.closed else f"fd={self.fd}"
        return f"<{type(self).__name__} {self.description} {state}>"


class _OwnedLink(Link):
    """A link released by a function of its own rather than by libbpf's ``bpf_link__destroy``.

    Same life cycle as every :class:`Link`: close() (or detach()) releases it, a context manager
    closes it, its object's close() closes it, a finalizer is the last resort.
    """

    def __init__(self, release: Callable[[], None], program: ProgramCore, *, description: str) -> None:
        self._release_fn = release
        super().__init__(ffi.NULL, program, description=description)

    def _own(self, release: Callable[[], None], what: str, parent: Any = None) -> None:
        super()._own(self._release_fn, what, parent)


class _AttachmentLink(_OwnedLink):
    """A program attached without a kernel link (``setsockopt``, BPF_PROG_ATTACH, a classic TC filter).

    Closing it undoes the attach. It has no fd, kernel id or type, and cannot be pinned; it belongs
    to its program's object like every link and is detached when the object closes.
    """

    def _no_kernel_link(self, doing: str) -> BpfError:
        return BpfError(
            errno.EOPNOTSUPP, f"{self.description} is not a kernel link: it has no fd, id, type or pin",
            context=f"{doing} {self.description}",
        )  # fmt: skip

    @property
    def fd(self) -> int:
        """-1: the attach made no kernel link."""
        self._check_open()
        return -1

    def _info(self) -> Any:
        raise self._no_kernel_link("get info of")

    @property
    def pin_path(self) -> str | None:
        """None: such attachments cannot be pinned."""
        return None

    def pin(self, path: str | os.PathLike[str]) -> None:
        """Raises BpfError (EOPNOTSUPP): only kernel links can be pinned."""
        raise self._no_kernel_link(f"pin at {os.fspath(path)}")

    def unpin(self) -> None:
        """Raises BpfError (EOPNOTSUPP): only kernel links can be pinned."""
        raise self._no_kernel_link("unpin")

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.description} {'detached' if self.closed else 'attached'}>"


class UprobeLink(Link):
    """A uprobe or uretprobe: ``binary`` (the resolved path), ``function`` (the symbol as found in the
    binary, None for a raw offset), ``offset`` (the file offset probed), ``pid``, ``retprobe``.

    With ``return_sites`` it is one uprobe on each return instruction of the function, whose file
    offsets are in ``return_offsets`` (it is then several kernel links and cannot be pinned).
    """

    def __init__(
        self,
        ptr: Any,
        program: ProgramCore | None,
        *,
        description: str = "",
        also: tuple[Any, ...] = (),
        binary: str | None = None,
        function: str | None = None,
        offset: int | None = None,
        pid: int | None = None,
        retprobe: bool | None = None,
        cookie: int | None = None,
        return_offsets: tuple[int, ...] = (),
    ) -> None:
        super().__init__(ptr, program, description=description, also=also)
        self.binary = binary
        self.function = function
        self.offset = offset
        self.pid = pid
        self.retprobe = retprobe
        self.cookie = cookie
        self.return_offsets = return_offsets


class UprobeMultiLink(Link):
    """One uprobe_multi link on many functions: ``binary``, ``functions`` (symbols), ``offsets``,
    ``cookies``, ``pid``, ``retprobe``."""

    def __init__(
        self,
        ptr: Any,
        program: ProgramCore | None,
        *,
        description: str = "",
        binary: str | None = None,
        functions: tuple[str, ...] = (),
        offsets: tuple[int, ...] = (),
        cookies: tuple[int, ...] = (),
        pid: int | None = None,
        retprobe: bool | None = None,
    ) -> None:
        super().__init__(ptr, program, description=description)
        self.binary = binary
        self.functions = functions
        self.offsets = offsets
        self.cookies = cookies
        self.pid = pid
        self.retprobe = retprobe


class UsdtLink(Link):
    """A USDT probe: ``binary``, ``provider``, ``name``, ``pid``."""

    def __init__(
        self,
        ptr: Any,
        program: ProgramCore | None,
        *,
        description: str = "",
        binary: str | None = None,
        provider: str | None = None,
        name: str | None = None,
        pid: int | None = None,
    ) -> None:
        super().__init__(ptr, program, description=description)
        self.binary = binary
        self.provider = provider
        self.name = name
        self.pid = pid


class TracepointLink(Link):
    """A tracepoint: ``category`` and ``name`` (``syscalls``, ``sys_enter_getpid``)."""

    def __init__(
        self, ptr: Any, program: ProgramCore | None, *, description: str = "", category: str | None = None,
        name: str | None = None,
    ) -> None:  # fmt: skip
        super().__init__(ptr, program, description=description)
        self.category = category
        self.name = name


class RawTracepointLink(Link):
    """A raw tracepoint: ``name`` (``sched_switch``)."""

    def __init__(
        self, ptr: Any, program: ProgramCore | None, *, description: str = "", name: str | None = None
    ) -> None:
        super().__init__(ptr, program, description=description)
        self.name = name


class KprobeLink(Link):
    """A kprobe or kretprobe: ``function``, ``offset``, ``retprobe``."""

    def __init__(
        self, ptr: Any, program: ProgramCore | None, *, description: str = "", function: str | None = None,
        offset: int | None = None, retprobe: bool | None = None,
    ) -> None:  # fmt: skip
        super().__init__(ptr, program, description=description)
        self.function = function
        self.offset = offset
        self.retprobe = retprobe


class TraceLink(Link):
    """A BTF-based tracing link (tp_btf, fentry, fexit, fmod_ret, lsm, freplace): ``kind`` and ``target``
    (the traced function or tracepoint, or the replaced BPF function)."""

    def __init__(
        self, ptr: Any, program: ProgramCore | None, *, description: str = "", kind: str | None = None,
        target: str | None = None,
    ) -> None:  # fmt: skip
        super().__init__(ptr, program, description=description)
        self.kind = kind
        self.target = target


class PerfEventLink(Link):
    """A program on a perf event: ``perf_fd`` (the caller's fd; the link holds its own duplicate) and ``cpu``."""

    def __init__(
        self, ptr: Any, program: ProgramCore | None, *, description: str = "", perf_fd: int | None = None,
        cpu: int | None = None,
    ) -> None:  # fmt: skip
        super().__init__(ptr, program, description=description)
        self.perf_fd = perf_fd
        self.cpu = cpu


class XdpLink(Link):
    """An XDP program on a network interface: ``ifindex`` and ``interface`` (its name)."""

    def __init__(
        self, ptr: Any, program: ProgramCore | None, *, description: str = "", ifindex: int | None = None,
        interface: str | None = None,
    ) -> None:  # fmt: skip
        super().__init__(ptr, program, description=description)
        self.ifindex = ifindex
        self.interface = interface
