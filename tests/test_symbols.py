"""pyprobe.symbols: names (plain, Go, C++ mangled, demangled, bare), libraries, pids, globs, errors."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
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


def _seq_id(i: int) -> str:
    """The substitution ``S<seq-id>_`` that names the ``i``-th substitutable component (0: ``S_``)."""
    if i == 0:
        return "S_"
    digits, i, text = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ", i - 1, ""
    while True:
        text, i = digits[i % 36] + text, i // 36
        if not i:
            return f"S{text}_"


def exploding_symbol(levels: int, name: str = "f") -> str:
    """A mangled name whose demangled form doubles with each level: a<a<..>, a<..>> through back-references.

    22 levels take 230 bytes and demangle to 143 MB with libstdc++'s ``__cxa_demangle``.
    """
    return f"_Z{len(name)}{name}1aIiiE" + "".join(f"S_I{_seq_id(i + 1)}{_seq_id(i + 1)}E" for i in range(levels))


def build_hostile_binary(tmp_path: Path, count: int, levels: int) -> Path:
    """An executable holding ``count`` exploding C++ symbols beside ``ns::compute(int, int)`` and ``(double)``."""
    lines = []
    for i in range(count):
        lines.append(f'void h{i}(void) __asm__("{exploding_symbol(levels, f"f{i}")}");\nvoid h{i}(void) {{}}')
    lines.append('int compute_ii(int a, int b) __asm__("_ZN2ns7computeEii");')
    lines.append("int compute_ii(int a, int b) { return a + b; }")
    lines.append('double compute_d(double a) __asm__("_ZN2ns7computeEd");\ndouble compute_d(double a) { return a; }')
    lines.append("int main(void) { return compute_ii(1, 2) + (int)compute_d(1.0); }")
    src = tmp_path / "hostile.c"
    src.write_text("\n".join(lines) + "\n")
    out = tmp_path / "hostile"
    subprocess.run(["cc", "-O0", "-o", str(out), str(src)], check=True)
    return out


def test_hostile_symbols_demangle_in_bounded_time_and_memory(tmp_path: Path) -> None:
    """Each of 40 symbols would demangle to 143 MB (seconds each): listing and lookups stay under 1 s and 64 MiB."""
    binary = build_hostile_binary(tmp_path, count=40, levels=22)
    code = f"""
import resource, time
from pyprobe import symbols
from pyprobe.cli.main import main
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
start = time.monotonic()
sym = symbols.resolve({str(binary)!r}, "ns::compute(int, int)")
assert (sym.name, sym.demangled) == ("_ZN2ns7computeEii", "ns::compute(int, int)"), sym
listed = symbols.elf_info({str(binary)!r}).symbols
main(["list", "symbols", {str(binary)!r}])
assert [s.name for s in symbols.find({str(binary)!r}, "ns::compute*")] == ["_ZN2ns7computeEii", "_ZN2ns7computeEd"]
hostile = [s for s in listed if "1aIiiE" in s.name]
assert len(hostile) == 40 and all(s.demangled == s.name for s in hostile)
print("elapsed", time.monotonic() - start)
print("grown", (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - base) / 1024)
"""
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=30, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    figures = dict(line.split() for line in proc.stdout.splitlines() if line.startswith(("elapsed", "grown")))
    print(figures)
    assert float(figures["elapsed"]) < 1.0, figures
    assert float(figures["grown"]) < 64, figures  # MiB
    assert "ns::compute(int, int)  [_ZN2ns7computeEii]" in proc.stdout


def test_lookup_demangles_only_the_symbols_that_spell_the_name(tmp_path: Path) -> None:
    binary = build_hostile_binary(tmp_path, count=3, levels=6)
    info = symbols.elf_info(str(binary))
    symbols._demangle.cache_clear()
    assert symbols.resolve(binary, "ns::compute(double)").name == "_ZN2ns7computeEd"
    assert symbols._demangle.cache_info().currsize == 2  # the two ns::compute, none of the f<N>
    with pytest.raises(pyprobe.AmbiguousSymbolError, match="'ns::compute' matches 2 functions"):
        symbols.resolve(binary, "ns::compute")
    assert info.entries and all(isinstance(e.name, str) for e in info.entries)
    assert symbols.demangle(exploding_symbol(6)).startswith("f(a<int, int>, a<a<int, int>")  # short: demangled
    assert symbols.demangle(exploding_symbol(22)) == exploding_symbol(22)  # too long: kept raw
    assert symbols.demangle("_Z" + "x" * (symbols.MANGLED_MAX + 1)) == "_Z" + "x" * (symbols.MANGLED_MAX + 1)


@pytest.fixture
def chrooted(tmp_path: Path) -> Iterator[tuple[int, Path]]:
    """A process chrooted into a tree that holds a copy of utest as /usr/bin/env and two absolute links to it."""
    tree = tmp_path / "tree"
    (tree / "usr/bin").mkdir(parents=True)
    (tree / "opt").mkdir()
    shutil.copy(target("utest"), tree / "usr/bin/env")  # the host's /usr/bin/env is another program
    (tree / "usr/bin/app").symlink_to("/usr/bin/env")  # absolute: means the tree's env inside the chroot
    (tree / "opt/up").symlink_to("../../../usr/bin/env")  # '..' stops at the chroot's root
    code = "import os, sys, time; os.chroot(sys.argv[1]); os.chdir('/'); print('in', flush=True); time.sleep(60)"
    proc = subprocess.Popen([sys.executable, "-c", code, str(tree)], stdout=subprocess.PIPE)
    try:
        assert proc.stdout is not None and proc.stdout.readline() == b"in\n"
        assert os.readlink(f"/proc/{proc.pid}/root") == str(tree)
        yield proc.pid, tree
    finally:
        proc.kill()
        proc.wait()


def test_paths_resolve_inside_the_process_root(chrooted: tuple[int, Path]) -> None:
    pid, tree = chrooted
    copy = os.stat(tree / "usr/bin/env")
    for name in ("/usr/bin/app", "/opt/up", "/usr/bin/env", "/usr/../usr/bin/./app"):
        path = symbols.resolve_binary(name, pid)
        assert path.startswith(f"/proc/{pid}/root/"), path
        st = os.stat(path)
        assert (st.st_dev, st.st_ino) == (copy.st_dev, copy.st_ino), name  # the tree's file, not the host's
        assert symbols.resolve(name, "utest_add", pid=pid).binary == path


def test_a_path_missing_in_the_process_root_is_an_error(chrooted: tuple[int, Path]) -> None:
    pid, tree = chrooted
    assert os.path.exists("/usr/bin/true")  # on the host, not in the tree
    with pytest.raises(pyprobe.BinaryNotFoundError, match=f"no such file in the root of pid {pid}: /usr/bin/true"):
        symbols.resolve_binary("/usr/bin/true", pid)
    with pytest.raises(FileNotFoundError, match=f"pid {pid}"):
        symbols.resolve("/usr/bin/true", "main", pid=pid)
    (tree / "usr/bin/loop").symlink_to("/usr/bin/loop")
    with pytest.raises(pyprobe.AttachError, match="too many symbolic links"):
        symbols.resolve_binary("/usr/bin/loop", pid)


def test_the_identifier_a_lookup_filters_by_is_in_every_mangled_name_it_must_find() -> None:
    """For every C++ function of libstdc++ and the C++ targets, both its names spell what the filter looks for."""
    checked = 0
    for binary in ("libstdc++.so.6", str(target("args8")), str(target("utest"))):
        for sym in symbols.elf_info(symbols.resolve_binary(binary)).symbols:
            if not sym.name.startswith("_Z") or sym.demangled == sym.name:
                continue
            for wanted in (sym.demangled, sym.bare):
                spelled = symbols._spelled(wanted)
                assert spelled is None or spelled in sym.name, (sym.name, wanted, spelled)
            checked += 1
    assert checked > 1000
    assert symbols._spelled("ns::compute(int, int)") == "7compute"
    assert symbols._spelled("int f<int>(int)") == "1f"
    assert symbols._spelled("foo[abi:cxx11](int)") == "3foo"
    assert symbols._spelled("Foo::~Foo()") == "3Foo"
    for none in ("main::{lambda(int)#1}::operator()(int) const", "ns::operator<<(int)", "(anonymous namespace)::f()",
                 "std::allocator<char>::allocator()", "operator new(unsigned long)"):  # fmt: skip
        assert symbols._spelled(none) is None, none
