"""Cgroup attach kinds: cgroup_skb, sock_create and the other cgroup/sock hooks, bind/connect, sockops,
sysctl, get/setsockopt and device programs, attached to a cgroup v2 directory.

:meth:`CgroupAttach.attach_cgroup` makes a bpf_link by default (Linux 5.7; it detaches when the link
closes, whatever else is attached to the cgroup), or uses the classic ``bpf_prog_attach`` with its
flags (``CgroupAttachFlags.ALLOW_MULTI``, ``ALLOW_OVERRIDE``, ``REPLACE``) when flags are given.
Either way the result is a :class:`CgroupLink` whose ``mechanism`` says which.
"""

from __future__ import annotations

import enum
import errno
import os
from typing import TYPE_CHECKING, Any, Literal

from pyprobe._ffi import ffi, lib
from pyprobe.attach._base import ProgramCore
from pyprobe.enums import AttachType, IntFlagBody, ProgramType, built_as
from pyprobe.errors import AttachError, BpfError, UnsupportedError, check_int, check_ptr, error_from_errno
from pyprobe.link import Link

if TYPE_CHECKING:
    from pyprobe.program import Program

__all__ = [
    "CGROUP_PROGRAM_FEATURES",
    "CgroupAttach",
    "CgroupAttachFlags",
    "CgroupLink",
    "cgroup2_mount",
    "open_cgroup",
    "query_cgroup",
]

CGROUP2_SUPER_MAGIC = 0x63677270
CGROUP_SUPER_MAGIC = 0x27E0EB  # cgroup v1
_FD_MAX = (1 << 31) - 1

CGROUP_PROGRAM_FEATURES: dict[ProgramType, str] = {
    ProgramType.CGROUP_SKB: "cgroup_skb",
    ProgramType.CGROUP_SOCK: "cgroup_sock",
    ProgramType.CGROUP_SOCK_ADDR: "cgroup_sock_addr",
    ProgramType.SOCK_OPS: "sockops",
    ProgramType.CGROUP_SYSCTL: "cgroup_sysctl",
    ProgramType.CGROUP_SOCKOPT: "cgroup_sockopt",
    ProgramType.CGROUP_DEVICE: "cgroup_device",
}
"""The program types :meth:`CgroupAttach.attach_cgroup` takes, with the :mod:`pyprobe.features` name of each."""

_SECTIONS = (
    'SEC("cgroup_skb/ingress"), SEC("cgroup_skb/egress"), SEC("cgroup/sock_create"), SEC("cgroup/connect4"), '
    'SEC("cgroup/bind4"), SEC("sockops"), SEC("cgroup/sysctl"), SEC("cgroup/getsockopt"), SEC("cgroup/dev")...'
)


@built_as(enum.IntFlag)
class CgroupAttachFlags(IntFlagBody):
    """Flags of the classic ``bpf_prog_attach`` to a cgroup (BPF_F_*).

    ``NONE`` attaches the one program of the hook (exclusive); ``ALLOW_OVERRIDE``
    lets a descendant cgroup's program replace it there; ``ALLOW_MULTI`` keeps a
    list of programs on the hook that all run; ``REPLACE`` (with ALLOW_MULTI and
    ``replace=``) swaps one program of that list in place.
    """

    NONE = 0
    ALLOW_OVERRIDE = 1 << 0
    ALLOW_MULTI = 1 << 1
    REPLACE = 1 << 2


def cgroup2_mount() -> str | None:
    """Where the cgroup v2 hierarchy is mounted (``/sys/fs/cgroup`` or ``/sys/fs/cgroup/unified``), or None.

    Reads /proc/self/mounts (bounded to 4 MiB).
    """
    try:
        with open("/proc/self/mounts", "rb") as f:
            text = f.read(4 << 20)
    except OSError:
        return None
    for line in text.splitlines():
        fields = line.split()
        if len(fields) >= 3 and fields[2] == b"cgroup2":
            return os.fsdecode(fields[1]).replace("\\040", " ")
    return None


def _fs_magic(fd: int) -> int:
    magic = ffi.new("long long *")
    ret = int(lib.pyprobe_fs_magic(fd, magic))
    return -1 if ret < 0 else int(magic[0]) & 0xFFFFFFFF


def open_cgroup(cgroup: str | os.PathLike[str] | int, context: str) -> tuple[int, str]:
    """Opens a cgroup v2 directory (a path, or an fd whose duplicate is taken); returns (own fd, path).

    The caller owns the fd. Raises :class:`AttachError`: ENOENT naming a missing
    cgroup, ENOTDIR for a file, EINVAL for a directory that is not in a cgroup v2
    hierarchy (a cgroup v1 controller, or no cgroup at all), EBADF for a closed fd.
    """
    if isinstance(cgroup, bool):
        raise TypeError(f"{context}: the cgroup must be a path or an fd, not bool")
    if isinstance(cgroup, int):
        if not 0 <= cgroup <= _FD_MAX:
            raise ValueError(f"{context}: cgroup fd {cgroup} is out of range [0, {_FD_MAX}]")
        try:
            fd = os.dup(cgroup)
        except OSError as exc:
            raise AttachError(exc.errno or errno.EBADF, f"cgroup fd {cgroup} is not open", context=context) from None
        try:
            path = os.readlink(f"/proc/self/fd/{cgroup}")
        except OSError:
            path = f"fd {cgroup}"
        what = f"cgroup fd {cgroup} ({path})"
    elif isinstance(cgroup, (str, os.PathLike)):
        path = os.path.abspath(os.fspath(cgroup))
        what = path
        try:
            fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        except FileNotFoundError:
            raise AttachError(
                errno.ENOENT, f"no cgroup {path}", context=context, hint=_mount_hint("create it with mkdir")
            ) from None
        except NotADirectoryError:
            raise AttachError(errno.ENOTDIR, f"{path} is not a cgroup directory", context=context) from None
        except OSError as exc:
            raise AttachError(
                exc.errno or errno.EIO, f"cannot open cgroup {path}: {exc.strerror}", context=context
            ) from None
    else:
        raise TypeError(f"{context}: the cgroup must be a path or an fd, not {type(cgroup).__name__}")
    magic = _fs_magic(fd)
    if magic != CGROUP2_SUPER_MAGIC:
        os.close(fd)
        if magic == CGROUP_SUPER_MAGIC:
            why = f"{what} is in a cgroup v1 hierarchy; BPF cgroup programs attach to cgroup v2 directories"
        elif magic == -1:
            why = f"{what} is not a directory in a cgroup v2 hierarchy"
        else:
            why = f"{what} is not a cgroup v2 directory (filesystem type {magic:#x})"
        raise AttachError(errno.EINVAL, why, context=context, hint=_mount_hint("use a directory under it"))
    return fd, path


def _mount_hint(then: str) -> str:
    mount = cgroup2_mount()
    if mount is None:
        return "no cgroup v2 hierarchy is mounted: mount -t cgroup2 none /sys/fs/cgroup (or another directory)"
    return f"the cgroup v2 hierarchy is mounted at {mount}: {then}"


def query_cgroup(cgroup: str | os.PathLike[str] | int, attach_type: AttachType | str | int) -> list[int]:
    """The ids of the programs attached to ``cgroup`` at ``attach_type`` (links and classic attachments).

    Only the cgroup's own programs, not the inherited ones. Raises what
    :func:`open_cgroup` raises, and :class:`BpfError` when the query fails.
    """
    atype = AttachType(int(AttachType.parse(attach_type)))
    context = f"query programs of cgroup {cgroup!r} at {atype.name.lower()}"
    fd, _path = open_cgroup(cgroup, context)
    try:
        count = 64
        while True:
            ids = ffi.new("__u32[]", count)
            cnt = ffi.new("__u32 *", count)
            flags = ffi.new("__u32 *")
            ret = int(lib.bpf_prog_query(fd, int(atype), 0, flags, ids, cnt))
            if ret == -errno.ENOSPC and count < 1 << 16:
                count *= 8
                continue
            check_int(ret, context)
            return [int(ids[i]) for i in range(min(int(cnt[0]), count))]
    finally:
        os.close(fd)


class CgroupLink(Link):
    """A program attached to a cgroup: ``cgroup`` (the path), ``attach_type``, ``mechanism``
    (``"bpf_link"``, or ``"prog_attach"`` for the classic attachment) and ``flags`` (classic only).

    Closing it detaches the program. A classic attachment has no link fd: its
    ``fd``, ``id``, ``pin`` raise :class:`BpfError` (EOPNOTSUPP); it holds its own
    duplicates of the program and cgroup fds until it is closed.
    """

    def __init__(
        self,
        ptr: Any,
        program: ProgramCore | None,
        *,
        description: str = "",
        cgroup: str | None = None,
        attach_type: AttachType | None = None,
        mechanism: Literal["bpf_link", "prog_attach"] = "bpf_link",
        flags: CgroupAttachFlags | None = None,
        classic: tuple[int, int] | None = None,
    ) -> None:
        self.cgroup = cgroup
        """The cgroup directory the program is attached to."""
        self.attach_type = attach_type
        """The hook (``AttachType.CGROUP_INET4_CONNECT``...)."""
        self.mechanism = mechanism
        """``"bpf_link"`` (a kernel link) or ``"prog_attach"`` (the classic attachment)."""
        self.flags = flags
        """The classic attachment's flags; None for a bpf_link."""
        if classic is None:
            super().__init__(ptr, program, description=description)
            return
        prog_fd, cgroup_fd = classic
        atype = int(attach_type) if attach_type is not None else 0
        self._ptr = ffi.NULL
        self._also = ()
        self.program = program  # type: ignore[assignment]  # every ProgramCore is a Program's face
        self.description = description

        def release() -> None:
            lib.bpf_prog_detach2(prog_fd, cgroup_fd, atype)  # ENOENT once replaced (REPLACE) or detached
            os.close(prog_fd)
            os.close(cgroup_fd)

        self._own(release, description, program._object._guard if program is not None else None)
        if program is not None:
            try:
                program._object._adopt_link(self)
            except BpfError:  # the object was closed in another thread meanwhile
                self.close()
                raise

    def _no_link(self, doing: str) -> BpfError:
        return BpfError(
            errno.EOPNOTSUPP, "a classic cgroup attachment (bpf_prog_attach) is no kernel link",
            context=f"{doing} {self.description}", hint="attach without flags for a bpf_link",
        )  # fmt: skip

    @property
    def fd(self) -> int:
        """The link's fd; raises :class:`BpfError` (EOPNOTSUPP) for a classic attachment."""
        if self.mechanism != "bpf_link":
            self._check_open()
            raise self._no_link("get the fd of")
        return super().fd

    def _info(self) -> Any:
        if self.mechanism != "bpf_link":
            self._check_open()
            raise self._no_link("get info of")
        return super()._info()

    @property
    def pin_path(self) -> str | None:
        """Where the link is pinned, or None (always None for a classic attachment)."""
        return None if self.mechanism != "bpf_link" else super().pin_path

    def pin(self, path: str | os.PathLike[str]) -> None:
        """Pins the link on bpffs; a classic attachment cannot be pinned (EOPNOTSUPP)."""
        if self.mechanism != "bpf_link":
            raise self._no_link(f"pin at {os.fspath(path)}")
        super().pin(path)

    def unpin(self) -> None:
        """Removes the pin made by :meth:`pin`."""
        if self.mechanism != "bpf_link":
            raise self._no_link("unpin")
        super().unpin()

    def update(self, program: Program) -> None:
        """Replaces the linked program by ``program`` (of the same type and attach type) atomically.

        Only for a bpf_link (Linux 5.7); for a classic attachment attach the new
        program with ``flags=REPLACE | ALLOW_MULTI, replace=old``. The link stays
        owned by the object it was made through (closing that object detaches it).
        Raises :class:`AttachError`.
        """
        context = f"update {self.description} to program '{program.name}'"
        if self.mechanism != "bpf_link":
            raise self._no_link("update")
        with self._guard, program._object._guard:
            program._loaded_fd(context)
            check_int(lib.bpf_link__update_program(self._ptr, program._ptr), context, AttachError)
        self.program = program

    def __repr__(self) -> str:
        atype = self.attach_type.name.lower() if self.attach_type is not None else "?"
        how: str = self.mechanism
        if self.flags is not None:
            how += f"({self.flags!r})" if self.flags else "(exclusive)"
        prog = f"program '{self.program.name}' " if self.program is not None else ""
        state = "detached" if self.closed else "attached"
        return f"<CgroupLink {prog}{atype} on {self.cgroup} via {how} {state}>"


class CgroupAttach(ProgramCore):
    """The cgroup ``attach_*`` methods of :class:`~pyprobe.Program`."""

    def attach_cgroup(
        self,
        cgroup: str | os.PathLike[str] | int,
        *,
        flags: CgroupAttachFlags | int | None = None,
        replace: Program | None = None,
    ) -> CgroupLink:
        """Attaches a cgroup program to ``cgroup``: a cgroup v2 directory path or an open fd of one.

        The hook is the program's attach type, from its SEC name
        (``cgroup/connect4``, ``cgroup_skb/egress``...) or set before load. The
        program runs for the processes of the cgroup and its descendants.
        Without ``flags`` the attachment is a bpf_link (Linux 5.7), detached
        when the returned link closes. With ``flags`` (a
        :class:`CgroupAttachFlags`, ``NONE`` for exclusive) it is the classic
        ``bpf_prog_attach`` with those flags; ``replace`` names the program
        that ``REPLACE`` swaps (the flags then need ``ALLOW_MULTI``). The link
        owns its own fds; the caller keeps its cgroup fd.

        Raises :class:`AttachError` naming the cgroup when it does not exist
        or is not cgroup v2, or the program when it is not a cgroup program;
        :class:`UnsupportedError` when the kernel lacks the kind (see
        ``CGROUP_PROGRAM_FEATURES``) or cgroup links. Minimum kernels: 4.10
        (cgroup_skb, sock) to 5.3 (sockopt); see docs/attaching.md.
        """
        shown = os.fspath(cgroup) if isinstance(cgroup, (str, os.PathLike)) else repr(cgroup)
        context = f"attach program '{self.name}' to cgroup {shown}"
        self._require_kind("attach_cgroup", tuple(CGROUP_PROGRAM_FEATURES), f"a cgroup program ({_SECTIONS})", context)
        if flags is not None:
            if isinstance(flags, bool) or not isinstance(flags, int):
                raise TypeError(f"{context}: flags must be CgroupAttachFlags, not {type(flags).__name__}")
            if flags & ~0x7:
                raise ValueError(f"{context}: unknown flags {flags:#x} (CgroupAttachFlags: {list(CgroupAttachFlags)})")
            flags = CgroupAttachFlags(flags)
            if bool(flags & CgroupAttachFlags.REPLACE) != (replace is not None):
                raise ValueError(f"{context}: flags REPLACE and replace= go together")
            if flags & CgroupAttachFlags.REPLACE and not flags & CgroupAttachFlags.ALLOW_MULTI:
                raise ValueError(f"{context}: flags REPLACE needs ALLOW_MULTI")
        elif replace is not None:
            raise ValueError(f"{context}: replace= needs flags=REPLACE | ALLOW_MULTI (a bpf_link is updated instead)")
        self._loaded_fd(context)
        atype = self.attach_type
        fd, path = open_cgroup(cgroup, context)
        context = f"attach program '{self.name}' to cgroup {path} at {atype.name.lower()}"
        try:
            if flags is None:
                return self._attach_cgroup_link(fd, path, atype, context)
            return self._attach_cgroup_classic(fd, path, atype, flags, replace, context)
        finally:
            os.close(fd)

    def _cgroup_error(self, err: int, context: str, how: str) -> BpfError:
        """The error of a refused attach: UnsupportedError where the kernel lacks the kind."""
        feature = CGROUP_PROGRAM_FEATURES[self.type]
        if err in (errno.EINVAL, errno.EOPNOTSUPP, errno.ENOTSUP, 524):  # 524: the kernel's ENOTSUPP
            from pyprobe import features

            features.require(feature, context)
            link_status = features.probe("cgroup_link")
            if how == "bpf_link" and not link_status.available:
                return UnsupportedError(
                    errno.EOPNOTSUPP, f"this kernel makes no bpf_links to cgroups (Linux 5.7+): {link_status.reason}",
                    context=context, hint="attach with flags=CgroupAttachFlags.ALLOW_MULTI (classic bpf_prog_attach)",
                )  # fmt: skip
        if err == errno.EPERM:
            return AttachError(
                err, "the hook already has a program that does not allow overriding or multiple programs "
                "(on this cgroup with other flags, or an exclusive one on an ancestor)",
                context=context, hint="attach with the same flags as the program already there (ALLOW_MULTI)"
                if how == "prog_attach" else "bpf_links need the hook's classic programs attached with ALLOW_MULTI",
            )  # fmt: skip
        if err == errno.EEXIST:
            return AttachError(err, "this program is already attached to this cgroup hook", context=context)
        return error_from_errno(err, context, AttachError)

    def _attach_cgroup_link(self, fd: int, path: str, atype: AttachType, context: str) -> CgroupLink:
        ptr = self._call(lib.bpf_program__attach_cgroup, fd)
        if ptr == ffi.NULL:
            raise self._cgroup_error(ffi.errno, context, "bpf_link")
        ptr = check_ptr(ptr, context, AttachError)
        return CgroupLink(
            ptr, self, description=f"program '{self.name}' {atype.name.lower()} on cgroup {path} (bpf_link)",
            cgroup=path, attach_type=atype, mechanism="bpf_link",
        )  # fmt: skip

    def _attach_cgroup_classic(
        self, fd: int, path: str, atype: AttachType, flags: CgroupAttachFlags, replace: Program | None, context: str
    ) -> CgroupLink:
        opts = ffi.new("struct bpf_prog_attach_opts *")
        opts.sz = ffi.sizeof("struct bpf_prog_attach_opts")
        opts.flags = int(flags)
        with self._object._guard:
            prog_fd = os.dup(self._loaded_fd(context))
        cgroup_fd = os.dup(fd)
        try:
            if replace is not None:
                with replace._object._guard:
                    opts.replace_prog_fd = replace._loaded_fd(context)
                    ret = int(lib.bpf_prog_attach_opts(prog_fd, cgroup_fd, int(atype), opts))
            else:
                ret = int(lib.bpf_prog_attach_opts(prog_fd, cgroup_fd, int(atype), opts))
            if ret < 0:
                raise self._cgroup_error(-ret, context, "prog_attach")
        except BaseException:
            os.close(prog_fd)
            os.close(cgroup_fd)
            raise
        shown = repr(flags) if flags else "exclusive"
        return CgroupLink(
            ffi.NULL, self,
            description=f"program '{self.name}' {atype.name.lower()} on cgroup {path} (prog_attach, {shown})",
            cgroup=path, attach_type=atype, mechanism="prog_attach", flags=flags, classic=(prog_fd, cgroup_fd),
        )  # fmt: skip

    def _is_cgroup_program(self) -> bool:
        return self.type in CGROUP_PROGRAM_FEATURES

    def _no_cgroup_in_section(self) -> None:
        """Raises AttachError saying to call attach_cgroup when this is a cgroup program (whose SEC names none)."""
        if not self._is_cgroup_program():
            return
        raise AttachError(
            errno.EOPNOTSUPP, f"SEC(\"{self.section}\") names no cgroup to attach to", context=self._attach_context(),
            hint=f"call program.attach_cgroup('/sys/fs/cgroup/NAME') for '{self.name}'",
        )  # fmt: skip
