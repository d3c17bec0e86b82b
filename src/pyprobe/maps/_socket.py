"""Maps whose values are sockets: sockmap, sockhash and the SO_REUSEPORT socket array.

A socket goes in as a Python socket object (anything with ``fileno()``) or an fd; the kernel keeps a
reference to the socket itself, not to the fd, so the caller may close its socket afterwards (the
socket then leaves the map when its last reference in the kernel goes). Reading a slot gives the
socket's cookie (``SO_COOKIE``, the kernel's unique id of a socket), compared with
:func:`socket_cookie`; the kernel answers with the cookie only for maps whose value is 8 bytes
(``__type(value, __u64)``).
"""

from __future__ import annotations

import errno
import socket
from collections.abc import Iterator
from typing import Any, Protocol

from pyprobe._ffi import ffi, lib
from pyprobe.enums import MapType
from pyprobe.errors import MapError, check_int
from pyprobe.maps._base import U32_MAX, U64_MAX, Map, UpdateFlags

__all__ = ["ReuseportSockArrayMap", "SockHashMap", "SockMap", "SocketLike", "socket_cookie"]

_SO_COOKIE = 57  # Linux 4.12
_FD_MAX = (1 << 31) - 1


class SocketLike(Protocol):
    """Anything with a socket's ``fileno()``: :class:`socket.socket`, asyncio transports' sockets..."""

    def fileno(self) -> int: ...


def socket_fd(sock: SocketLike | int, what: str) -> int:
    """The fd of a socket object or an fd; TypeError/ValueError naming ``what`` otherwise."""
    if isinstance(sock, bool) or (not isinstance(sock, int) and not callable(getattr(sock, "fileno", None))):
        raise TypeError(f"{what} must be a socket (an object with fileno()) or an fd, not {type(sock).__name__}")
    fd = sock if isinstance(sock, int) else sock.fileno()
    if not isinstance(fd, int) or not 0 <= fd <= _FD_MAX:
        raise ValueError(f"{what} has no valid fd ({fd!r}): is the socket closed?")
    return fd


def socket_cookie(sock: SocketLike | int) -> int:
    """The kernel's cookie of a socket (``SO_COOKIE``, Linux 4.12): what reading a socket map's slot gives.

    Raises OSError when ``sock`` is not an open socket.
    """
    fd = socket_fd(sock, "socket_cookie's argument")
    with socket.socket(fileno=fd) as s:
        try:
            raw = s.getsockopt(socket.SOL_SOCKET, _SO_COOKIE, 8)
        finally:
            s.detach()  # the fd stays the caller's
    return int.from_bytes(raw, "little")


class _SocketValues(Map):
    """The shared face of maps whose values are sockets: ``m[key] = sock``, ``m[key]`` is its cookie."""

    def _key(self, key: Any) -> bytes:
        raise NotImplementedError

    def _shown(self, key: Any) -> str:
        return repr(key)

    def _value(self, sock: SocketLike | int) -> bytes:
        fd = socket_fd(sock, f"value for map '{self.name}'")
        size = self.value_size
        if size not in (4, 8):
            raise MapError(
                errno.EINVAL, f"the map's values are {size} bytes; socket maps hold 4 or 8",
                context=f"update map '{self.name}'",
            )  # fmt: skip
        return fd.to_bytes(size, "little")

    def update(self, key: Any, sock: SocketLike | int, flags: UpdateFlags | int = UpdateFlags.ANY) -> None:
        """Puts socket ``sock`` (a socket object or fd) at ``key``.

        The kernel takes TCP sockets that are established (or listening, Linux 5.10 for
        sockmap/sockhash), UDP sockets (5.7) and unix sockets (5.15); it answers EOPNOTSUPP
        for other states, raised as :class:`~pyprobe.UnsupportedError`. Programs attached to a
        sockmap or sockhash apply to the sockets added after the attach.
        """
        if isinstance(flags, bool) or not isinstance(flags, int) or not 0 <= flags <= U64_MAX:
            raise self._bad_flags(flags)
        self._update_raw(self._key(key), self._value(sock), int(flags), self._shown(key))

    def __setitem__(self, key: Any, sock: SocketLike | int) -> None:
        self.update(key, sock)

    def _cookie(self, key: Any) -> int | None:
        raw_key = self._key(key)
        size = self.value_size
        value = ffi.new("char[]", max(size, 8))
        context = f"lookup in map '{self.name}'"
        with self._guard:
            ret = lib.bpf_map_lookup_elem(self._loaded_fd(context), raw_key, value)
        if ret == -errno.ENOENT:
            return None
        hint = "the kernel gives socket cookies only for 8-byte values: declare __type(value, __u64)"
        check_int(ret, f"{context} at key {self._shown(key)}", MapError, hint=hint if ret == -errno.ENOSPC else "")
        return int.from_bytes(bytes(ffi.buffer(value, size)), "little")

    def __getitem__(self, key: Any) -> int:
        """The cookie of the socket at ``key`` (see :func:`socket_cookie`); KeyNotFoundError when empty."""
        cookie = self._cookie(key)
        if cookie is None:
            raise self._missing(self._shown(key))
        return cookie

    def get(self, key: Any, default: int | None = None) -> int | None:
        """The cookie of the socket at ``key``, or ``default`` when the slot is empty."""
        cookie = self._cookie(key)
        return default if cookie is None else cookie

    def __delitem__(self, key: Any) -> None:
        self._delete_raw(self._key(key), self._shown(key))

    def __contains__(self, key: Any) -> bool:
        return self._cookie(key) is not None

    def _decode_key(self, raw: bytes) -> Any:
        raise NotImplementedError

    def __iter__(self) -> Iterator[Any]:
        """The keys that hold a socket."""
        for raw in self._raw_keys():
            yield self._decode_key(raw)

    def keys(self) -> list[Any]:
        """The keys that hold a socket, as a list."""
        return list(self)


class _IndexedSockets(_SocketValues):
    def _key(self, key: Any) -> bytes:
        if isinstance(key, bool) or not isinstance(key, int):
            raise TypeError(f"index of map '{self.name}' must be an int, not {type(key).__name__}")
        if not 0 <= key < min(self.max_entries, U32_MAX + 1):
            raise ValueError(f"index {key} of map '{self.name}' is out of range 0..{self.max_entries - 1}")
        return key.to_bytes(4, "little")

    def _decode_key(self, raw: bytes) -> int:
        return int.from_bytes(raw[:4], "little")

    def __iter__(self) -> Iterator[int]:
        """The indices that hold a socket (the kernel walks every index: the empty ones are left out)."""
        for raw in self._raw_keys():
            index = self._decode_key(raw)
            if self._cookie(index) is not None:
                yield index

    def __getitem__(self, key: int) -> int:
        return super().__getitem__(key)

    def __delitem__(self, key: int) -> None:
        raw = self._key(key)
        with self._guard:
            ret = lib.bpf_map_delete_elem(self._loaded_fd(f"delete from map '{self.name}'"), raw)
        if ret in (-errno.EINVAL, -errno.ENOENT):  # the kernel's answer for an empty slot
            raise self._missing(self._shown(key), "delete from")
        check_int(ret, f"delete key {self._shown(key)} from map '{self.name}'", MapError)


class SockMap(_IndexedSockets):
    """BPF_MAP_TYPE_SOCKMAP (Linux 4.14): sockets by index, for sk_msg / sk_skb redirects and sk_lookup.

    ``m[i] = sock`` (a socket object or fd), ``m[i]`` the socket's cookie, ``del m[i]``. Attach
    sk_msg and sk_skb programs to it with :meth:`Program.attach_sockmap`.
    """


class ReuseportSockArrayMap(_IndexedSockets):
    """BPF_MAP_TYPE_REUSEPORT_SOCKARRAY (Linux 4.19): the sockets of one SO_REUSEPORT group by index,
    for ``bpf_sk_select_reuseport`` in a SEC("sk_reuseport") program.

    The sockets must be bound (or listening, for TCP) with SO_REUSEPORT, all in the same group.
    """


class SockHashMap(_SocketValues):
    """BPF_MAP_TYPE_SOCKHASH (Linux 4.18): sockets by a key of the map's key type (from its BTF).

    ``m[key] = sock`` (a socket object or fd), ``m[key]`` the socket's cookie, ``del m[key]``.
    """

    def _key(self, key: Any) -> bytes:
        return self._codec[0].encode(key)

    def _decode_key(self, raw: bytes) -> Any:
        return self._codec[0].decode(raw)


Map._classes.update(
    {
        MapType.SOCKMAP: SockMap,
        MapType.SOCKHASH: SockHashMap,
        MapType.REUSEPORT_SOCKARRAY: ReuseportSockArrayMap,
    }
)
