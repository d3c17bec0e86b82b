"""Maps of network programs: LPM tries keyed by IP networks, and the XDP redirect maps.

- :class:`LpmTrieMap` (BPF_MAP_TYPE_LPM_TRIE, Linux 4.11): keys are ``ipaddress`` networks
  (or addresses, or ``(prefixlen, bytes)``); lookups are longest-prefix matches.
- :class:`DevMap` / :class:`DevMapHash` (Linux 4.14 / 5.4): values are interfaces (ifindex or name),
  the targets of ``bpf_redirect_map`` in XDP programs.
- :class:`CpuMap` (Linux 4.15): keys are CPUs, values queue sizes.
- :class:`XskMap` (Linux 4.18): slots of AF_XDP sockets.
"""

from __future__ import annotations

import ctypes
import errno
import ipaddress
import socket
import struct
from typing import Any, TypeVar, Union, cast, overload

from pyprobe.enums import MapType
from pyprobe.errors import MapError, UnsupportedError
from pyprobe.maps._base import Map, UpdateFlags
from pyprobe.maps._codec import Codec
from pyprobe.maps._kinds import KeyValueMap

__all__ = ["CpuMap", "DevMap", "DevMapHash", "LpmTrieMap", "XskMap"]

V = TypeVar("V")

IPNetwork = Union[ipaddress.IPv4Network, ipaddress.IPv6Network]  # noqa: UP007 - a runtime alias
PrefixKey = Union[  # noqa: UP007 - a runtime alias
    ipaddress.IPv4Network, ipaddress.IPv6Network, ipaddress.IPv4Address, ipaddress.IPv6Address, str,
    tuple[int, bytes], bytes,
]  # fmt: skip
"""What an LPM trie takes as a key: a network, an address (a full-length prefix), a string, (prefixlen, data)."""
D = TypeVar("D")
_PREFIX = struct.Struct("=I")  # the kernel's struct bpf_lpm_trie_key: a host-order u32 prefixlen, then data


class _PrefixCodec(Codec):
    """Keys of an LPM trie: ``struct { __u32 prefixlen; __u8 data[N]; }``.

    Encodes IPv4 networks and addresses (N = 4), IPv6 ones (N = 16), strings ``ipaddress`` parses,
    ``(prefixlen, bytes)`` of any N, the key struct BTF gives and raw bytes; decodes to networks
    (N = 4 or 16) or ``(prefixlen, bytes)`` tuples.
    """

    def __init__(self, inner: Codec) -> None:
        self.inner = inner
        self.what = inner.what
        self.size = inner.size
        self.ctype = inner.ctype
        self.kind = "prefix"
        self.data_len = inner.size - 4
        self.version = {4: 4, 16: 6}.get(self.data_len)

    @property
    def python_type(self) -> Any:
        if self.version == 4:
            return ipaddress.IPv4Network
        return ipaddress.IPv6Network if self.version == 6 else tuple

    def encode(self, value: Any) -> bytes:
        if isinstance(value, str):
            try:
                value = ipaddress.ip_network(value, strict=False)
            except ValueError:
                raise ValueError(f"{self.what}: {value!r} is no IP network or address") from None
        if isinstance(value, (ipaddress.IPv4Address, ipaddress.IPv6Address)):
            value = ipaddress.ip_network(value)
        if isinstance(value, (ipaddress.IPv4Network, ipaddress.IPv6Network)):
            if value.version != self.version:
                want = f"IPv{self.version}" if self.version else f"(prefixlen, {self.data_len} bytes)"
                raise ValueError(f"{self.what} must be an {want} key, not IPv{value.version} {value}")
            return _PREFIX.pack(value.prefixlen) + value.network_address.packed
        if isinstance(value, tuple):
            if len(value) != 2 or not isinstance(value[0], int) or not isinstance(value[1], (bytes, bytearray)):
                raise TypeError(f"{self.what} as a tuple must be (prefixlen, bytes), not {value!r}")
            prefixlen, data = value
            if len(data) != self.data_len:
                raise ValueError(
                    f"{self.what}: the data of (prefixlen, data) must be {self.data_len} bytes, not {len(data)}"
                )
            if not 0 <= prefixlen <= 8 * self.data_len:
                raise ValueError(f"{self.what}: prefixlen {prefixlen} is out of range 0..{8 * self.data_len}")
            return _PREFIX.pack(prefixlen) + bytes(data)
        if isinstance(value, (bytes, bytearray, memoryview)) or self.inner.kind == "struct":
            return self.inner.encode(value)
        raise TypeError(
            f"{self.what} must be an IP network or address, (prefixlen, bytes) or {self.size} raw bytes, "
            f"not {type(value).__name__}"
        )

    def decode(self, raw: Any) -> Any:
        raw = bytes(raw[: self.size])
        prefixlen = _PREFIX.unpack_from(raw)[0]
        data = raw[4:]
        if self.version == 4 and prefixlen <= 32:
            return ipaddress.IPv4Network((data, prefixlen), strict=False)
        if self.version == 6 and prefixlen <= 128:
            return ipaddress.IPv6Network((data, prefixlen), strict=False)
        return (prefixlen, data)

    def _decode_many(self, blob: Any, count: int, stride: int) -> list[Any]:
        raw = memoryview(blob).tobytes()
        return [self.decode(raw[i * stride : i * stride + self.size]) for i in range(count)]


class LpmTrieMap(KeyValueMap[IPNetwork, V]):
    """BPF_MAP_TYPE_LPM_TRIE (Linux 4.11) keyed by IP networks (``ipaddress``).

    A key is an ``IPv4Network`` / ``IPv6Network`` (per the map's key size: 4 + 4 or 4 + 16 bytes),
    an address (a full-length prefix), a string ``ipaddress`` parses (``"10.0.0.0/8"``), a
    ``(prefixlen, bytes)`` tuple, or raw bytes. ``m[net] = v`` stores a prefix; ``m[key]``,
    :meth:`lookup`, :meth:`get` and ``key in m`` are the kernel's longest-prefix match (the value of
    the longest stored prefix that contains the address or network); ``del m[net]`` removes that
    exact prefix. Iteration yields the stored networks. ``Map.create("lpm_trie", key_size=8,
    value_size=..., max_entries=..., flags=1)``: the kernel wants BPF_F_NO_PREALLOC (1).
    """

    def _make_codecs(self) -> tuple[Codec, Codec]:
        key, value = super()._make_codecs()
        return _PrefixCodec(key), value

    # The key methods take any PrefixKey (iteration yields networks).
    @overload
    def lookup(self, key: PrefixKey, default: None = None) -> V | None: ...
    @overload
    def lookup(self, key: PrefixKey, default: V) -> V: ...
    @overload
    def lookup(self, key: PrefixKey, default: D) -> V | D: ...
    def lookup(self, key: PrefixKey, default: Any = None) -> Any:
        """The value of the longest stored prefix holding ``key`` (an address or network), or ``default``."""
        return super().lookup(cast(Any, key), default)

    @overload
    def get(self, key: PrefixKey, default: None = None) -> V | None: ...
    @overload
    def get(self, key: PrefixKey, default: V) -> V: ...
    @overload
    def get(self, key: PrefixKey, default: D) -> V | D: ...
    def get(self, key: PrefixKey, default: Any = None) -> Any:
        """Same as :meth:`lookup`."""
        return super().lookup(cast(Any, key), default)

    def __getitem__(self, key: PrefixKey) -> V:
        """The value of the longest stored prefix holding ``key``; KeyNotFoundError when none does."""
        return super().__getitem__(cast(Any, key))

    def __contains__(self, key: PrefixKey) -> bool:
        """Whether a stored prefix holds ``key``."""
        return super().__contains__(cast(Any, key))

    def update(self, key: PrefixKey, value: V, flags: UpdateFlags | int = UpdateFlags.ANY) -> None:
        """Stores ``value`` for the prefix ``key`` (flags as in :meth:`KeyValueMap.update`)."""
        super().update(cast(Any, key), value, flags)

    def __setitem__(self, key: PrefixKey, value: V) -> None:
        super().update(cast(Any, key), value)

    def delete(self, key: PrefixKey) -> None:
        """Removes exactly the prefix ``key``; KeyNotFoundError when it is not stored."""
        super().delete(cast(Any, key))

    def __delitem__(self, key: PrefixKey) -> None:
        super().delete(cast(Any, key))


class _U32Codec(Codec):
    """A u32 value (ifindex, queue size) with an optional second u32 (a program fd in, its id out)."""

    def __init__(self, inner: Codec, what_value: str) -> None:
        self.inner = inner
        self.what = inner.what
        self.size = inner.size
        self.ctype = None
        self.kind = "u32-first"
        self.what_value = what_value

    @property
    def python_type(self) -> Any:
        return int

    def _first(self, value: Any) -> int:
        if isinstance(value, int) and not isinstance(value, bool):
            if not 0 <= value < 1 << 32:
                raise ValueError(f"{self.what}: {self.what_value} {value} does not fit in a u32")
            return value
        raise TypeError(f"{self.what} must be {self.what_value} (an int), not {type(value).__name__}")

    def encode(self, value: Any) -> bytes:
        if isinstance(value, (bytes, bytearray, memoryview)):
            return self.inner.encode(value)
        program: Any = None
        if isinstance(value, tuple) and len(value) == 2:
            value, program = value
        raw = struct.pack("=I", self._first(value))
        if self.size >= 8:
            fd: Any = 0
            if program is not None:
                fd = (
                    program
                    if isinstance(program, int) and not isinstance(program, bool)
                    else getattr(program, "fd", None)
                )
                if not isinstance(fd, int) or fd < 0:
                    raise TypeError(
                        f"{self.what}: the program must be a loaded Program or a program fd, not {program!r}"
                    )
            raw += struct.pack("=i", fd) + b"\0" * (self.size - 8)
        elif program is not None:
            raise ValueError(f"{self.what} is {self.size} bytes: it has no room for a program (8-byte values do)")
        return raw

    def decode(self, raw: Any) -> Any:
        return struct.unpack_from("=I", bytes(raw[:4]))[0]

    def _decode_many(self, blob: Any, count: int, stride: int) -> list[Any]:
        raw = memoryview(blob).tobytes()
        return [self.decode(raw[i * stride : i * stride + 4]) for i in range(count)]


class _IfindexCodec(_U32Codec):
    """An interface as an ifindex; a name is looked up in the caller's network namespace."""

    def _first(self, value: Any) -> int:
        if isinstance(value, str):
            try:
                return socket.if_nametoindex(value)
            except OSError:
                raise MapError(errno.ENODEV, f"no network interface {value!r}", context=self.what) from None
        return super()._first(value)


class _U32KeyMixin(Map):
    def _make_codecs(self) -> tuple[Codec, Codec]:
        what = f"map '{self.name}'"
        key = Codec(ctypes.c_uint32 if self.key_size == 4 else None, self.key_size, f"key of {what}")
        value = Codec(None, self.value_size, f"value of {what}")
        return key, self._value_codec(value)

    def _value_codec(self, inner: Codec) -> Codec:
        return _U32Codec(inner, "a u32")

    def program_id(self, key: int) -> int:
        """The id of the program run on the entry ``key`` (0: none; 8-byte values, Linux 5.8+)."""
        raw = self._lookup_raw(self._codec[0].encode(key))
        if raw is None:
            raise self._missing(repr(key))
        return struct.unpack_from("=I", raw, 4)[0] if len(raw) >= 8 else 0


DevTarget = Union[int, str, tuple[Union[int, str], Any]]  # noqa: UP007 - a runtime alias
"""What a devmap entry takes: an interface (ifindex or name), or (interface, Program or program fd)."""
CpuTarget = Union[int, tuple[int, Any]]  # noqa: UP007 - a runtime alias
"""What a cpumap entry takes: a queue size, or (queue size, Program or program fd)."""


class DevMap(_U32KeyMixin, KeyValueMap[int, int]):
    """BPF_MAP_TYPE_DEVMAP (Linux 4.14): slot -> interface, the targets of ``bpf_redirect_map``.

    ``m[i] = "veth1"`` (a name, looked up in the caller's network namespace) or an ifindex;
    ``m[i] = (interface, program)`` also runs a SEC("xdp/devmap") program on the frames sent
    there (8-byte values, Linux 5.8+). ``m[i]`` reads the ifindex, :meth:`program_id` the program.
    An unknown name raises MapError (ENODEV) naming it.
    """

    def _value_codec(self, inner: Codec) -> Codec:
        return _IfindexCodec(inner, "an interface (ifindex or name)")

    def update(self, key: int, value: DevTarget, flags: UpdateFlags | int = UpdateFlags.ANY) -> None:
        """Sends slot ``key``'s frames to ``value``: an interface, or (interface, program); flags as for any map."""
        super().update(key, cast(Any, value), flags)

    def __setitem__(self, key: int, value: DevTarget) -> None:
        self.update(key, value)


class DevMapHash(DevMap):
    """BPF_MAP_TYPE_DEVMAP_HASH (Linux 5.4): as :class:`DevMap`, with any u32 as key (e.g. the ifindex)."""


class CpuMap(_U32KeyMixin, KeyValueMap[int, int]):
    """BPF_MAP_TYPE_CPUMAP (Linux 4.15): CPU -> queue size, the targets of ``bpf_redirect_map``.

    ``m[cpu] = qsize`` starts the CPU's kthread with a queue of that many frames;
    ``m[cpu] = (qsize, program)`` also runs a SEC("xdp/cpumap") program there (8-byte values, Linux
    5.9+); ``del m[cpu]`` stops it.
    """

    def _value_codec(self, inner: Codec) -> Codec:
        return _U32Codec(inner, "a queue size")

    def update(self, key: int, value: CpuTarget, flags: UpdateFlags | int = UpdateFlags.ANY) -> None:
        """Gives CPU ``key`` a queue of ``value`` frames (or (qsize, program)); flags as for any map."""
        super().update(key, cast(Any, value), flags)

    def __setitem__(self, key: int, value: CpuTarget) -> None:
        self.update(key, value)


class XskMap(Map):
    """BPF_MAP_TYPE_XSKMAP (Linux 4.18): slots of AF_XDP sockets, the targets of ``bpf_redirect_map``.

    ``m[i] = sock`` (a socket object or its fd; it must be a bound AF_XDP socket), ``del m[i]``.
    The kernel does not give the sockets back to user space: there is no ``m[i]``.
    """

    def _index(self, index: Any) -> bytes:
        if not isinstance(index, int) or isinstance(index, bool):
            raise TypeError(f"index of map '{self.name}' must be an int, not {type(index).__name__}")
        if not 0 <= index < self.max_entries:
            raise ValueError(f"index {index} of map '{self.name}' is out of range 0..{self.max_entries - 1}")
        return struct.pack("=I", index)

    def __setitem__(self, index: int, sock: Any) -> None:
        key = self._index(index)
        fd = sock if isinstance(sock, int) and not isinstance(sock, bool) else getattr(sock, "fileno", lambda: None)()
        if not isinstance(fd, int) or not 0 <= fd < 1 << 31:
            raise TypeError(f"map '{self.name}' holds AF_XDP sockets (a socket or its fd), not {sock!r}")
        try:
            self._update_raw(key, struct.pack("=I", fd), 0, str(index))
        except UnsupportedError as exc:
            raise MapError(
                errno.EOPNOTSUPP, f"fd {fd} is no AF_XDP socket", context=f"update map '{self.name}' at key {index}"
            ) from exc

    def __delitem__(self, index: int) -> None:
        self._delete_raw(self._index(index), str(index))


Map._classes.update(
    {
        MapType.LPM_TRIE: LpmTrieMap,
        MapType.DEVMAP: DevMap,
        MapType.DEVMAP_HASH: DevMapHash,
        MapType.CPUMAP: CpuMap,
        MapType.XSKMAP: XskMap,
    }
)
