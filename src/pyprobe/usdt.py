"""USDT probes (``<sys/sdt.h>``, SystemTap notes) of a binary: provider, name, address, semaphore, arguments.

>>> from pyprobe import usdt
>>> [(p.provider, p.name) for p in usdt.probes("/usr/bin/python3")]
"""

from __future__ import annotations

import errno
import os
import struct
from typing import NamedTuple

from pyprobe._elf import SHT_NOBITS, ElfFile, ElfFormatError
from pyprobe.errors import AttachError
from pyprobe.symbols import elf_info, resolve_binary

__all__ = ["UsdtArgument", "UsdtProbe", "probes"]


class UsdtArgument(NamedTuple):
    """One argument spec of a USDT probe, e.g. ``-4@%edx``: ``size`` in bytes, ``signed``, ``location``."""

    spec: str
    size: int
    signed: bool
    location: str


class UsdtProbe(NamedTuple):
    """A USDT probe of a binary.

    ``address`` is the probe's virtual address (adjusted for prelinking through
    ``.stapsdt.base``), ``offset`` its file offset; ``semaphore`` the virtual
    address of its semaphore (0 when it has none) and ``semaphore_offset`` the
    semaphore's file offset, which a uprobe's reference counter takes.
    """

    provider: str
    name: str
    address: int
    semaphore: int
    arguments: tuple[UsdtArgument, ...]
    binary: str
    offset: int = 0
    semaphore_offset: int = 0


def _parse_argument(spec: str) -> UsdtArgument:
    size_text, sep, location = spec.partition("@")
    if not sep:
        return UsdtArgument(spec, 8, True, spec)
    try:
        size = int(size_text)
    except ValueError:
        return UsdtArgument(spec, 8, True, spec)
    return UsdtArgument(spec, abs(size), size < 0, location)


def _text(raw: bytes) -> str:
    """A note's string as UTF-8; bytes that are not UTF-8 show as ``\\xNN`` escapes (notes are untrusted)."""
    return raw.decode("utf-8", "backslashreplace")


def probes(binary: str | os.PathLike[str], pid: int | None = None) -> list[UsdtProbe]:
    """The USDT probes in ``binary`` (a path or a library name, see :func:`pyprobe.symbols.resolve_binary`).

    Reads the ``.note.stapsdt`` ELF notes; an empty list when there are none.
    Provider, name and argument text that is not UTF-8 shows its bytes as
    ``\\xNN`` escapes (such a probe is listed, and attaching it by that name
    fails with AttachError). Malformed notes are skipped. Raises
    :class:`~pyprobe.AttachError` for a missing, unreadable or non-ELF binary.
    """
    path = resolve_binary(binary, pid)
    info = elf_info(path)  # checks the file and that it is ELF
    try:
        with open(path, "rb") as f:
            elf = ElfFile(f)
            notes = elf.section(".note.stapsdt")
            if notes is None:
                return []
            base_section = elf.section(".stapsdt.base")
            base_addr = base_section.addr if base_section is not None else None
            data = elf.data(notes)
    except ElfFormatError as exc:
        raise AttachError(
            errno.ENOEXEC, f"{path} has invalid notes ({exc})", context=f"read USDT notes of {path}"
        ) from None
    wide, little = elf.wide, elf.little
    order = "<" if little else ">"
    word = "Q" if wide else "I"
    wsize = 8 if wide else 4
    found: list[UsdtProbe] = []
    pos = 0
    while pos + 12 <= len(data):
        namesz, descsz, ntype = struct.unpack_from(order + "III", data, pos)
        pos += 12
        owner = data[pos : pos + namesz].rstrip(b"\0")
        pos += (namesz + 3) & ~3
        desc = data[pos : pos + descsz]
        pos += (descsz + 3) & ~3
        if owner != b"stapsdt" or ntype != 3 or len(desc) < 3 * wsize:
            continue
        pc, note_base, semaphore = struct.unpack_from(order + word * 3, desc, 0)
        strings = desc[3 * wsize :].split(b"\0")
        provider = _text(strings[0])
        name = _text(strings[1]) if len(strings) > 1 else ""
        args_text = _text(strings[2]) if len(strings) > 2 else ""
        if base_addr is not None and note_base:
            pc += base_addr - note_base
            if semaphore:
                semaphore += base_addr - note_base
        offset = info.vaddr_to_offset(pc) or 0
        sem_offset = _semaphore_offset(elf, semaphore) if semaphore else 0
        arguments = tuple(_parse_argument(a) for a in args_text.split() if a)
        found.append(UsdtProbe(provider, name, pc, semaphore, arguments, path, offset, sem_offset))
    return found


def _semaphore_offset(elf: ElfFile, vaddr: int) -> int:
    """File offset of a semaphore in a data section (as the kernel's uprobe ref_ctr_offset wants it)."""
    for section in elf.sections:
        start, size = section.addr, section.size
        if section.type != SHT_NOBITS and start and start <= vaddr < start + size:
            return vaddr - start + section.offset
    return 0
