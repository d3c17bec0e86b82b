"""The kernel-only attach kinds for real, where the kernel allows them (the matrix's 6.1 and 6.12 in
tests/vm; on a kernel that refuses them the feature markers skip these tests with the reason):
kprobe and kretprobe with stack arguments, fentry and fexit on kernel and BPF functions, fmod_ret
and an LSM program."""

from __future__ import annotations

import errno
import mmap
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

import pyprobe
from conftest import test_object
from pyprobe import features

pytestmark = pytest.mark.bpf

PAGE = mmap.PAGESIZE
KERNEL_BASE = 0xFFFF_8000_0000_0000  # x86-64: kernel addresses are at or above this


def open_only(*programs: str, **rodata: int) -> pyprobe.BpfObject:
    """attach_kernel.bpf.o with only PROGRAMS loaded, watching this process, with RODATA set."""
    obj = pyprobe.open(test_object("attach_kernel"))
    for name, prog in obj.programs.items():
        prog.autoload = name in programs
    obj.rodata.target_pid = os.getpid()
    for name, value in rodata.items():
        setattr(obj.rodata, name, value)
    return obj


def mapping_start(path: Path, offset: int) -> int:
    """Start address of this process's mapping of PATH at file OFFSET (/proc/self/maps)."""
    with open("/proc/self/maps") as f:
        for line in f:
            fields = line.split()
            if len(fields) >= 6 and fields[5] == str(path) and int(fields[2], 16) == offset:
                return int(fields[0].split("-")[0], 16)
    raise AssertionError(f"no mapping of {path} at offset {offset:#x} in /proc/self/maps")


# --- kprobe and kretprobe ---------------------------------------------------------------------


def do_mmap_populate_arg() -> int:
    """Which argument of do_mmap is ``populate``, per the kernel's BTF.

    6.1:  do_mmap(file, addr, len, prot, flags, pgoff, populate, uf)            8 arguments
    6.6+: do_mmap(file, addr, len, prot, flags, vm_flags, pgoff, populate, uf)  9 arguments
    """
    return 8 if features.kernel_version()[:2] >= (6, 6) else 7


@pytest.mark.kprobe
def test_kprobe_and_kretprobe_read_stack_arguments(tmp_path: Path) -> None:
    """do_mmap takes 8 or 9 arguments: the 7th and 8th come from the kernel stack (pyprobe_karg)."""
    path = tmp_path / "mapped"
    path.write_bytes(bytes(8 * PAGE))
    length, pgoff = 3 * PAGE, 4  # an unusual length: the probe records only that call
    populate_arg = do_mmap_populate_arg()
    with open_only("on_do_mmap", "on_do_mmap_return", target_len=length, populate_arg=populate_arg) as obj:
        obj.load()
        entry = obj.programs["on_do_mmap"].attach_kprobe("do_mmap", cookie=0xC0FFEE)
        exit_ = obj.programs["on_do_mmap_return"].attach_kprobe("do_mmap", retprobe=True)
        assert isinstance(entry, pyprobe.KprobeLink) and isinstance(exit_, pyprobe.KprobeLink)
        assert (entry.function, entry.retprobe, exit_.function, exit_.retprobe) == ("do_mmap", False, "do_mmap", True)
        flags = mmap.MAP_SHARED | mmap.MAP_POPULATE
        with open(path, "r+b") as f, mmap.mmap(f.fileno(), length, flags=flags, offset=pgoff * PAGE) as m:
            start = mapping_start(path, pgoff * PAGE)
            assert len(m) == length
        call = obj.bss.mmap_call
        entry.detach()
        exit_.detach()
    args, deref = list(call.args), list(call.deref)
    assert (call.entries, call.returns) == (1, 1)
    assert call.cookie == 0xC0FFEE
    assert args[0] >= KERNEL_BASE  # struct file *
    assert args[1] == 0  # addr: no hint
    assert args[2] == length
    assert args[3] == mmap.PROT_READ | mmap.PROT_WRITE
    assert args[4] & flags == flags
    if populate_arg == 7:
        assert args[5] == pgoff  # 6th, in a register
        populate, uf, uf_next = args[6], args[7], deref[1]  # 7th and 8th, on the stack
    else:
        assert args[5] == 0  # vm_flags: none from mmap(2)
        assert args[6] == pgoff  # 7th, on the stack
        populate, uf, uf_next = args[7], args[8], deref[2]  # 8th and 9th, on the stack
    assert populate >= KERNEL_BASE  # unsigned long *populate, in the caller's frame
    assert uf >= KERNEL_BASE and uf_next == uf  # struct list_head *uf: LIST_HEAD(uf), empty, points to itself
    assert call.populated == length  # MAP_POPULATE: do_mmap set *populate = len, read at return
    assert call.ret == start  # kretprobe: the address of the new mapping


# --- fentry and fexit -------------------------------------------------------------------------


@pytest.mark.fentry
def test_fentry_and_fexit_on_a_kernel_function() -> None:
    with open_only("on_getpgid_entry", "on_getpgid_exit") as obj:
        obj.load()
        entry = obj.programs["on_getpgid_entry"].attach_trace()
        exit_ = obj.programs["on_getpgid_exit"].attach_trace()
        assert (entry.kind, entry.target, exit_.kind, exit_.target) == ("fentry", "do_getpgid", "fexit", "do_getpgid")
        pgid = os.getpgid(os.getpid())
        call = obj.bss.getpgid_call
        assert (call.entries, call.exits) == (1, 1)
        assert call.entry_pid == call.exit_pid == os.getpid()
        assert call.ret == pgid  # fexit sees the return value
        entry.detach()
        exit_.detach()
        os.getpgid(os.getpid())
        assert obj.bss.getpgid_call.entries == 1


@pytest.mark.fentry
def test_fentry_and_fexit_on_a_bpf_global_function() -> None:
    with pyprobe.open(test_object("attach_freplace")) as target_obj:
        target_obj.programs["replacement"].autoload = False
        target_obj.load()
        target = target_obj.programs["target"]
        with open_only("on_bpf_entry", "on_bpf_exit") as obj:
            obj.programs["on_bpf_entry"].set_attach_target(target, "decide")
            obj.programs["on_bpf_exit"].set_attach_target(target, "decide")
            obj.load()
            entry = obj.programs["on_bpf_entry"].attach_trace()
            exit_ = obj.programs["on_bpf_exit"].attach_trace()
            assert (entry.kind, entry.target, exit_.kind, exit_.target) == ("fentry", "decide", "fexit", "decide")
            assert target.test_run(ctx=bytes(4)).retval == 42  # target() returns decide(41)
            call = obj.bss.bpf_call
            assert (call.entries, call.exits) == (1, 1)
            assert call.entry_x == call.exit_x == 41
            assert call.ret == 42


# --- fmod_ret and LSM -------------------------------------------------------------------------


def deny(obj: pyprobe.BpfObject, path: Path) -> None:
    """Points the object's deny_ino and deny_dev at PATH."""
    st = path.stat()
    obj.bss.deny_ino = st.st_ino
    obj.bss.deny_dev = os.major(st.st_dev) << 20 | os.minor(st.st_dev)  # the kernel's dev_t


@pytest.fixture
def files(tmp_path: Path) -> Iterator[tuple[Path, Path]]:
    """Two files on a plain tmpfs: the BPF side matches inode and device, which a stacked
    filesystem (an overlay over /tmp, as in the VM runner) reports differently to stat()."""
    base = Path(tempfile.mkdtemp(dir="/dev/shm")) if os.path.isdir("/dev/shm") else tmp_path
    denied, allowed = base / "denied", base / "allowed"
    denied.write_text("no")
    allowed.write_text("yes")
    yield denied, allowed
    if base != tmp_path:
        shutil.rmtree(base, ignore_errors=True)


@pytest.mark.fmod_ret
def test_fmod_ret_on_an_lsm_hook_fails_one_open(files: tuple[Path, Path]) -> None:
    denied, allowed = files
    with open_only("fail_security_file_open") as obj:
        obj.load()
        deny(obj, denied)
        link = obj.programs["fail_security_file_open"].attach_trace()
        assert (link.kind, link.target) == ("fmod_ret", "security_file_open")
        with pytest.raises(PermissionError) as info:
            denied.read_text()
        assert info.value.errno == errno.EACCES
        assert allowed.read_text() == "yes"
        assert obj.bss.fmod_denied == 1
        link.detach()
        assert denied.read_text() == "no"


def modify_return_test_is_modifiable() -> bool:
    """fmod_ret may modify bpf_modify_return_test from Linux 6.2, before only with error injection."""
    config = features.kernel_config() or {}
    return features.kernel_version()[:2] >= (6, 2) or config.get("CONFIG_FUNCTION_ERROR_INJECTION") == "y"


@pytest.mark.fmod_ret
def test_fmod_ret_replaces_the_return_value() -> None:
    """BPF_PROG_TEST_RUN of an fmod_ret program calls bpf_modify_return_test(1, &b) (b = 2), which
    increments b and returns 1 + b; the retval is side_effects << 16 | sum of returns (6.6+ adds a
    second test function to both). A non-zero fmod_ret return skips the function and replaces its
    return: one side effect less, 1234 instead of 4."""
    if not modify_return_test_is_modifiable():
        major, minor, _ = features.kernel_version()
        pytest.skip(f"Linux {major}.{minor} < 6.2 without CONFIG_FUNCTION_ERROR_INJECTION: not modifiable")
    with open_only("on_modify_return", fmod_retval=1234) as obj:
        obj.load()
        prog = obj.programs["on_modify_return"]
        unmodified = prog.test_run().retval
        side_effects, returns = divmod(unmodified, 1 << 16)
        assert side_effects >= 1 and returns >= 4
        link = prog.attach_trace()
        assert (link.kind, link.target) == ("fmod_ret", "bpf_modify_return_test")
        assert prog.test_run().retval == (side_effects - 1) << 16 | (returns - 4 + 1234)
        assert (obj.bss.fmod_calls, obj.bss.fmod_a, obj.data.fmod_prev_ret) == (1, 1, 0)
        link.detach()
        assert prog.test_run().retval == unmodified


@pytest.mark.lsm
def test_lsm_program_denies_opening_one_file(files: tuple[Path, Path]) -> None:
    denied, allowed = files
    with open_only("deny_file_open") as obj:
        obj.load()
        deny(obj, denied)
        link = obj.programs["deny_file_open"].attach_trace()
        assert (link.kind, link.target) == ("lsm", "file_open")
        with pytest.raises(PermissionError) as info:
            denied.read_text()
        assert info.value.errno == errno.EPERM
        assert allowed.read_text() == "yes"
        assert obj.bss.lsm_denied == 1 and obj.bss.lsm_calls >= 2
        link.detach()
        assert denied.read_text() == "no"
