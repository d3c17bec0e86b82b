"""Socket attach kinds: socket filters, SO_REUSEPORT programs, sk_msg / sk_skb on a sockmap or
sockhash, and the per-network-namespace kinds (sk_lookup, flow dissector).

Socket filters and SO_REUSEPORT programs attach with ``setsockopt`` on a socket, sk_msg and sk_skb
with BPF_PROG_ATTACH on a map: neither makes a kernel link, so their links here
(:class:`SocketFilterLink`, :class:`ReuseportLink`, :class:`SockMapLink`) undo the attach on close
and have no kernel id and no pin. sk_lookup and flow dissector programs get a kernel link on a
network namespace (:class:`NetnsLink`).
"""

from __future__ import annotations

import errno
import os
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, cast

from pyprobe._ffi import ffi, lib
from pyprobe.attach._base import ProgramCore
from pyprobe.enums import AttachType, MapType, ProgramType
from pyprobe.errors import AttachError, BpfError, check_ptr, error_from_errno
from pyprobe.link import Link, _AttachmentLink
from pyprobe.maps import Map

if TYPE_CHECKING:  # socket, fcntl, features and pyprobe.maps._socket are imported where a method needs them
    import socket

    from pyprobe.maps._socket import SocketLike

__all__ = ["NetnsLink", "ReuseportLink", "SockMapLink", "SocketAttach", "SocketFilterLink"]

# <asm-generic/socket.h>
_SO_ATTACH_BPF = 50  # Linux 3.19
_SO_DETACH_BPF = 27  # SO_DETACH_FILTER
_SO_ATTACH_REUSEPORT_EBPF = 52  # Linux 4.6
_SO_DETACH_REUSEPORT_BPF = 68  # Linux 5.3
_NS_GET_NSTYPE = 0xB703  # <linux/nsfs.h>, Linux 4.11
_CLONE_NEWNET = 0x40000000

_SOCKMAP_ATTACH_TYPES = {
    ProgramType.SK_MSG: (AttachType.SK_MSG_VERDICT,),
    ProgramType.SK_SKB: (AttachType.SK_SKB_STREAM_PARSER, AttachType.SK_SKB_STREAM_VERDICT, AttachType.SK_SKB_VERDICT),
}
_SOCKMAP_FEATURE = {ProgramType.SK_MSG: "sk_msg", ProgramType.SK_SKB: "sk_skb"}
_NETNS_FEATURE = {ProgramType.SK_LOOKUP: "sk_lookup", ProgramType.FLOW_DISSECTOR: "flow_dissector"}


class SocketFilterLink(_AttachmentLink):
    """A socket filter on one socket (SO_ATTACH_BPF): ``socket_fd`` (the caller's fd at attach time).

    It holds a duplicate of the socket's fd until closed (so a detach never lands on a reused fd
    number): the socket stays open that long. A socket has one filter: a later attach on the same
    socket replaces this one, and closing either link removes the socket's filter.
    """

    def __init__(self, release: Callable[[], None], program: ProgramCore, *, description: str, socket_fd: int) -> None:
        super().__init__(release, program, description=description)
        self.socket_fd = socket_fd


class ReuseportLink(_AttachmentLink):
    """The selector program of a SO_REUSEPORT group (SO_ATTACH_REUSEPORT_EBPF): ``socket_fd``.

    Like :class:`SocketFilterLink` it holds a duplicate of the socket's fd until closed; closing
    detaches the program from the group (SO_DETACH_REUSEPORT_BPF, Linux 5.3; on older kernels the
    program stays until the group's last socket closes).
    """

    def __init__(self, release: Callable[[], None], program: ProgramCore, *, description: str, socket_fd: int) -> None:
        super().__init__(release, program, description=description)
        self.socket_fd = socket_fd


class SockMapLink(_AttachmentLink):
    """An sk_msg or sk_skb program on a sockmap or sockhash (BPF_PROG_ATTACH): ``map_name`` and
    ``attach_type``. It holds its own references to the map and the program until closed."""

    def __init__(
        self, release: Callable[[], None], program: ProgramCore, *, description: str, map_name: str,
        attach_type: AttachType,
    ) -> None:  # fmt: skip
        super().__init__(release, program, description=description)
        self.map_name = map_name
        self.attach_type = attach_type


class NetnsLink(Link):
    """An sk_lookup or flow dissector program on a network namespace (a kernel link): ``netns`` (the
    path given, or ``fd N``). The link keeps the namespace alive until it is closed."""

    def __init__(
        self, ptr: Any, program: ProgramCore | None, *, description: str = "", netns: str | None = None
    ) -> None:
        super().__init__(ptr, program, description=description)
        self.netns = netns


def _setsockopt_int(sock: socket.socket, option: int, value: int) -> None:
    import socket

    sock.setsockopt(socket.SOL_SOCKET, option, value)


def _detach_from_socket(sock: socket.socket, option: int) -> Callable[[], None]:
    def release() -> None:
        try:
            _setsockopt_int(sock, option, 0)
        except OSError:
            pass  # already replaced or detached: nothing of ours is left
        finally:
            sock.close()

    return release


def _detach_from_map(prog_fd: int, map_fd: int, attach_type: int) -> Callable[[], None]:
    def release() -> None:
        try:
            lib.bpf_prog_detach2(prog_fd, map_fd, attach_type)
        finally:
            os.close(prog_fd)
            os.close(map_fd)

    return release


def _check_netns(fd: int, shown: str, context: str) -> None:
    """Raises AttachError unless ``fd`` is an open network namespace (ioctl NS_GET_NSTYPE, Linux 4.11)."""
    import fcntl

    try:
        kind = fcntl.ioctl(fd, _NS_GET_NSTYPE)
    except OSError as exc:
        if exc.errno == errno.EBADF:
            raise AttachError(errno.EBADF, f"fd {fd} is not open", context=context) from None
        if exc.errno != errno.ENOTTY:
            return  # a kernel without the ioctl: the attach itself says
        kind = 0
    if kind != _CLONE_NEWNET:
        what = "a namespace of another kind" if kind else "not a namespace"
        raise AttachError(errno.EINVAL, f"{shown} is not a network namespace ({what})", context=context)


class SocketAttach(ProgramCore):
    """The socket ``attach_*`` methods of :class:`~pyprobe.Program`."""

    def _dup_socket(self, sock: SocketLike | int, context: str) -> tuple[socket.socket, int]:
        """A socket object of our own on a duplicate of ``sock``'s fd, and the caller's fd number."""
        import socket

        from pyprobe.maps._socket import socket_fd

        fd = socket_fd(sock, f"{context}: the socket")
        try:
            dup = os.dup(fd)
        except OSError as exc:
            raise AttachError(exc.errno or errno.EBADF, f"fd {fd} is not open", context=context) from None
        try:
            return socket.socket(fileno=dup), fd
        except OSError as exc:
            os.close(dup)
            raise AttachError(exc.errno or errno.ENOTSOCK, f"fd {fd} is not a socket", context=context) from None

    def _socket_attach(self, own: socket.socket, option: int, context: str) -> None:
        try:
            with self._object._guard:  # the program's fd stays ours until the kernel holds the program
                _setsockopt_int(own, option, self._loaded_fd(context))
        except OSError as exc:
            own.close()
            if isinstance(exc, BpfError):
                raise
            raise error_from_errno(exc.errno or errno.EINVAL, context, AttachError) from None
        except BaseException:
            own.close()
            raise

    def attach_socket(self, sock: SocketLike | int) -> SocketFilterLink:
        """Attaches the socket filter to a socket (a Python socket object or an fd) with SO_ATTACH_BPF.

        The program sees each packet the socket would receive (for UDP and TCP from the transport
        header on) and keeps the first N bytes it returns, dropping the packet when it returns 0.
        Closing the link detaches it (SO_DETACH_BPF). Raises :class:`AttachError` naming a closed fd
        or one that is not a socket, or the kernel's refusal. Minimum kernel 3.19.
        """
        context = f"attach socket filter '{self.name}' to socket {sock!r}"
        self._require_kind("attach_socket", (ProgramType.SOCKET_FILTER,), 'a SEC("socket") program', context)
        self._loaded_fd(context)
        own, fd = self._dup_socket(sock, context)
        self._socket_attach(own, _SO_ATTACH_BPF, context)
        release = _detach_from_socket(own, _SO_DETACH_BPF)
        return SocketFilterLink(release, self, description=f"socket filter on fd {fd}", socket_fd=fd)

    def attach_reuseport(self, sock: SocketLike | int) -> ReuseportLink:
        """Makes the program choose the socket of ``sock``'s SO_REUSEPORT group that gets each packet
        or connection (SO_ATTACH_REUSEPORT_EBPF); ``sock`` is a socket object or fd of the group.

        A SEC("sk_reuseport") program picks with ``bpf_sk_select_reuseport`` from a
        :class:`~pyprobe.ReuseportSockArrayMap`; a SEC("socket") program returns the index of the
        socket in the group. The socket must have SO_REUSEPORT set (AttachError EINVAL otherwise).
        Minimum kernel 4.19 for sk_reuseport programs (4.6 for socket filters).
        """
        context = f"attach reuseport program '{self.name}' to socket {sock!r}"
        self._require_kind(
            "attach_reuseport", (ProgramType.SK_REUSEPORT, ProgramType.SOCKET_FILTER),
            'a SEC("sk_reuseport") or SEC("socket") program', context,
        )  # fmt: skip
        import socket

        self._loaded_fd(context)
        own, fd = self._dup_socket(sock, context)
        try:
            reuse = own.getsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT)
        except OSError:
            reuse = 0
        if not reuse:
            own.close()
            raise AttachError(
                errno.EINVAL, f"socket fd {fd} has no SO_REUSEPORT", context=context,
                hint="set SO_REUSEPORT on every socket of the group before bind()",
            )  # fmt: skip
        self._socket_attach(own, _SO_ATTACH_REUSEPORT_EBPF, context)
        release = _detach_from_socket(own, _SO_DETACH_REUSEPORT_BPF)
        return ReuseportLink(release, self, description=f"reuseport program on fd {fd}", socket_fd=fd)

    def attach_sockmap(self, map: Map | int, *, attach_type: AttachType | str | int | None = None) -> SockMapLink:
        """Attaches an sk_msg or sk_skb program to a sockmap or sockhash (BPF_PROG_ATTACH on the map).

        ``map`` is a :class:`~pyprobe.SockMap`, :class:`~pyprobe.SockHashMap` or a map fd. The attach
        type comes from the section (``sk_msg``, ``sk_skb/stream_parser``, ``sk_skb/stream_verdict``,
        ``sk_skb/verdict``) unless given. The program runs for the sockets added to the map after
        the attach. Closing the link detaches it (BPF_PROG_DETACH). Raises :class:`AttachError`
        for a map that holds no sockets or a wrong attach type. Minimum kernel 4.17 for sk_msg,
        4.14 for sk_skb.
        """
        map_name = getattr(map, "name", f"fd {map}")
        context = f"attach program '{self.name}' to map '{map_name}'"
        self._require_kind(
            "attach_sockmap", tuple(_SOCKMAP_ATTACH_TYPES), 'a SEC("sk_msg") or SEC("sk_skb/...") program', context
        )
        ptype = self.type
        allowed = _SOCKMAP_ATTACH_TYPES[ptype]
        atype = self.attach_type if attach_type is None else AttachType(int(AttachType.parse(attach_type)))
        if atype not in allowed:
            names = ", ".join(a.name.lower() for a in allowed)
            raise AttachError(
                errno.EINVAL, f"attach type {atype.name.lower()} is not one of {ptype.name.lower()}'s ({names})",
                context=context, hint='name it in the section (SEC("sk_skb/stream_verdict")) or pass attach_type=',
            )  # fmt: skip
        if isinstance(map, Map):
            if map.type not in (MapType.SOCKMAP, MapType.SOCKHASH):
                raise AttachError(
                    errno.EINVAL, f"map '{map.name}' is a {map.type.name.lower()} map, not a sockmap or sockhash",
                    context=context,
                )  # fmt: skip
            guard: Any = map._guard
        elif isinstance(map, int) and not isinstance(map, bool):
            guard = None
        else:
            raise TypeError(f"{context}: map must be a Map or a map fd, not {type(map).__name__}")
        from pyprobe import features

        features.require(_SOCKMAP_FEATURE[ptype], context)
        with self._object._guard:
            prog_fd = os.dup(self._loaded_fd(context))
        try:
            if guard is not None:
                with guard:
                    map_fd = os.dup(cast("Map", map)._loaded_fd(context))
            else:
                map_fd = os.dup(cast(int, map))
        except BaseException as exc:
            os.close(prog_fd)
            if isinstance(exc, OSError) and not isinstance(exc, BpfError):
                raise AttachError(exc.errno or errno.EBADF, f"fd {map} is not open", context=context) from None
            raise
        ret = lib.bpf_prog_attach(prog_fd, map_fd, int(atype), 0)
        if ret < 0:
            os.close(prog_fd)
            os.close(map_fd)
            hint = "the map must be a sockmap or sockhash" if ret == -errno.EINVAL else ""
            raise error_from_errno(-ret, context, AttachError, hint=hint)
        return SockMapLink(
            _detach_from_map(prog_fd, map_fd, int(atype)), self,
            description=f"{atype.name.lower()} program '{self.name}' on map '{map_name}'",
            map_name=str(map_name), attach_type=atype,
        )  # fmt: skip

    def attach_netns(self, netns: str | os.PathLike[str] | int = "/proc/self/ns/net") -> NetnsLink:
        """Attaches an sk_lookup or flow dissector program to a network namespace, as a kernel link.

        ``netns`` is a path (``/proc/PID/ns/net``, ``/run/netns/NAME``), a name made by
        ``ip netns add`` (looked up in /run/netns), or an open fd of the namespace (the caller's);
        by default the caller's own namespace. The link keeps the namespace alive until closed.
        Raises :class:`AttachError` naming a missing namespace or a file that is not one, and
        :class:`UnsupportedError` where the kernel has no such links. Minimum kernel 5.9 for
        sk_lookup, 5.7 for flow dissector links.
        """
        context = f"attach program '{self.name}' to network namespace {netns!r}"
        self._require_kind(
            "attach_netns", tuple(_NETNS_FEATURE), 'a SEC("sk_lookup") or SEC("flow_dissector") program', context
        )
        from pyprobe import features

        features.require(_NETNS_FEATURE[self.type], context)
        self._loaded_fd(context)
        if isinstance(netns, int) and not isinstance(netns, bool):
            fd, opened, shown = netns, False, f"fd {netns}"
        elif isinstance(netns, (str, os.PathLike)):
            path = os.fspath(netns)
            if path and "/" not in path:
                path = f"/run/netns/{path}"
            try:
                fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
            except OSError as exc:
                raise AttachError(
                    exc.errno or errno.ENOENT, f"cannot open network namespace {path}: {exc.strerror}",
                    context=context,
                ) from None  # fmt: skip
            opened, shown = True, path
        else:
            raise TypeError(f"{context}: netns must be a path, a name or an fd, not {type(netns).__name__}")
        try:
            _check_netns(fd, shown, context)
            ptr = self._call(lib.bpf_program__attach_netns, fd)
            if ptr == ffi.NULL and ffi.errno == errno.E2BIG:
                raise AttachError(
                    errno.E2BIG, f"{shown} already has a program of this kind", context=context,
                    hint="a namespace takes one flow dissector (and at most 64 sk_lookup programs)",
                )  # fmt: skip
            ptr = check_ptr(ptr, context, AttachError)
        finally:
            if opened:
                os.close(fd)
        kind = "sk_lookup" if self.type == ProgramType.SK_LOOKUP else "flow dissector"
        return NetnsLink(ptr, self, description=f"{kind} '{self.name}' on netns {shown}", netns=shown)
