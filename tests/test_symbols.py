"""pyprobe.symbols: names (plain, Go, C++ mangled, demangled, bare), libraries, pids, globs, errors."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

import pyprobe
from conftest import target
from pyprobe import symbols


def test_cpp_names_resolve_to_one_symbol() -> None:
    utest = target("utest")
    by_mangled = symbols.resolve(utest, "_Z9utest_addii")
    assert by_mangled.demangled == "utest_add(int, int)"
    assert symbols.resolve(utest, "utest_add(int, int)") == by_mangled
    assert symbols.resolve(utest, "utest_add") == by_mangled
    assert by_mangled.binary == str(utest) and by_mangled.size > 0 and by_mangled.offset > 0


def test_namespaced_and_extern_c_names() -> None:
    args8 = target("args8")
    assert symbols.resolve(args8, "probe::scaled").name == "_ZN5probe6scaledEii"
    assert symbols.resolve(args8, "args8").name == "args8"


def test_offset_is_the_file_offset_of_the_code() -> None:
    sym = symbols.resolve(target("utest"), "utest_add")
    code = Path(target("utest")).read_bytes()[sym.offset : sym.offset + sym.size]
    assert code[-1] == 0xC3  # ends with ret


def test_go_symbols() -> None:
    if shutil.which("go") is None:
        pytest.skip("no Go toolchain")
    go = target("gotarget")
    assert symbols.resolve(go, "main.add").name == "main.add"
    assert symbols.resolve(go, "main.main").size > 0
    assert symbols.is_go_binary(go)
    assert not symbols.is_go_binary(target("utest"))


def test_demangle() -> None:
    assert symbols.demangle("_ZN5probe6scaledEii") == "probe::scaled(int, int)"
    assert symbols.demangle("main.main") == "main.main"
    assert symbols.demangle("_Znot_valid") == "_Znot_valid"


def test_find_by_glob() -> None:
    names = [s.name for s in symbols.find(target("utest"), "_Z9utest_*")]
    assert names == ["_Z9utest_addii", "_Z9utest_subii"]
    assert [s.name for s in symbols.find(target("utest"), "utest_*")] == names
    assert symbols.find(target("utest"), "nothing_like_this*") == []


def test_library_names_resolve_as_the_loader_would() -> None:
    libc = symbols.resolve_binary("libc.so.6")
    assert os.path.basename(libc) == "libc.so.6" and os.path.isabs(libc)
    assert symbols.resolve_binary("libc") == libc
    assert symbols.resolve_binary("c") == libc
    assert symbols.resolve("libc.so.6", "malloc").binary == libc


def test_library_through_a_process_mappings() -> None:
    libc = symbols.resolve_binary("libc.so.6", pid=os.getpid())
    assert libc in Path("/proc/self/maps").read_text()


def test_ambiguous_name() -> None:
    with pytest.raises(pyprobe.AmbiguousSymbolError, match="'overload' matches 2 functions") as info:
        symbols.resolve(target("args8"), "overload")
    assert len(info.value.candidates) == 2
    assert symbols.resolve(target("args8"), "overload(double)").name == "_Z8overloadd"


def test_errors_name_the_binary_and_the_name(tmp_path: Path) -> None:
    with pytest.raises(pyprobe.SymbolNotFoundError, match=f"no function 'nope' in {target('utest')}"):
        symbols.resolve(target("utest"), "nope")
    with pytest.raises(pyprobe.AttachError, match="no file, library or program named 'libnope_zz'"):
        symbols.resolve("libnope_zz", "f")
    with pytest.raises(pyprobe.AttachError, match="is a directory"):
        symbols.resolve(tmp_path, "f")
    junk = tmp_path / "junk"
    junk.write_bytes(b"\x7fELF" + b"\0" * 10)
    with pytest.raises(pyprobe.AttachError, match="not a valid ELF file"):
        symbols.resolve(junk, "f")
    with pytest.raises(pyprobe.SymbolNotFoundError, match="stripped"):
        symbols.resolve(target("args8-stripped"), "overload")
    with pytest.raises(TypeError, match="function name"):
        symbols.resolve(target("utest"), "")
