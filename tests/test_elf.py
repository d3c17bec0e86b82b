"""pyprobe's ELF reader (pyprobe._elf) against pyelftools: the same sections, symbols and function lists.

pyelftools is the reference: each binary's function list is computed here the
way pyprobe.symbols computed it with pyelftools, and must equal what
``symbols.elf_info`` returns. Objects of other architectures (ELF32 and ELF64,
both byte orders) built by clang check the reader's headers and symbol rows.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

import pyprobe
from conftest import target
from pyprobe import symbols
from pyprobe._elf import ElfFile, cstring

elftools = pytest.importorskip("elftools")
from elftools.elf.elffile import ELFFile  # noqa: E402
from elftools.elf.sections import SymbolTableSection  # noqa: E402

SOURCE = "int helper(int a) { return a + 1; }\nint entry(void) { return helper(2); }\n"


def reference_info(path: str) -> tuple[list[tuple[str, str, int, int, int]], bool, bool, str, list[tuple[int, ...]]]:
    """(symbols, has_symtab, is_go, machine, PT_LOAD segments) of ``path`` computed with pyelftools."""
    with open(path, "rb") as f:
        elf = ELFFile(f)
        segments = [
            (int(s["p_vaddr"]), int(s["p_memsz"]), int(s["p_offset"]), int(s["p_filesz"]))
            for s in elf.iter_segments()
            if s["p_type"] == "PT_LOAD"
        ]
        seen: dict[tuple[str, int], tuple[str, str, int, int, int]] = {}
        has_symtab = False
        for table in (".symtab", ".dynsym"):
            section = elf.get_section_by_name(table)
            if not isinstance(section, SymbolTableSection):
                continue
            has_symtab = has_symtab or table == ".symtab"
            for sym in section.iter_symbols():
                if sym["st_info"]["type"] != "STT_FUNC" or sym["st_shndx"] == "SHN_UNDEF":
                    continue
                value, name = int(sym["st_value"]), sym.name.split("@", 1)[0]
                if not value or not name or (name, value) in seen:
                    continue
                for start, memsz, offset, filesz in segments:
                    if start <= value < start + max(memsz, filesz):
                        seen[name, value] = (
                            name,
                            symbols.demangle(name),
                            value - start + offset,
                            sym["st_size"],
                            value,
                        )
                        break
        is_go = any(elf.get_section_by_name(n) is not None for n in (".go.buildinfo", ".gopclntab", ".note.go.buildid"))
        found = sorted(seen.values(), key=lambda s: (s[2], s[0]))
        return found, has_symtab, is_go, str(elf["e_machine"]), segments


def assert_same_as_pyelftools(path: str) -> symbols.ElfInfo:
    info = symbols.elf_info(path)
    found, has_symtab, is_go, machine, segments = reference_info(path)
    assert [(s.name, s.demangled, s.offset, s.size, s.address) for s in info.symbols] == found
    assert all(s.binary == path for s in info.symbols)
    assert (info.has_symtab, info.is_go, info.machine, list(info.segments)) == (has_symtab, is_go, machine, segments)
    return info


def test_cpp_target() -> None:
    info = assert_same_as_pyelftools(str(target("utest")))
    assert info.has_symtab and any(s.name == "_Z9utest_addii" for s in info.symbols)


def test_libc() -> None:
    info = assert_same_as_pyelftools(symbols.resolve_binary("libc.so.6"))
    assert len(info.symbols) > 1000 and any(s.name == "malloc" for s in info.symbols)


def test_stripped_binary() -> None:
    info = assert_same_as_pyelftools(str(target("args8-stripped")))
    assert not info.has_symtab


def test_go_target() -> None:
    if shutil.which("go") is None:
        pytest.skip("no Go toolchain")
    info = assert_same_as_pyelftools(str(target("gotarget")))
    assert info.is_go and len(info.symbols) > 100


def test_32_bit_executable(tmp_path: Path) -> None:
    src = tmp_path / "t.c"
    src.write_text(SOURCE)
    exe = tmp_path / "t32"
    built = subprocess.run(
        ["gcc", "-m32", "-nostdlib", "-static", "-Wl,-e,entry", "-o", str(exe), str(src)],
        check=False,
        capture_output=True,
    )
    if built.returncode != 0:
        pytest.skip(f"gcc cannot link 32-bit executables here: {built.stderr.decode()[-200:]}")
    info = assert_same_as_pyelftools(str(exe))
    assert info.machine == "EM_386" and {"helper", "entry"} <= {s.name for s in info.symbols}


@pytest.mark.parametrize("triple", ["i686-linux-gnu", "powerpc64-linux-gnu", "mips-linux-gnu", "bpfeb", "bpfel"])
def test_sections_and_symbol_rows_of_other_architectures(tmp_path: Path, triple: str) -> None:
    if shutil.which("clang") is None:
        pytest.skip("no clang")
    src = tmp_path / "t.c"
    src.write_text(SOURCE)
    obj = tmp_path / f"{triple}.o"
    built = subprocess.run(
        ["clang", f"--target={triple}", "-O2", "-c", "-o", str(obj), str(src)], check=False, capture_output=True
    )
    if built.returncode != 0:
        pytest.skip(f"clang cannot build for {triple}: {built.stderr.decode()[-200:]}")
    with open(obj, "rb") as f:
        ours = ElfFile(f)
        theirs = ELFFile(f)
        assert (ours.wide, ours.little) == (theirs.elfclass == 64, theirs.little_endian)
        expected = [
            (s.name, s["sh_type"], s["sh_addr"], s["sh_offset"], s["sh_size"], s["sh_link"])
            for s in theirs.iter_sections()
        ]
        got = [(s.name, s.type, s.addr, s.offset, s.size, s.link) for s in ours.sections]
        assert [g[0] for g in got] == [e[0] for e in expected]
        assert [g[2:] for g in got] == [e[2:] for e in expected]
        symtab = ours.section(".symtab")
        assert symtab is not None
        strtab = ours.strings(symtab.link)
        rows = [
            (cstring(strtab, n).decode(), v, size, kind, shndx) for n, v, size, kind, _, shndx in ours.symbols(symtab)
        ]
        ref = theirs.get_section_by_name(".symtab")
        ref_rows = [(s.name, s["st_value"], s["st_size"], s.entry["st_info"]["type"]) for s in ref.iter_symbols()]
        assert [r[:3] for r in rows] == [r[:3] for r in ref_rows]
        assert (
            {r[0] for r in rows if r[3] == 2} == {r[0] for r in ref_rows if r[3] == "STT_FUNC"} >= {"helper", "entry"}
        )


def test_malformed_files_raise_a_clear_error(tmp_path: Path) -> None:
    good = Path(target("utest")).read_bytes()
    cases = {
        "truncated": good[:200],
        "class": good[:4] + b"\x07" + good[5:],
        "huge": good[:0x3C] + b"\xff\xff" + good[0x3E:],  # e_shnum 65535 headers past the end of the file
    }
    for name, data in cases.items():
        path = tmp_path / name
        path.write_bytes(data)
        with pytest.raises(pyprobe.AttachError, match="not a valid ELF file") as info:
            symbols.elf_info(str(path))
        assert str(path) in str(info.value)
