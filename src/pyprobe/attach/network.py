"""Network attach kinds: XDP."""

from __future__ import annotations

import errno

from pyprobe._ffi import lib
from pyprobe.attach._base import ProgramCore
from pyprobe.enums import ProgramType
from pyprobe.errors import AttachError, check_ptr
from pyprobe.link import (
    XdpLink,
)

__all__ = ["NetworkAttach"]


class NetworkAttach(ProgramCore):
    """The network ``attach_*`` methods of :class:`~pyprobe.Program`."""

    def attach_xdp(self, interface: str | int) -> XdpLink:
        """Attaches the XDP program to a network interface (a name like ``lo`` or an ifindex) as a link.

        Raises :class:`AttachError` (ENODEV) naming an unknown interface.
        Minimum kernel 5.9 for XDP links.
        """
        context = f"attach xdp program '{self.name}' to interface {interface!r}"
        self._require_kind("attach_xdp", (ProgramType.XDP,), 'a SEC("xdp") program', context)
        import socket  # imported here: the other attach kinds do without it

        try:
            if isinstance(interface, str):
                ifindex, ifname = socket.if_nametoindex(interface), interface
            elif isinstance(interface, int) and not isinstance(interface, bool):
                ifindex, ifname = interface, socket.if_indextoname(interface)
            else:
                raise TypeError(f"{context}: interface must be a name or an ifindex, not {type(interface).__name__}")
        except OSError:
            raise AttachError(errno.ENODEV, f"no network interface {interface!r}", context=context) from None
        self._loaded_fd(context)
        ptr = check_ptr(self._call(lib.bpf_program__attach_xdp, ifindex), context, AttachError)
        return XdpLink(ptr, self, description=f"xdp on {ifname}", ifindex=ifindex, interface=ifname)
