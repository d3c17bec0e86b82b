"""uprobes, uretprobes and uprobe_multi on the real kernel, against the C++, C and Go targets."""

from __future__ import annotations

import errno
import os
import re
import shutil
import struct
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

import pyprobe
from conftest import BUILD, open_fds, start, stop, target, test_object

pytestmark = pytest.mark.bpf

HIT = struct.Struct("<QqqqIIQ8q")
ADD_ENTRY, ADD_RETURN, ARGS8, GO_ENTRY, GO_RETURN, MULTI = 0, 1, 3, 4, 5, 6


def hit(obj: pyprobe.BpfObject, slot: int) -> tuple[int, ...]:
    return HIT.unpack(obj.maps["hits"].get_bytes(struct.pack("<I", slot)))


def wait_for(check: Callable[[], bool], timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.01)
    return False


@pytest.fixture
def uobj() -> Iterator[pyprobe.BpfObject]:
    with pyprobe.load(test_object("attach_uprobe")) as obj:
        yield obj


@pytest.mark.parametrize("name", ["_Z9utest_addii", "utest_add(int, int)", "utest_add"])
def test_utest_add_arguments_and_sum_by_every_name(
    uobj: pyprobe.BpfObject, utest: subprocess.Popen[bytes], name: str
) -> None:
    utest_path = str(target("utest"))
    entry = uobj.programs["add_entry"].attach_uprobe(utest_path, name, pid=utest.pid, cookie=7)
    ret = uobj.programs["add_return"].attach_uretprobe(utest_path, name, pid=utest.pid)
    assert isinstance(entry, pyprobe.UprobeLink)
    assert (entry.binary, entry.function, entry.pid, entry.retprobe) == (utest_path, "_Z9utest_addii", utest.pid, False)
    assert entry.offset == pyprobe.symbols.resolve(utest_path, "utest_add").offset
    assert ret.retprobe is True
    assert wait_for(lambda: hit(uobj, ADD_ENTRY)[0] > 2 and hit(uobj, ADD_RETURN)[0] > 2)
    _, a, b, _, pid, _, cookie, *_ = hit(uobj, ADD_ENTRY)
    assert (b, pid, cookie) == (3, utest.pid, 7)
    assert 0 <= a < 100
    ret_value = hit(uobj, ADD_RETURN)[3]
    assert 3 <= ret_value < 103  # a + 3
    entry.detach()
    ret.detach()
    assert uobj.links == []


def test_sec_auto_attach_by_bare_and_mangled_name() -> None:
    copy = Path("/tmp/pyprobe-tests/utest")
    copy.parent.mkdir(exist_ok=True)
    shutil.copy2(target("utest"), copy)
    proc = subprocess.Popen([str(copy), "-1", "1000"], stdout=subprocess.DEVNULL)
    try:
        with pyprobe.load(test_object("attach_auto")) as obj:
            links = obj.attach()
            assert sorted(type(link).__name__ for link in links) == ["UprobeLink", "UprobeLink"]
            assert {link.function for link in links if isinstance(link, pyprobe.UprobeLink)} == {"_Z9utest_subii"}

            def sub_hit() -> tuple[int, ...]:
                return struct.unpack("<QqqqQ", obj.maps["sub_hits"].get_bytes(struct.pack("<I", 0)))

            assert wait_for(lambda: sub_hit()[0] > 2 and sub_hit()[4] > 2)
            _, a, b, ret, _ = sub_hit()
            assert b == 7 and 0 <= a < 100
            assert -7 <= ret < 93
    finally:
        proc.kill()
        proc.wait()


def test_all_eight_arguments_at_entry(uobj: pyprobe.BpfObject) -> None:
    proc = start("args8", "-1", "1000")
    try:
        link = uobj.programs["args8_entry"].attach_uprobe(target("args8"), "args8", pid=proc.pid)
        assert link.function == "args8"
        assert wait_for(lambda: hit(uobj, ARGS8)[0] > 2)
        args = hit(uobj, ARGS8)[7:]
        assert args[:6] == (1, 2, 3, 4, 5, 6)
        assert 7 <= args[6] < 17  # 7 + i % 10, from the stack
        assert 8000 <= args[7] < 8010  # 8000 + i % 10, from the stack
        assert args[7] - args[6] == 7993
    finally:
        stop(proc)


def test_pid_filter_sees_only_that_process(uobj: pyprobe.BpfObject) -> None:
    first, second = start("utest", "-1", "500"), start("utest", "-1", "500")
    try:
        uobj.programs["add_entry"].attach_uprobe(target("utest"), "utest_add", pid=second.pid)
        assert wait_for(lambda: hit(uobj, ADD_ENTRY)[0] > 0)
        seen = set()
        for _ in range(30):
            seen.add(hit(uobj, ADD_ENTRY)[4])
            time.sleep(0.01)
        assert seen == {second.pid}
    finally:
        stop(first)
        stop(second)


def test_offset_without_function(uobj: pyprobe.BpfObject, utest: subprocess.Popen[bytes]) -> None:
    sym = pyprobe.symbols.resolve(target("utest"), "utest_add")
    link = uobj.programs["add_entry"].attach_uprobe(target("utest"), offset=sym.offset, pid=utest.pid)
    assert link.function is None and link.offset == sym.offset
    assert wait_for(lambda: hit(uobj, ADD_ENTRY)[0] > 0)


def test_library_name_with_pid(uobj: pyprobe.BpfObject, utest: subprocess.Popen[bytes]) -> None:
    link = uobj.programs["add_entry"].attach_uprobe("libc.so.6", "usleep", pid=utest.pid)
    maps = Path(f"/proc/{utest.pid}/maps").read_text()
    assert link.binary is not None and link.binary.endswith("/libc.so.6") and link.binary in maps
    assert link.function == "usleep"
    assert wait_for(lambda: hit(uobj, ADD_ENTRY)[0] > 0)


def test_process_in_another_mount_namespace(uobj: pyprobe.BpfObject, tmp_path: Path) -> None:
    if shutil.which("unshare") is None:
        pytest.skip("unshare (util-linux) is not installed")
    hidden = tmp_path / "hidden"
    hidden.mkdir()
    script = f"mount -t tmpfs none {hidden} && cp {target('utest')} {hidden}/utest && exec {hidden}/utest -1 1000"
    proc = subprocess.Popen(["unshare", "-m", "--propagation", "private", "sh", "-c", script], stdout=subprocess.PIPE)
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().startswith(b"utest pid")
        assert not (hidden / "utest").exists()  # only the process's mount namespace has it
        link = uobj.programs["add_entry"].attach_uprobe(hidden / "utest", "utest_add", pid=proc.pid)
        assert link.binary == f"/proc/{proc.pid}/root{hidden}/utest"
        assert wait_for(lambda: hit(uobj, ADD_ENTRY)[0] > 0)
        assert hit(uobj, ADD_ENTRY)[2] == 3
    finally:
        stop(proc)


@pytest.mark.uprobe_multi
def test_uprobe_multi_glob_with_cookies(uobj: pyprobe.BpfObject, utest: subprocess.Popen[bytes]) -> None:
    link = uobj.programs["multi"].attach_uprobe_multi(target("utest"), "_Z9utest_*", pid=utest.pid, cookies=[10, 20])
    assert isinstance(link, pyprobe.UprobeMultiLink)
    assert link.functions == ("_Z9utest_addii", "_Z9utest_subii")
    assert link.cookies == (10, 20)

    def cookies() -> dict[int, int]:
        m = uobj.maps["cookie_hits"]
        out = {}
        for key in (10, 20):
            value = m.lookup_bytes(struct.pack("<Q", key))
            if value is not None:
                out[key] = struct.unpack("<Q", value)[0]
        return out

    assert wait_for(lambda: len(cookies()) == 2)
    link.detach()


@pytest.mark.uprobe_multi
def test_uprobe_multi_list_of_demangled_names(uobj: pyprobe.BpfObject, utest: subprocess.Popen[bytes]) -> None:
    link = uobj.programs["multi"].attach_uprobe_multi(target("utest"), ["utest_add(int, int)", "utest_sub"])
    assert link.functions == ("_Z9utest_addii", "_Z9utest_subii")
    assert link.pid == -1
    assert wait_for(lambda: hit(uobj, MULTI)[0] > 2)


def test_uprobe_multi_before_6_6_raises_unsupported(uobj: pyprobe.BpfObject) -> None:
    """Where the kernel is older than uprobe_multi links (6.1), attach_uprobe_multi does not fall
    back to one uprobe per function: it raises UnsupportedError naming the feature and why."""
    status = pyprobe.features.probe("uprobe_multi")
    if status.available:
        pytest.skip("this kernel has uprobe_multi links: the uprobe_multi tests cover them")
    if status.cause != "kernel-version":
        pytest.skip(f"uprobe_multi is absent for another reason than the kernel version: {status.reason}")
    with pytest.raises(
        pyprobe.UnsupportedError, match=r"'uprobe_multi', Linux 6\.6\+\): Linux .* is older than 6\.6"
    ) as info:
        uobj.programs["multi"].attach_uprobe_multi(target("utest"), "_Z9utest_*")
    assert info.value.errno == errno.EOPNOTSUPP
    assert uobj.links == []


def go_target() -> str:
    if shutil.which("go") is None:
        pytest.skip("no Go toolchain (apt-get install -t bookworm-backports golang-go)")
    return str(target("gotarget"))


def test_go_function_entry(uobj: pyprobe.BpfObject) -> None:
    path = go_target()
    proc = start("gotarget", "-1", "1000")
    try:
        uobj.programs["go_entry"].attach_uprobe(path, "main.add", pid=proc.pid)
        assert wait_for(lambda: hit(uobj, GO_ENTRY)[0] > 2)
        _, a, b, *_ = hit(uobj, GO_ENTRY)
        assert 0 <= a < 100 and b == 1000
    finally:
        stop(proc)


def test_go_uretprobe_is_refused_and_return_sites_work(uobj: pyprobe.BpfObject) -> None:
    path = go_target()
    prog = uobj.programs["go_return"]
    with pytest.raises(pyprobe.AttachError, match=r"Go binary.*return_sites=True"):
        prog.attach_uretprobe(path, "main.add")
    assert uobj.links == []
    proc = start("gotarget", "-1", "1000")
    try:
        link = prog.attach_uretprobe(path, "main.add", pid=proc.pid, return_sites=True)
        assert link.retprobe is True and len(link.return_offsets) >= 2  # the early return and the sum
        sym = pyprobe.symbols.resolve(path, "main.add")
        assert all(sym.offset < off < sym.offset + sym.size for off in link.return_offsets)
        assert wait_for(lambda: hit(uobj, GO_RETURN)[0] > 2)
        assert 1000 <= hit(uobj, GO_RETURN)[3] < 1100  # a + 1000, read in rax at the ret
        with pytest.raises(pyprobe.BpfError, match="cannot be pinned"):
            link.pin("/sys/fs/bpf/pyprobe-test-go")
        link.detach()
        assert uobj.links == []
    finally:
        stop(proc)


# --- bad input: a typed error and nothing left attached -------------------------------------


def expect_refusal(uobj: pyprobe.BpfObject, exc: type[BaseException], match: str, call: Callable[[], object]) -> None:
    before = open_fds()
    with pytest.raises(exc, match=match):
        call()
    assert uobj.links == []
    assert open_fds() - before == set()


def test_missing_binary(uobj: pyprobe.BpfObject) -> None:
    prog = uobj.programs["add_entry"]
    expect_refusal(
        uobj, pyprobe.AttachError, "no such file: /nonexistent/bin", lambda: prog.attach_uprobe("/nonexistent/bin", "f")
    )


def test_directory(uobj: pyprobe.BpfObject, tmp_path: Path) -> None:
    prog = uobj.programs["add_entry"]
    expect_refusal(uobj, pyprobe.AttachError, "is a directory", lambda: prog.attach_uprobe(tmp_path, "f"))


def test_non_elf_file(uobj: pyprobe.BpfObject, tmp_path: Path) -> None:
    text = tmp_path / "script.sh"
    text.write_text("#!/bin/sh\necho hi\n")
    prog = uobj.programs["add_entry"]
    expect_refusal(uobj, pyprobe.AttachError, "not an ELF file", lambda: prog.attach_uprobe(text, "main"))


def test_unknown_symbol_names_binary_and_name(uobj: pyprobe.BpfObject) -> None:
    prog = uobj.programs["add_entry"]
    with pytest.raises(pyprobe.SymbolNotFoundError, match=f"no function 'nope' in {target('utest')}") as info:
        prog.attach_uprobe(target("utest"), "nope")
    assert isinstance(info.value, LookupError)
    assert uobj.links == []


def test_ambiguous_bare_name_lists_candidates(uobj: pyprobe.BpfObject) -> None:
    prog = uobj.programs["add_entry"]
    with pytest.raises(pyprobe.AmbiguousSymbolError) as info:
        prog.attach_uprobe(target("args8"), "overload")
    assert sorted(info.value.candidates) == [
        f"overload(double) [_Z8overloadd at {pyprobe.symbols.resolve(target('args8'), '_Z8overloadd').offset:#x}]",
        f"overload(int) [_Z8overloadi at {pyprobe.symbols.resolve(target('args8'), '_Z8overloadi').offset:#x}]",
    ]
    assert uobj.links == []


def test_stripped_binary(uobj: pyprobe.BpfObject) -> None:
    prog = uobj.programs["add_entry"]
    expect_refusal(
        uobj, pyprobe.SymbolNotFoundError, "stripped", lambda: prog.attach_uprobe(target("args8-stripped"), "overload")
    )


def test_nonexistent_pid(uobj: pyprobe.BpfObject) -> None:
    prog = uobj.programs["add_entry"]
    pid = 2**22 + 12345
    while os.path.exists(f"/proc/{pid}"):
        pid += 1
    with pytest.raises(pyprobe.AttachError, match=f"no process with pid {pid}") as info:
        prog.attach_uprobe(target("utest"), "utest_add", pid=pid)
    assert info.value.errno == 3  # ESRCH
    assert uobj.links == []


def test_wrong_program_kind(uobj: pyprobe.BpfObject) -> None:
    with pyprobe.load(test_object("minimal")) as other:
        tp = other.programs["on_getpid"]
        expect_refusal(other, pyprobe.AttachError, "is a tracepoint program.*attach_uprobe needs",
                       lambda: tp.attach_uprobe(target("utest"), "utest_add"))  # fmt: skip
    expect_refusal(uobj, pyprobe.AttachError, "not a uprobe.multi program",
                   lambda: uobj.programs["add_entry"].attach_uprobe_multi(target("utest"), "utest_*"))  # fmt: skip
    expect_refusal(uobj, pyprobe.AttachError, "multi-probe program",
                   lambda: uobj.programs["multi"].attach_uprobe(target("utest"), "utest_add"))  # fmt: skip


def test_bad_argument_types(uobj: pyprobe.BpfObject) -> None:
    prog = uobj.programs["add_entry"]
    with pytest.raises(TypeError, match="cookie must be an int"):
        prog.attach_uprobe(target("utest"), "utest_add", cookie="1")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="pid -2 is out of range"):
        prog.attach_uprobe(target("utest"), "utest_add", pid=-2)
    with pytest.raises(ValueError, match="give a function, or an offset"):
        prog.attach_uprobe(target("utest"))
    with pytest.raises(ValueError, match="3 cookies for 2 functions"):
        uobj.programs["multi"].attach_uprobe_multi(target("utest"), "_Z9utest_*", cookies=[1, 2, 3])
    with pytest.raises(pyprobe.SymbolNotFoundError, match="no function matches 'zzz_\\*'"):
        uobj.programs["multi"].attach_uprobe_multi(target("utest"), "zzz_*")
    assert uobj.links == []


def test_build_dir_is_used() -> None:
    assert (BUILD / "tests" / "targets" / "args8").exists()


def test_uprobe_event_opened_before_load_then_attached(utest: subprocess.Popen[bytes]) -> None:
    """A uprobe registered as a perf event before its object loads fires once a program is attached to it."""
    sym = pyprobe.symbols.resolve(target("utest"), "utest_add")
    before = open_fds()
    entry = pyprobe.perf_event.open_uprobe(str(target("utest")), sym.offset, pid=utest.pid)
    ret = pyprobe.perf_event.open_uprobe(str(target("utest")), sym.offset, retprobe=True, pid=utest.pid)
    assert (entry.cpu, entry.pid) == (-1, utest.pid) and entry.event.startswith("uprobe ")
    assert ret.event.startswith("uretprobe ")
    with pyprobe.load(test_object("attach_uprobe")) as obj:
        with entry, ret:
            links = [
                obj.programs["add_entry"].attach_perf_event(entry, cookie=9),
                obj.programs["add_return"].attach_perf_event(ret),
            ]
        assert entry.closed and not links[0].closed  # the link holds its own reference
        assert wait_for(lambda: hit(obj, ADD_ENTRY)[0] > 2 and hit(obj, ADD_RETURN)[0] > 2)
        _, a, b, _, pid, _, cookie, *_ = hit(obj, ADD_ENTRY)
        assert (b, pid, cookie) == (3, utest.pid, 9) and 0 <= a < 100
        assert 3 <= hit(obj, ADD_RETURN)[3] < 103
    assert open_fds() == before


def test_uprobe_event_errors_name_the_binary(tmp_path: Path) -> None:
    with pytest.raises(pyprobe.AttachError, match=r"/nonexistent/bin.*not a file"):
        pyprobe.perf_event.open_uprobe("/nonexistent/bin", 0x1000)
    with pytest.raises(pyprobe.AttachError, match=re.escape(str(tmp_path))):
        pyprobe.perf_event.open_uprobe(str(tmp_path), 0x1000)
    with pytest.raises(TypeError, match="offset"):
        pyprobe.perf_event.open_uprobe(str(target("utest")), -1)
    with pytest.raises(TypeError, match="pid"):
        pyprobe.perf_event.open_uprobe(str(target("utest")), 0, pid=-5)
    with pytest.raises(pyprobe.AttachError, match=r"utest.*pid 2147483646"):
        pyprobe.perf_event.open_uprobe(str(target("utest")), 0, pid=2**31 - 2)
