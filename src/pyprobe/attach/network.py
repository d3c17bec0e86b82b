"""Network attach kinds: XDP, tcx links and classic TC filters, netkit links, netfilter hooks.

Every attachment is made in the network namespace of the calling thread (an interface name or
ifindex is looked up there): to attach inside another namespace, enter it with ``setns`` first.
"""

from __future__ import annotations

import contextlib
import errno
import os
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Literal, overload

from pyprobe._ffi import ffi, lib
from pyprobe.attach._base import ProgramCore
from pyprobe.enums import AttachType, ProgramType
from pyprobe.errors import AttachError, BpfError, UnsupportedError, check_int, check_ptr
from pyprobe.link import Link, XdpLink, _AttachmentLink, _OwnedLink

if TYPE_CHECKING:
    from pyprobe.program import Program

__all__ = ["NetfilterLink", "NetkitLink", "NetworkAttach", "TcLink", "TcxLink"]

Direction = Literal["ingress", "egress"]
Mechanism = Literal["auto", "tcx", "tc"]

# uapi/linux/bpf.h: where a tcx or netkit link goes relative to another program or link
_BPF_F_BEFORE = 1 << 3
_BPF_F_AFTER = 1 << 4
_BPF_F_LINK = 1 << 13
_NETFILTER_PF = {"ipv4": 2, "ipv6": 10}  # NFPROTO_*
_NETFILTER_HOOKS = {"prerouting": 0, "local_in": 1, "forward": 2, "local_out": 3, "postrouting": 4}  # NF_INET_*
_NETFILTER_FLAGS = 1  # BPF_F_NETFILTER_IP_DEFRAG (Linux 6.6), the only flag


def _interface(interface: object, context: str) -> tuple[int, str]:
    """(ifindex, name) of an interface given by name or ifindex in the caller's network namespace."""
    import socket  # imported here: the other attach kinds do without it

    try:
        if isinstance(interface, str):
            return socket.if_nametoindex(interface), interface
        if isinstance(interface, int) and not isinstance(interface, bool):
            return interface, socket.if_indextoname(interface)
    except (OSError, ValueError, OverflowError):
        raise AttachError(errno.ENODEV, f"no network interface {interface!r}", context=context) from None
    raise TypeError(f"{context}: interface must be a name or an ifindex, not {type(interface).__name__}")


class _FdLink(_OwnedLink):
    """A kernel link (BPF_LINK_CREATE) owned as its file descriptor."""

    def __init__(self, fd: int, program: ProgramCore, *, description: str) -> None:
        self._link_fd = fd
        self._pinned: str | None = None
        super().__init__(lambda: os.close(fd), program, description=description)

    @property
    def fd(self) -> int:
        """The link's file descriptor (owned by the link)."""
        with self._guard:
            return self._link_fd

    def _info(self) -> Any:
        info = ffi.new("struct bpf_link_info *")
        size = ffi.new("__u32 *", ffi.sizeof("struct bpf_link_info"))
        with self._guard:
            check_int(lib.bpf_link_get_info_by_fd(self._link_fd, info, size), f"get info of {self.description}")
        return info

    @property
    def pin_path(self) -> str | None:
        """Where the link is pinned, or None."""
        return self._pinned

    def pin(self, path: str | os.PathLike[str]) -> None:
        """Pins the link on bpffs at ``path`` so that it outlives this process."""
        path = os.fspath(path)
        with self._guard:
            check_int(lib.bpf_obj_pin(self._link_fd, path.encode()), f"pin {self.description} at {path}")
        self._pinned = path

    def unpin(self) -> None:
        """Removes the pin file made by :meth:`pin`."""
        if self._pinned is None:
            raise BpfError(errno.ENOENT, "not pinned", context=f"unpin {self.description}")
        os.unlink(self._pinned)
        self._pinned = None


class TcxLink(_FdLink):
    """A tcx link (Linux 6.6): a SEC("tc"/"tcx/...") program on an interface's ingress or egress.

    ``ifindex``, ``interface`` (its name), ``direction`` ("ingress" or "egress"); ``mechanism`` is
    ``"tcx"`` (:class:`TcLink` is the classic TC filter :meth:`NetworkAttach.attach_tcx` falls back to).
    """

    mechanism = "tcx"

    def __init__(
        self, fd: int, program: ProgramCore, *, description: str, ifindex: int, interface: str, direction: Direction
    ) -> None:
        super().__init__(fd, program, description=description)
        self.ifindex = ifindex
        self.interface = interface
        self.direction = direction


class NetkitLink(_FdLink):
    """A netkit link (Linux 6.7): a program on a netkit device, for its ``peer`` side or its primary side.

    ``ifindex``, ``interface`` (the primary device), ``peer`` (bool); ``mechanism`` is ``"netkit"``.
    """

    mechanism = "netkit"

    def __init__(
        self, fd: int, program: ProgramCore, *, description: str, ifindex: int, interface: str, peer: bool
    ) -> None:
        super().__init__(fd, program, description=description)
        self.ifindex = ifindex
        self.interface = interface
        self.peer = peer


# Classic TC: clsact qdiscs this process created, by (netns, ifindex), with the number of filters of
# this process on them; the last filter to go removes the qdisc. A qdisc that was there before is
# never removed.
_qdiscs: dict[tuple[int, int, int], int] = {}
_qdiscs_lock = threading.RLock()  # reentrant: a finalizer may release a TcLink in the middle of an attach


def _netns() -> tuple[int, int, int]:
    """(the calling thread's netns fd, its device, its inode)."""
    fd = os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
    st = os.fstat(fd)
    return fd, st.st_dev, st.st_ino


class TcLink(_AttachmentLink):
    """A classic TC filter: a direct-action bpf filter on the interface's clsact qdisc.

    Made by :meth:`NetworkAttach.attach_tcx` where the kernel has no tcx links (before Linux 6.6) or
    with ``mechanism="tc"``. It is no kernel link (no fd, no id, no pin), but it has a Link's life
    cycle: close() removes the filter and, when pyprobe created the clsact qdisc for it and no other
    filter of this process is on it, the qdisc too (filters other programs added to a qdisc pyprobe
    created go with it). It is removed in the network namespace it was attached in.
    ``ifindex``, ``interface``, ``direction``, ``handle``, ``priority``, ``created_qdisc``;
    ``mechanism`` is ``"tc"``.
    """

    mechanism = "tc"

    def __init__(
        self, release: Callable[[], None], program: ProgramCore, *, description: str, ifindex: int, interface: str,
        direction: Direction, handle: int, priority: int, created_qdisc: bool,
    ) -> None:  # fmt: skip
        super().__init__(release, program, description=description)
        self.ifindex = ifindex
        self.interface = interface
        self.direction = direction
        self.handle = handle
        self.priority = priority
        self.created_qdisc = created_qdisc

    def _no_kernel_link(self, doing: str) -> UnsupportedError:
        return UnsupportedError(
            errno.EOPNOTSUPP, "a classic TC filter is no kernel link", context=f"{doing} {self.description}",
            hint="tcx links (Linux 6.6) have an fd, an id and can be pinned",
        )  # fmt: skip

    def __repr__(self) -> str:
        state = "detached" if self.closed else f"handle={self.handle:#x} priority={self.priority}"
        return f"<TcLink {self.description} {state}>"


class NetfilterLink(Link):
    """A netfilter hook (Linux 6.4): ``pf`` (2 IPv4, 10 IPv6), ``hooknum`` (NF_INET_*), ``priority``, ``flags``."""

    def __init__(
        self, ptr: Any, program: ProgramCore, *, description: str, pf: int, hooknum: int, priority: int, flags: int
    ) -> None:
        super().__init__(ptr, program, description=description)
        self.pf = pf
        self.hooknum = hooknum
        self.priority = priority
        self.flags = flags


def _tc_release(nsfd: int, key: tuple[int, int, int], egress: int, handle: int, priority: int) -> Callable[[], None]:
    def release() -> None:
        with _qdiscs_lock:
            users = _qdiscs.get(key, 0)
            last = users == 1
            if users:
                _qdiscs[key] = users - 1
                if last:
                    del _qdiscs[key]
            # An interface deleted meanwhile took its filters with it: errors are left unreported.
            lib.pyprobe_tc_detach(nsfd, key[2], egress, handle, priority, last)
        os.close(nsfd)

    return release


class NetworkAttach(ProgramCore):
    """The network ``attach_*`` methods of :class:`~pyprobe.Program`."""

    def attach_xdp(self, interface: str | int) -> XdpLink:
        """Attaches the XDP program to a network interface (a name like ``lo`` or an ifindex) as a link.

        Raises :class:`AttachError` (ENODEV) naming an unknown interface.
        Minimum kernel 5.9 for XDP links.
        """
        context = f"attach xdp program '{self.name}' to interface {interface!r}"
        self._require_kind("attach_xdp", (ProgramType.XDP,), 'a SEC("xdp") program', context)
        ifindex, ifname = _interface(interface, context)
        self._loaded_fd(context)
        ptr = check_ptr(self._call(lib.bpf_program__attach_xdp, ifindex), context, AttachError)
        return XdpLink(ptr, self, description=f"xdp on {ifname}", ifindex=ifindex, interface=ifname)

    # --- tc: tcx links, classic TC filters ------------------------------------------------------

    def _direction(self, direction: object, context: str) -> Direction:
        if direction is None:
            section = {AttachType.TCX_INGRESS: "ingress", AttachType.TCX_EGRESS: "egress"}
            found = section.get(self.attach_type)
            if found is None:
                raise ValueError(
                    f"{context}: SEC(\"{self.section}\") names no direction: give direction='ingress' or 'egress'"
                )
            return "ingress" if found == "ingress" else "egress"
        if direction not in ("ingress", "egress"):
            raise ValueError(f"{context}: direction must be 'ingress' or 'egress', not {direction!r}")
        return "ingress" if direction == "ingress" else "egress"

    @staticmethod
    def _relative(before: object, after: object, context: str) -> tuple[int, Any]:
        """(flags, the program or link) placing a tcx or netkit link before or after another one."""
        if before is not None and after is not None:
            raise ValueError(f"{context}: give before= or after=, not both")
        other, flag = (before, _BPF_F_BEFORE) if before is not None else (after, _BPF_F_AFTER)
        if other is None:
            return 0, None
        if isinstance(other, (TcxLink, NetkitLink)):
            return flag | _BPF_F_LINK, other
        if isinstance(other, NetworkAttach):
            return flag, other
        shown = type(other).__name__
        raise TypeError(f"{context}: before/after must be a Program or a TcxLink/NetkitLink, not {shown}")

    def _link_create(self, ifindex: int, atype: AttachType, flags: int, other: Any, context: str) -> int:
        """BPF_LINK_CREATE on ``ifindex``; the program and ``other`` are held open (guards) meanwhile."""
        with contextlib.ExitStack() as held:
            held.enter_context(self._object._guard)
            relative = 0
            if isinstance(other, NetworkAttach):
                held.enter_context(other._object._guard)
                relative = other._loaded_fd(context)
            elif other is not None:
                held.enter_context(other._guard)
                relative = other._link_fd
            fd = int(lib.pyprobe_link_create_ifindex(self._loaded_fd(context), ifindex, int(atype), flags, relative, 0))
        return fd

    @overload
    def attach_tcx(
        self,
        interface: str | int,
        direction: Direction | None = None,
        *,
        before: None = None,
        after: None = None,
        mechanism: Literal["tc"],
        priority: int = 0,
        handle: int = 0,
    ) -> TcLink: ...
    @overload
    def attach_tcx(
        self,
        interface: str | int,
        direction: Direction | None = None,
        *,
        before: Program | Link | None = None,
        after: Program | Link | None = None,
        mechanism: Literal["tcx"],
    ) -> TcxLink: ...
    @overload
    def attach_tcx(
        self,
        interface: str | int,
        direction: Direction | None = None,
        *,
        before: Program | Link | None = None,
        after: Program | Link | None = None,
        mechanism: Mechanism = "auto",
        priority: int = 0,
        handle: int = 0,
    ) -> TcxLink | TcLink: ...
    def attach_tcx(
        self,
        interface: str | int,
        direction: Direction | None = None,
        *,
        before: Program | Link | None = None,
        after: Program | Link | None = None,
        mechanism: Mechanism = "auto",
        priority: int = 0,
        handle: int = 0,
    ) -> TcxLink | TcLink:
        """Attaches a SEC("tcx/ingress"), SEC("tcx/egress"), SEC("tc") or SEC("classifier") program to an
        interface (name or ifindex) on its ``ingress`` or ``egress`` path.

        ``direction`` defaults to the one the section names (``tcx/ingress``); SEC("tc") programs need it.
        Where the kernel has tcx links (Linux 6.6) it makes one (:class:`TcxLink`), placed ``before``
        or ``after`` another program or tcx link on the same hook (default: last); elsewhere, or
        with ``mechanism="tc"``, a classic TC filter (Linux 4.1): a direct-action bpf filter on the
        clsact qdisc, created when missing, at ``priority`` and ``handle`` (0: the kernel picks),
        owned by a :class:`TcLink` (see there for what its close() removes). ``mechanism="tcx"``
        refuses the fallback. The program's return value is the verdict: TC_ACT_OK / TCX_PASS (0),
        TC_ACT_SHOT / TCX_DROP (2), TCX_NEXT (-1: the next program decides).

        Raises :class:`AttachError` (ENODEV) naming an unknown interface, AttachError (EINVAL) for
        another program type, ValueError / TypeError for bad arguments, :class:`UnsupportedError`
        with the reason where the kernel has neither (or not the asked ``mechanism``). Blocks for a
        netlink round trip (classic TC) or one system call (tcx).
        """
        context = f"attach tc program '{self.name}' to interface {interface!r}"
        self._require_kind(
            "attach_tcx", (ProgramType.SCHED_CLS,), 'a SEC("tcx/ingress"), SEC("tcx/egress") or SEC("tc") program',
            context,
        )  # fmt: skip
        where = self._direction(direction, context)
        if mechanism not in ("auto", "tcx", "tc"):
            raise ValueError(f"{context}: mechanism must be 'auto', 'tcx' or 'tc', not {mechanism!r}")
        flags, relative = self._relative(before, after, context)
        from pyprobe import features

        if mechanism == "tcx" or (mechanism == "auto" and (flags or features.available("tcx"))):
            features.require("tcx", context)
            if priority or handle:
                raise ValueError(f"{context}: priority and handle are classic TC's; tcx orders by before=/after=")
            ifindex, ifname = _interface(interface, context)
            atype = AttachType.TCX_INGRESS if where == "ingress" else AttachType.TCX_EGRESS
            fd = self._link_create(ifindex, atype, flags, relative, context)
            check_int(fd, context, AttachError)
            return TcxLink(
                fd, self, description=f"tcx {where} on {ifname}", ifindex=ifindex, interface=ifname, direction=where
            )
        if flags:
            raise ValueError(f"{context}: before=/after= need tcx links, not classic TC filters")
        self._check_int_arg(priority, "priority", 0, 0xFFFF, context)
        self._check_int_arg(handle, "handle", 0, 0xFFFFFFFF, context)
        features.require("tc", context)
        return self._attach_tc(interface, where, priority, handle, context)

    def _attach_tc(self, interface: str | int, where: Direction, priority: int, handle: int, context: str) -> TcLink:
        ifindex, ifname = _interface(interface, context)
        egress = int(where == "egress")
        created, out_handle, out_priority = ffi.new("int *"), ffi.new("__u32 *"), ffi.new("__u32 *")
        nsfd, dev, ino = _netns()
        key = (dev, ino, ifindex)
        try:
            with _qdiscs_lock:
                with self._object._guard:
                    ret = lib.pyprobe_tc_attach(
                        ifindex, egress, self._loaded_fd(context), handle, priority, created, out_handle, out_priority
                    )
                check_int(ret, context, AttachError)
                if created[0]:
                    _qdiscs[key] = 1  # a qdisc of the same key in the table was removed by someone else
                elif key in _qdiscs:
                    _qdiscs[key] += 1
        except BaseException:
            os.close(nsfd)
            raise
        release = _tc_release(nsfd, key, egress, int(out_handle[0]), int(out_priority[0]))
        return TcLink(
            release, self, description=f"classic tc (clsact) {where} filter on {ifname}", ifindex=ifindex,
            interface=ifname, direction=where, handle=int(out_handle[0]), priority=int(out_priority[0]),
            created_qdisc=bool(created[0]),
        )  # fmt: skip

    def attach_netkit(
        self,
        interface: str | int,
        *,
        peer: bool = False,
        before: Program | Link | None = None,
        after: Program | Link | None = None,
    ) -> NetkitLink:
        """Attaches a SEC("netkit/primary"), SEC("netkit/peer") or SEC("tc") program to a netkit device
        (Linux 6.7): to the traffic its ``peer`` sends (``peer=True``) or its primary side sends.

        ``interface`` is the netkit device of this namespace (the primary one), ``before``/``after``
        place it as in :meth:`attach_tcx`. Raises :class:`AttachError` (ENODEV) naming an unknown
        interface (ENXIO for one that is no netkit primary device), :class:`UnsupportedError` with
        the reason where the kernel lacks netkit (CONFIG_NETKIT).
        """
        context = f"attach netkit program '{self.name}' to interface {interface!r}"
        self._require_kind(
            "attach_netkit", (ProgramType.SCHED_CLS,), 'a SEC("netkit/...") or SEC("tc") program', context
        )
        flags, relative = self._relative(before, after, context)
        from pyprobe import features

        features.require("netkit", context)
        ifindex, ifname = _interface(interface, context)
        atype = AttachType.NETKIT_PEER if peer else AttachType.NETKIT_PRIMARY
        fd = self._link_create(ifindex, atype, flags, relative, context)
        hint = f"'{ifname}' must be the primary device of a netkit pair" if fd == -errno.ENXIO else ""
        check_int(fd, context, AttachError, hint=hint)
        side = "peer" if peer else "primary"
        return NetkitLink(
            fd, self, description=f"netkit {side} on {ifname}", ifindex=ifindex, interface=ifname, peer=peer
        )

    # --- netfilter --------------------------------------------------------------------------------

    def attach_netfilter(
        self, *, pf: int | str = "ipv4", hooknum: int | str, priority: int, flags: int = 0
    ) -> NetfilterLink:
        """Attaches a SEC("netfilter") program to a netfilter hook of the caller's network namespace.

        ``pf``: "ipv4" / "ipv6" (or NFPROTO_IPV4 = 2, NFPROTO_IPV6 = 10); ``hooknum``: "prerouting",
        "local_in", "forward", "local_out", "postrouting" (or NF_INET_* 0..4); ``priority``: the
        hook's order among netfilter's (iptables' filter table is at 0; the kernel refuses INT_MIN
        and INT_MAX); ``flags``: 1 = BPF_F_NETFILTER_IP_DEFRAG (Linux 6.6, defragmented packets).
        The program returns NF_DROP (0) or NF_ACCEPT (1). Minimum kernel 6.4. Raises ValueError for
        bad arguments, :class:`UnsupportedError` with the reason where the kernel lacks netfilter
        links (CONFIG_NETFILTER_BPF_LINK), AttachError when the kernel refuses the hook (EBUSY: a
        netfilter link of the same priority is there already).
        """
        context = f"attach netfilter program '{self.name}'"
        self._require_kind("attach_netfilter", (ProgramType.NETFILTER,), 'a SEC("netfilter") program', context)
        pf_value = _NETFILTER_PF.get(pf, 0) if isinstance(pf, str) else pf
        if pf_value not in _NETFILTER_PF.values() or isinstance(pf_value, bool):
            raise ValueError(f"{context}: pf must be 'ipv4', 'ipv6', 2 or 10, not {pf!r}")
        hook = _NETFILTER_HOOKS.get(hooknum) if isinstance(hooknum, str) else hooknum
        if not isinstance(hook, int) or isinstance(hook, bool) or not 0 <= hook < len(_NETFILTER_HOOKS):
            raise ValueError(
                f"{context}: hooknum must be one of {', '.join(_NETFILTER_HOOKS)} or 0..4, not {hooknum!r}"
            )
        self._check_int_arg(priority, "priority", -(2**31), 2**31 - 1, context)
        self._check_int_arg(flags, "flags", 0, _NETFILTER_FLAGS, context)
        names = {v: k for k, v in _NETFILTER_HOOKS.items()}
        context = f"{context} to {'ipv4' if pf_value == 2 else 'ipv6'} {names[hook]} at priority {priority}"
        from pyprobe import features

        features.require("netfilter", context)
        opts = ffi.new("struct bpf_netfilter_opts *")
        opts.sz = ffi.sizeof("struct bpf_netfilter_opts")
        opts.pf, opts.hooknum, opts.priority, opts.flags = pf_value, hook, priority, flags
        self._loaded_fd(context)
        ptr = check_ptr(self._call(lib.bpf_program__attach_netfilter, opts), context, AttachError)
        where = f"{'ipv4' if pf_value == 2 else 'ipv6'} {names[hook]}"
        return NetfilterLink(
            ptr, self, description=f"netfilter {where} priority {priority}", pf=pf_value, hooknum=hook,
            priority=priority, flags=flags,
        )  # fmt: skip
