"""BpfObject and Program against the real kernel: open, load, attach, test_run, close."""

from __future__ import annotations

import array
import errno
import gc
import logging
import os
import struct
import subprocess
import time
import warnings

import pytest

import pyprobe
from conftest import open_fds, target, test_object
from pyprobe._data import probe_path

pytestmark = pytest.mark.bpf


def test_open_then_load_moves_through_states() -> None:
    obj = pyprobe.open(test_object("minimal"))
    assert obj.state == "opened"
    assert obj.name == "minimal"
    assert obj.path == str(test_object("minimal"))
    assert set(obj.programs) == {"add", "on_getpid", "on_call"}
    assert set(obj.maps) == {"counts"}
    assert obj.programs["add"].fd == -1
    assert obj.load() is obj
    assert obj.state == "loaded"
    obj.close()
    assert obj.state == "closed"


def test_program_attributes() -> None:
    with pyprobe.load(test_object("minimal")) as obj:
        add = obj.programs["add"]
        assert add.name == "add"
        assert add.section == "syscall"
        assert add.type is pyprobe.ProgramType.SYSCALL
        assert obj.programs["on_getpid"].type is pyprobe.ProgramType.TRACEPOINT
        assert obj.programs["on_call"].type is pyprobe.ProgramType.KPROBE  # uprobes are kprobe-type programs
        assert add.fd >= 0
        assert add.id > 0
        assert len(add.tag) == 16 and int(add.tag, 16) >= 0
        assert add.instruction_count > 0
        assert add.autoload is True


def test_map_attributes() -> None:
    with pyprobe.load(test_object("minimal")) as obj:
        counts = obj.maps["counts"]
        assert counts.type is pyprobe.MapType.HASH
        assert (counts.key_size, counts.value_size, counts.max_entries) == (4, 8, 64)
        assert counts.fd >= 0
        assert counts.id > 0


def test_load_from_bytes_with_name() -> None:
    data = test_object("minimal").read_bytes()
    with pyprobe.load(data, name="from_memory") as obj:
        assert obj.name == "from_memory"
        assert obj.path is None
        assert obj.programs["add"].test_run(ctx=struct.pack("<ii", 1, 2)).retval == 3


def test_test_run_returns_the_programs_value() -> None:
    with pyprobe.load(test_object("minimal")) as obj:
        result = obj.programs["add"].test_run(ctx=struct.pack("<ii", 40, 2))
        assert result.retval == 42
        assert result.data == b""
        assert result.duration_ns >= 0


def test_test_run_rejects_bad_arguments() -> None:
    with pyprobe.load(test_object("minimal")) as obj:
        add = obj.programs["add"]
        with pytest.raises(TypeError, match="bytes"):
            add.test_run(ctx="not bytes")  # type: ignore[arg-type]
        with pytest.raises(ValueError, match="repeat"):
            add.test_run(ctx=b"\0" * 8, repeat=0)


def test_autoload_off_leaves_program_unloaded() -> None:
    obj = pyprobe.open(test_object("minimal"))
    obj.programs["on_call"].autoload = False
    obj.load()
    with obj:
        assert obj.programs["on_call"].fd == -1
        assert obj.programs["add"].fd >= 0
        with pytest.raises(pyprobe.BpfError, match="before load"):
            obj.programs["add"].autoload = False
        with pytest.raises(pyprobe.BpfError, match="autoload off"):
            obj.programs["on_call"].test_run()


def test_max_entries_is_set_before_load_only() -> None:
    obj = pyprobe.open(test_object("minimal"))
    obj.maps["counts"].max_entries = 1024
    obj.load()
    with obj:
        assert obj.maps["counts"].max_entries == 1024
        with pytest.raises(pyprobe.MapError, match="before load"):
            obj.maps["counts"].max_entries = 8
        with pytest.raises(ValueError, match="positive"):
            obj.maps["counts"].max_entries = 0


def test_auto_attach_from_section_names() -> None:
    with pyprobe.load(test_object("minimal")) as obj:
        links = obj.attach()
        # Only the tracepoint names a full target; "syscall" and bare "uprobe" are skipped.
        assert [link.program.name for link in links if link.program] == ["on_getpid"]
        assert obj.links == links
        for _ in range(5):
            os.getpid()
        count = struct.unpack("<Q", obj.maps["counts"].get_bytes(struct.pack("<I", os.getpid())))[0]
        assert count >= 5
        links[0].detach()
        assert links[0].closed
        assert obj.links == []


def test_attach_without_target_is_a_clear_error() -> None:
    with pyprobe.load(test_object("minimal")) as obj:
        with pytest.raises(pyprobe.AttachError, match="names no target") as info:
            obj.programs["on_call"].attach()
        assert "on_call" in str(info.value)


def test_attach_before_load_is_a_clear_error() -> None:
    with pyprobe.open(test_object("minimal")) as obj, pytest.raises(pyprobe.BpfError, match="load"):
        obj.attach()


def test_uprobe_on_the_cpp_target_sees_arguments_and_returns() -> None:
    utest = target("utest")
    with pyprobe.load(probe_path("demo")) as obj:
        proc = subprocess.Popen([str(utest), "-1", "0"], stdout=subprocess.DEVNULL)
        try:
            obj.programs["demo_entry"].attach_uprobe(utest, "_Z9utest_subii", pid=proc.pid, cookie=1)
            obj.programs["demo_return"].attach_uprobe(utest, "_Z9utest_subii", pid=proc.pid, cookie=1, retprobe=True)
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                a, b, ret, calls, returns = struct.unpack("<qqqQQ", obj.maps["calls"].get_bytes(struct.pack("<I", 1)))
                if calls >= 100 and returns >= 100:
                    break
                time.sleep(0.05)
        finally:
            proc.kill()
            proc.wait()
        assert calls >= 100 and returns >= 100
        assert b == 7 and 0 <= a < 100
        assert ret in range(-7, 93)
        untouched = obj.maps["calls"].get_bytes(struct.pack("<I", 0))
        assert untouched == b"\0" * 40


def test_verifier_rejection_raises_load_error_with_log() -> None:
    with pytest.raises(pyprobe.LoadError) as info:
        pyprobe.load(test_object("rejected"))
    err = info.value
    assert err.program == "unchecked"
    assert "unchecked" in str(err)
    assert "map_value_or_null" in err.log
    assert "map_value_or_null" in str(err)  # the one-line summary
    assert err.errno == 13  # EACCES
    assert isinstance(err, pyprobe.BpfError) and isinstance(err, OSError)


def test_closed_object_refuses_use() -> None:
    obj = pyprobe.load(test_object("minimal"))
    add = obj.programs["add"]
    link = obj.attach()[0]
    obj.close()
    obj.close()  # idempotent
    assert link.closed
    with pytest.raises(pyprobe.ClosedError, match="minimal"):
        add.test_run(ctx=b"\0" * 8)
    with pytest.raises(pyprobe.ClosedError):
        _ = obj.maps["counts"].fd
    with pytest.raises(pyprobe.ClosedError):
        obj.load()
    link.detach()  # already detached with its object: nothing to do


def test_link_pin_outlives_its_object(tmp_path_factory: pytest.TempPathFactory) -> None:
    pin = f"/sys/fs/bpf/pyprobe-test-link-{os.getpid()}"
    with pyprobe.load(test_object("minimal")) as obj:
        link = obj.attach()[0]
        link.pin(pin)
        assert link.pin_path == pin
        link_id = link.id
    assert os.path.exists(pin)
    with pyprobe.Link.from_pinned(pin) as again:
        assert again.id == link_id
        again.unpin()
    assert not os.path.exists(pin)


def test_missing_names_say_what_exists() -> None:
    with pyprobe.load(test_object("minimal")) as obj:
        with pytest.raises(KeyError, match=r"no program 'nope' in object 'minimal'.*add"):
            obj.programs["nope"]
        with pytest.raises(KeyError, match=r"no map 'nope'.*counts"):
            obj.maps["nope"]


def test_bad_sources_raise_typed_errors(tmp_path: pytest.TempPathFactory) -> None:
    with pytest.raises(pyprobe.LoadError, match=r"/no/such/file\.bpf\.o"):
        pyprobe.open("/no/such/file.bpf.o")
    with pytest.raises(pyprobe.LoadError, match="garbage"):
        pyprobe.open(b"not an ELF file", name="garbage")
    with pytest.raises(TypeError, match="path or bytes"):
        pyprobe.open(42)  # type: ignore[arg-type]


def test_open_takes_any_buffer_by_its_bytes() -> None:
    data = test_object("minimal").read_bytes()
    items = array.array("I")
    items.frombytes(data + bytes(-len(data) % 4))  # an ELF file may end in zeros
    with pyprobe.load(memoryview(items), name="from_array") as obj:
        assert obj.name == "from_array" and "counts" in obj.maps
    with pyprobe.open(memoryview(data)[::1]) as obj:
        assert obj.state == "opened"


def test_missing_object_file_is_a_file_not_found_error(tmp_path: pytest.TempPathFactory) -> None:
    with pytest.raises(FileNotFoundError, match=r"/no/such/file\.bpf\.o") as info:
        pyprobe.open("/no/such/file.bpf.o")
    assert isinstance(info.value, pyprobe.LoadError) and info.value.errno == errno.ENOENT
    assert info.value.filename == "/no/such/file.bpf.o"
    with pytest.raises(FileNotFoundError, match=r"/no/such/vmlinux"):
        pyprobe.open(test_object("minimal"), btf_path="/no/such/vmlinux")
    with pytest.raises(pyprobe.LoadError, match=r"/no/such/dir\.bpf\.o"):
        pyprobe.load("/no/such/dir.bpf.o")


def test_libbpf_error_codes_are_named() -> None:
    with pytest.raises(pyprobe.LoadError) as info:
        pyprobe.open(b"\x7fELF" + bytes(200), name="junk")
    text = str(info.value)
    assert info.value.errno == 4001 and "Unknown error" not in text
    assert "LIBBPF_ERRNO__FORMAT" in text and "BPF object format invalid" in text


def test_libbpf_messages_reach_logging(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.DEBUG, logger="pyprobe.libbpf"), pyprobe.load(test_object("minimal")):
        pass
    assert any(r.name == "pyprobe.libbpf" and r.levelno == logging.DEBUG for r in caplog.records)
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="pyprobe.libbpf"), pyprobe.load(test_object("minimal")):
        pass
    assert not [r for r in caplog.records if r.levelno < logging.WARNING]


def test_unclosed_object_is_finalized_with_a_warning() -> None:
    before = open_fds()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        obj = pyprobe.load(test_object("minimal"))
        obj.attach()
        del obj
        gc.collect()
    assert any(issubclass(w.category, ResourceWarning) for w in caught)
    assert open_fds() <= before


def test_no_fd_leak_over_10000_cycles() -> None:
    path = test_object("minimal")
    data = path.read_bytes()
    for _ in range(50):  # warm up lazily opened fds (libbpf feature probes, vmlinux BTF)
        pyprobe.load(path).close()
    before = len(open_fds())
    for i in range(10_000):
        obj = pyprobe.open(data if i % 2 else path)
        obj.load()
        obj.close()
    assert len(open_fds()) == before


def test_test_run_of_a_program_type_the_kernel_cannot_run() -> None:
    with (
        pyprobe.load(test_object("minimal")) as obj,
        pytest.raises(pyprobe.UnsupportedError, match=r"on_call.*ENOTSUPP"),
    ):
        obj.programs["on_call"].test_run()  # uprobe (kprobe-type) programs have no BPF_PROG_RUN


def test_a_program_kind_the_kernel_is_too_old_for_is_unsupported_naming_it() -> None:
    """A netfilter program (Linux 6.4) on an older kernel: UnsupportedError naming the kind and the program."""
    from pyprobe import features

    if features.available("netfilter"):
        pytest.skip("this kernel has netfilter programs: the kind's own tests cover them (this runs under 6.1)")
    with (
        pyprobe.open(test_object("network")) as obj,
        pytest.raises(pyprobe.UnsupportedError, match=r"program 'nf_filter'.*netfilter programs are refused"),
    ):
        obj.load()


def test_a_map_kind_the_kernel_is_too_old_for_is_unsupported_naming_it() -> None:
    """A BPF_MAP_TYPE_CGRP_STORAGE map (Linux 6.2) on an older kernel: UnsupportedError naming the map."""
    from pyprobe import features

    if features.available("cgrp_storage"):
        pytest.skip("this kernel has cgroup local storage: the kind's own tests cover it (this runs under 6.1)")
    with (
        pyprobe.open(test_object("cgroup_storage")) as obj,
        pytest.raises(pyprobe.UnsupportedError, match=r"map 'cgroup_values'.*cgrp_storage maps are refused"),
    ):
        obj.load()
