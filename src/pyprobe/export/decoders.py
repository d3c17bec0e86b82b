"""Label decoders: bytes of a map key to a label value, chained as ebpf_exporter chains them.

Each decoder takes bytes and returns bytes (the next decoder's input or the
label value). ``uint`` turns 1/2/4/8 little-endian bytes into decimal text;
decoders of numbers that come after it (``syscall``, ``errno``, ``cgroup``,
``pci_*``) read that text, as in ebpf_exporter. A decoder raising
:class:`SkipLabelSet` drops the map entry (``regexp`` with no match).
Lookups that read the system (``ksym``, ``cgroup``, ``majorminor``,
``ifname``, ``pci_*``) load their tables once, on first use.
"""

from __future__ import annotations

import bisect
import errno as errno_mod
import ipaddress
import os
import re
import socket
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING

from pyprobe.export._syscalls import X86_64

if TYPE_CHECKING:
    from pyprobe.export.config import DecoderConfig, LabelConfig

__all__ = ["DECODERS", "DecodeError", "LabelDecoder", "SkipLabelSet", "decode_chain"]

PCI_IDS_PATHS = ("/usr/share/misc/pci.ids", "/usr/share/hwdata/pci.ids")
"""Where the PCI ID database is looked for (Debian's pci.ids package installs the first)."""
MISSING_PCI_IDS = "missing pci.ids db"
CGROUP_ROOT = "/sys/fs/cgroup"


def cgroup2_root() -> str:
    """Where the cgroup v2 hierarchy is mounted (cgroup ids are its directories' inodes)."""
    try:
        with open("/proc/self/mounts", encoding="utf-8") as f:
            for line in f:
                fields = line.split()
                if len(fields) > 2 and fields[2] == "cgroup2":
                    return fields[1]
    except OSError:
        pass
    return CGROUP_ROOT


class SkipLabelSet(Exception):
    """Raised by a decoder to drop the whole map entry (no metric for it)."""


class DecodeError(ValueError):
    """A key slice a decoder cannot read (wrong size, not a number)."""

    __module__ = "pyprobe.export"


def _number(data: bytes, what: str) -> int:
    try:
        return int(data.decode("ascii"), 10)
    except (UnicodeDecodeError, ValueError):
        raise DecodeError(f"{what} decoder expects a decimal number (put `uint` before it), got {data!r}") from None


def _uint(data: bytes, _: DecoderConfig) -> bytes:
    if len(data) not in (1, 2, 4, 8):
        raise DecodeError(f"uint decoder reads 1, 2, 4 or 8 bytes, not {len(data)}")
    return str(int.from_bytes(data, "little")).encode()


def _string(data: bytes, _: DecoderConfig) -> bytes:
    end = data.find(b"\0")
    return data if end < 0 else data[:end]


def _hex(data: bytes, _: DecoderConfig) -> bytes:
    return data.hex().encode()


class _Kallsyms:
    def __init__(self) -> None:
        self.addrs: list[int] = []
        self.names: list[str] = []
        self.loaded = False

    def load(self) -> None:
        pairs: list[tuple[int, str]] = []
        try:
            with open("/proc/kallsyms", encoding="utf-8", errors="replace") as f:
                for line in f:
                    parts = line.split()
                    if len(parts) >= 3:
                        addr = int(parts[0], 16)
                        if addr:
                            pairs.append((addr, parts[2]))
        except OSError:
            pass
        pairs.sort()
        self.addrs = [a for a, _ in pairs]
        self.names = [n for _, n in pairs]
        self.loaded = True

    def sym(self, addr: int) -> str | None:
        if not self.loaded:
            self.load()
        i = bisect.bisect_right(self.addrs, addr) - 1
        return self.names[i] if i >= 0 else None


_KALLSYMS = _Kallsyms()


def _ksym(data: bytes, _: DecoderConfig) -> bytes:
    if len(data) != 8:
        raise DecodeError(f"ksym decoder reads an 8-byte address, not {len(data)} bytes")
    addr = int.from_bytes(data, "little")
    name = _KALLSYMS.sym(addr)
    return (name or f"unknown_addr:0x{addr:x}").encode()


def _syscall(data: bytes, _: DecoderConfig) -> bytes:
    number = _number(data, "syscall")
    return X86_64.get(number, f"unknown_syscall:{number}").encode()


def _errno(data: bytes, _: DecoderConfig) -> bytes:
    number = _number(data, "errno")
    return errno_mod.errorcode.get(number, f"unknown:{number}").encode()


def _static_map(data: bytes, conf: DecoderConfig) -> bytes:
    if conf.static_map is None:
        return b"empty mapping"
    text = data.decode("utf-8", "replace")
    value = conf.static_map.get(text)
    if value is None:
        return data if conf.allow_unknown else f"unknown:{text}".encode()
    return value.encode()


_REGEXPS: dict[str, re.Pattern[bytes]] = {}


def _regexp(data: bytes, conf: DecoderConfig) -> bytes:
    for expr in conf.regexps or ():
        pattern = _REGEXPS.get(expr)
        if pattern is None:
            pattern = _REGEXPS[expr] = re.compile(expr.encode())
        match = pattern.search(data)
        if match:
            # like Go's FindSubmatch: the first group when there is exactly one, else the whole match
            return match[1] if pattern.groups == 1 and match[1] is not None else match[0]
    raise SkipLabelSet


def _inet_ip(data: bytes, _: DecoderConfig) -> bytes:
    if len(data) == 4:
        return str(ipaddress.IPv4Address(data)).encode()
    if len(data) == 16:
        v6 = ipaddress.IPv6Address(data)
        mapped = v6.ipv4_mapped
        return str(mapped if mapped is not None else v6).encode()
    raise DecodeError(f"inet_ip decoder reads 4 or 16 bytes, not {len(data)}")


class _Cgroups:
    """cgroup id (the cgroup directory's inode on cgroup2) to its path, by walking the hierarchy."""

    def __init__(self, root: str | None = None) -> None:
        self.root = root
        self.paths: dict[int, str] = {}

    def walk(self) -> None:
        if self.root is None:
            self.root = cgroup2_root()
        for dirpath, _dirs, _files in os.walk(self.root):
            try:
                self.paths[os.stat(dirpath).st_ino] = dirpath
            except OSError:
                continue  # removed while walking

    def resolve(self, cgroup_id: int) -> str:
        path = self.paths.get(cgroup_id)
        if path is None:
            self.walk()
            # remember a miss so an unknown id does not walk the tree on every scrape
            path = self.paths.setdefault(cgroup_id, "")
        return path


_CGROUPS = _Cgroups()


def _cgroup(data: bytes, _: DecoderConfig) -> bytes:
    cgroup_id = _number(data, "cgroup")
    return (_CGROUPS.resolve(cgroup_id) or f"unknown_cgroup_id:{cgroup_id}").encode()


_PARTITIONS: dict[int, bytes] = {}


def _majorminor(data: bytes, _: DecoderConfig) -> bytes:
    if len(data) < 4:
        raise DecodeError(f"majorminor decoder reads a 4-byte device number, not {len(data)} bytes")
    dev = int.from_bytes(data[:4], "little")
    found = _PARTITIONS.get(dev)
    if found is not None:
        return found
    major, minor = (dev & 0xFFF00) >> 8, (dev & 0xFF) | ((dev >> 12) & 0xFFF00)  # the kernel's new_encode_dev
    try:
        with open("/proc/partitions", encoding="utf-8") as f:
            for line in f:
                fields = line.split()
                if len(fields) == 4 and fields[0] == str(major) and fields[1] == str(minor):
                    _PARTITIONS[dev] = fields[3].encode()
                    return _PARTITIONS[dev]
    except OSError:
        pass
    return f"unknown:{major}:{minor}".encode()


def _ifname(data: bytes, _: DecoderConfig) -> bytes:
    if len(data) < 4:
        raise DecodeError(f"ifname decoder reads a 4-byte interface index, not {len(data)} bytes")
    index = int.from_bytes(data[:4], "little")
    try:
        return socket.if_indextoname(index).encode()
    except OSError:
        return f"unknown:{index}".encode()


class _PciIds:
    """The pci.ids database: vendors, devices (by vendor), classes and subclasses."""

    def __init__(self) -> None:
        self.loaded = False
        self.present = False
        self.vendors: dict[int, str] = {}
        self.devices: dict[tuple[int, int], str] = {}
        self.classes: dict[int, str] = {}
        self.subclasses: dict[tuple[int, int], str] = {}

    def load(self) -> None:
        self.loaded = True
        for path in PCI_IDS_PATHS:
            try:
                with open(path, encoding="utf-8", errors="replace") as f:
                    self._parse(f)
            except OSError:
                continue
            self.present = True
            return

    def _parse(self, lines: Iterable[str]) -> None:
        vendor = klass = -1
        in_classes = False
        for line in lines:
            if not line.strip() or line.startswith("#"):
                continue
            depth = len(line) - len(line.lstrip("\t"))
            text = line.strip()
            head, _, name = text.partition("  ")
            if depth == 0:
                in_classes = head.startswith("C ")
                if in_classes:
                    klass = int(head[2:], 16)
                    self.classes[klass] = name
                else:
                    vendor = int(head, 16) if re.fullmatch(r"[0-9a-f]{4}", head) else -1
                    if vendor >= 0:
                        self.vendors[vendor] = name
            elif depth == 1:
                if in_classes and klass >= 0:
                    self.subclasses[(klass, int(head, 16))] = name
                elif vendor >= 0:
                    self.devices[(vendor, int(head, 16))] = name

    def ready(self) -> bool:
        if not self.loaded:
            self.load()
        return self.present


_PCI = _PciIds()


def _pci_vendor(data: bytes, _: DecoderConfig) -> bytes:
    if not _PCI.ready():
        return MISSING_PCI_IDS.encode()
    num = _number(data, "pci_vendor")
    return _PCI.vendors.get(num, f"unknown pci vendor: 0x{num:04x}").encode()


def _pci_device(data: bytes, _: DecoderConfig) -> bytes:
    if not _PCI.ready():
        return MISSING_PCI_IDS.encode()
    num = _number(data, "pci_device")
    if num > 0xFFFF:  # vendor << 16 | device: unambiguous
        name = _PCI.devices.get((num >> 16, num & 0xFFFF))
    else:  # a bare device id: the first vendor that has it (pci.ids order)
        name = next((n for (_v, d), n in _PCI.devices.items() if d == num), None)
    return (name or f"unknown pci device: 0x{num:04x}").encode()


def _pci_class(data: bytes, _: DecoderConfig) -> bytes:
    if not _PCI.ready():
        return MISSING_PCI_IDS.encode()
    num = _number(data, "pci_class")
    return _PCI.classes.get(num, f"unknown pci class: 0x{num:02x}").encode()


def _pci_subclass(data: bytes, _: DecoderConfig) -> bytes:
    if not _PCI.ready():
        return MISSING_PCI_IDS.encode()
    num = _number(data, "pci_subclass")
    klass, sub = num >> 8, num & 0xFF
    if klass not in _PCI.classes:
        return f"unknown pci class: 0x{klass:02x}".encode()
    name = _PCI.subclasses.get((klass, sub))
    return (name or f"unknown pci subclass: 0x{sub:02x} (class 0x{klass:02x})").encode()


LabelDecoder = Callable[[bytes, "DecoderConfig"], bytes]
"""A decoder: (input bytes, its config step) -> output bytes; may raise SkipLabelSet or DecodeError."""

DECODERS: dict[str, LabelDecoder] = {
    "cgroup": _cgroup,
    "errno": _errno,
    "hex": _hex,
    "ifname": _ifname,
    "inet_ip": _inet_ip,
    "ksym": _ksym,
    "majorminor": _majorminor,
    "pci_class": _pci_class,
    "pci_device": _pci_device,
    "pci_subclass": _pci_subclass,
    "pci_vendor": _pci_vendor,
    "regexp": _regexp,
    "static_map": _static_map,
    "string": _string,
    "syscall": _syscall,
    "uint": _uint,
}
"""Decoder name (as written in a config) -> decoder."""


def decode_chain(data: bytes, label: LabelConfig) -> str:
    """Runs a label's decoders over its key slice; returns the label value.

    Raises :class:`SkipLabelSet` (drop the entry) or :class:`DecodeError`.
    """
    for step in label.decoders:
        data = DECODERS[step.name](data, step)
    return data.decode("utf-8", "replace")


def decode_key(raw: bytes, labels: Sequence[LabelConfig]) -> tuple[str, ...]:
    """Splits a whole key into its labels (``size`` bytes each, then ``padding`` skipped) and decodes them."""
    values: list[str] = []
    off = 0
    for label in labels:
        values.append(decode_chain(raw[off : off + label.size], label))
        off += label.size + label.padding
    if off != len(raw):
        raise DecodeError(f"the labels take {off} bytes but the key has {len(raw)}")
    return tuple(values)
