"""A small ELF reader: the headers, sections, segments and symbol tables that uprobes and USDT need.

Reads ELF32 and ELF64 files of either byte order with :mod:`struct`, and only
the parts asked for (the headers, then each section's bytes on demand), so
that finding one function in a large binary costs a few reads and one pass
over its symbol tables. Malformed files raise :class:`ElfFormatError`.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from typing import TYPE_CHECKING, NamedTuple

if TYPE_CHECKING:
    from typing import BinaryIO

__all__ = [
    "PT_LOAD", "SHT_DYNSYM", "SHT_NOBITS", "SHT_SYMTAB", "ElfFile", "ElfFormatError", "ElfSection", "ElfSegment",
    "cstring",
]  # fmt: skip

SHT_SYMTAB, SHT_NOBITS, SHT_DYNSYM = 2, 8, 11
PT_LOAD = 1
_SHN_XINDEX, _PN_XNUM = 0xFFFF, 0xFFFF

# ELF header after e_ident, section header, program header and symbol of each class
_EHDR = {32: "HHIIIIIHHHHHH", 64: "HHIQQQIHHHHHH"}
_SHDR = {32: "IIIIIIIIII", 64: "IIQQQQIIQQ"}
_PHDR = {32: "IIIIIIII", 64: "IIQQQQQQ"}
_SYM = {32: "IIIBBH", 64: "IBBHQQ"}

MACHINES = {
    2: "EM_SPARC", 3: "EM_386", 8: "EM_MIPS", 20: "EM_PPC", 21: "EM_PPC64", 22: "EM_S390", 40: "EM_ARM",
    43: "EM_SPARCV9", 50: "EM_IA_64", 62: "EM_X86_64", 183: "EM_AARCH64", 243: "EM_RISCV", 247: "EM_BPF",
    258: "EM_LOONGARCH",
}  # fmt: skip
"""e_machine values by their ``<elf.h>`` names (others show as the number)."""


class ElfFormatError(ValueError):
    """The file is not a well-formed ELF file; the message says which part is wrong."""


class ElfSection(NamedTuple):
    """One section header, with its name."""

    name: str
    type: int
    flags: int
    addr: int
    offset: int
    size: int
    link: int
    info: int
    entsize: int


class ElfSegment(NamedTuple):
    """One program header."""

    type: int
    offset: int
    vaddr: int
    filesz: int
    memsz: int


class ElfFile:
    """The headers of the ELF file open as ``f`` (a binary file object it reads from but does not own).

    Reads the ELF header, the section headers (with their names) and the
    program headers when constructed; section contents on demand. Raises
    :class:`ElfFormatError` for a file that is not ELF or is truncated.
    """

    def __init__(self, f: BinaryIO) -> None:
        self._f = f
        self._end = f.seek(0, 2)
        ident = self._read(0, 16, "ELF identification")
        if ident[:4] != b"\x7fELF":
            raise ElfFormatError("no ELF magic")
        if ident[4] not in (1, 2):
            raise ElfFormatError(f"invalid EI_CLASS {ident[4]}")
        if ident[5] not in (1, 2):
            raise ElfFormatError(f"invalid EI_DATA {ident[5]}")
        self.bits = 64 if ident[4] == 2 else 32
        self.little = ident[5] == 1
        self._order = "<" if self.little else ">"
        fmt = self._order + _EHDR[self.bits]
        (_, machine, _, _, phoff, shoff, _, _, phentsize, phnum, shentsize, shnum, shstrndx) = struct.unpack(
            fmt, self._read(16, struct.calcsize(fmt), "ELF header")
        )
        self.machine = MACHINES.get(machine, str(machine))
        self.sections = self._read_sections(shoff, shentsize, shnum, shstrndx)
        if phnum == _PN_XNUM and self.sections:
            phnum = self.sections[0].info
        self.segments = self._read_segments(phoff, phentsize, phnum)

    @property
    def wide(self) -> bool:
        """True for ELF64."""
        return self.bits == 64

    def _read(self, offset: int, size: int, what: str) -> bytes:
        data = b""
        if offset + size <= self._end:  # checked first: a corrupt size must not allocate a huge buffer
            self._f.seek(offset)
            data = self._f.read(size)
        if len(data) != size:
            raise ElfFormatError(f"{what} ({size} bytes at {offset:#x}) is past the end of the file")
        return data

    def _table(self, offset: int, entsize: int, count: int, fmt: str, what: str) -> list[tuple[int, ...]]:
        fmt = self._order + fmt
        size = struct.calcsize(fmt)
        if count == 0:
            return []
        if entsize < size:
            raise ElfFormatError(f"{what} entries are {entsize} bytes, expected at least {size}")
        data = self._read(offset, entsize * count, what)
        if entsize == size:
            return list(struct.iter_unpack(fmt, data))
        return [struct.unpack_from(fmt, data, i * entsize) for i in range(count)]

    def _read_sections(self, shoff: int, shentsize: int, shnum: int, shstrndx: int) -> tuple[ElfSection, ...]:
        if shoff == 0:
            return ()
        if shnum == 0 or shstrndx == _SHN_XINDEX:  # extended numbering: the real values are in section 0
            first = self._table(shoff, shentsize, 1, _SHDR[self.bits], "section header 0")[0]
            _, _, _, _, _, size0, link0, _, _ = self._shdr(first)
            shnum = shnum or size0
            if shstrndx == _SHN_XINDEX:
                shstrndx = link0
        raw = [self._shdr(row) for row in self._table(shoff, shentsize, shnum, _SHDR[self.bits], "section headers")]
        names = b""
        if 0 < shstrndx < len(raw):
            _, stype, _, _, offset, size, _, _, _ = raw[shstrndx]
            names = self._read(offset, size, "section name table") if stype != SHT_NOBITS else b""
        return tuple(ElfSection(cstring(names, r[0]).decode("latin-1"), *r[1:]) for r in raw)

    def _shdr(self, row: tuple[int, ...]) -> tuple[int, ...]:
        """(name, type, flags, addr, offset, size, link, info, entsize) of a raw section header."""
        name, stype, flags, addr, offset, size, link, info, _align, entsize = row
        return name, stype, flags, addr, offset, size, link, info, entsize

    def _read_segments(self, phoff: int, phentsize: int, phnum: int) -> tuple[ElfSegment, ...]:
        if phoff == 0:
            return ()
        rows = self._table(phoff, phentsize, phnum, _PHDR[self.bits], "program headers")
        if self.bits == 64:  # p_type, p_flags, p_offset, p_vaddr, p_paddr, p_filesz, p_memsz, p_align
            return tuple(ElfSegment(r[0], r[2], r[3], r[5], r[6]) for r in rows)
        # p_type, p_offset, p_vaddr, p_paddr, p_filesz, p_memsz, p_flags, p_align
        return tuple(ElfSegment(r[0], r[1], r[2], r[4], r[5]) for r in rows)

    def section(self, name: str) -> ElfSection | None:
        """The first section called ``name``, or None."""
        for s in self.sections:
            if s.name == name:
                return s
        return None

    def data(self, section: ElfSection) -> bytes:
        """The bytes of ``section`` (empty for SHT_NOBITS)."""
        if section.type == SHT_NOBITS or section.size == 0:
            return b""
        return self._read(section.offset, section.size, f"section {section.name}")

    def symbols(self, section: ElfSection) -> Iterator[tuple[int, int, int, int, int, int]]:
        """The raw entries of a symbol table: (st_name, st_value, st_size, type, bind, st_shndx)."""
        fmt = _SYM[self.bits]
        entsize = section.entsize or struct.calcsize(self._order + fmt)
        if section.type == SHT_NOBITS or section.size == 0:
            return
        rows = self._table(section.offset, entsize, section.size // entsize, fmt, f"symbol table {section.name}")
        if self.bits == 64:  # st_name, st_info, st_other, st_shndx, st_value, st_size
            for name, info, _other, shndx, value, size in rows:
                yield name, value, size, info & 0xF, info >> 4, shndx
        else:  # st_name, st_value, st_size, st_info, st_other, st_shndx
            for name, value, size, info, _other, shndx in rows:
                yield name, value, size, info & 0xF, info >> 4, shndx

    def strings(self, index: int) -> bytes:
        """The contents of the string table section at ``index`` (a symbol table's ``link``)."""
        if not 0 <= index < len(self.sections):
            raise ElfFormatError(f"string table index {index} out of range")
        return self.data(self.sections[index])


def cstring(table: bytes, offset: int) -> bytes:
    """The NUL-terminated string at ``offset`` of a string table (empty when out of range)."""
    if offset >= len(table):
        return b""
    end = table.find(b"\0", offset)
    return table[offset:] if end < 0 else table[offset:end]
