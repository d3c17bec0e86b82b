"""Iterators, user ring buffers, struct_ops and custom SEC() handlers on the real kernel.

Each kind is shown working: the iterators list this process, its files, its maps, a map's
elements and its sockets; a SEC("syscall") program drains what Python wrote into a user ring
buffer; a TCP connection runs on a congestion control written in BPF; programs in sections
libbpf does not know load and attach through registered handlers.
"""

from __future__ import annotations

import ctypes
import errno
import os
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

import pyprobe
from conftest import need_feature, open_fds, test_object

pytestmark = pytest.mark.bpf


class TaskRec(ctypes.Structure):
    _fields_ = [("pid", ctypes.c_uint32), ("tid", ctypes.c_uint32), ("comm", ctypes.c_char * 16)]


class URec(ctypes.Structure):
    _fields_ = [("seq", ctypes.c_uint64), ("value", ctypes.c_uint64)]


def my_comm() -> str:
    return Path("/proc/self/comm").read_text().strip()


@pytest.fixture
def iters() -> Iterator[pyprobe.BpfObject]:
    spec = pyprobe.open(test_object("iter_kinds"))
    spec.rodata.target_tgid = os.getpid()
    with spec.load() as obj:
        yield obj


# --- BPF iterators -------------------------------------------------------------------------


def test_task_iterator_lists_this_process(iters: pyprobe.BpfObject) -> None:
    need_feature("iter_task")
    link = iters.programs["task_lines"].attach_iter()
    assert isinstance(link, pyprobe.IterLink) and link.kind == "task"
    lines = list(link.lines())
    assert f"{os.getpid()} {my_comm()}" in lines
    assert len(lines) > 5  # every process of the machine, one line each
    assert link.read().decode().splitlines() != []


def test_task_records_by_btf_name_and_by_ctypes(iters: pyprobe.BpfObject) -> None:
    need_feature("iter_task")
    link = iters.programs["task_records"].attach_iter()
    mine = [r for r in link.records("task_rec") if r.pid == os.getpid()]
    assert mine and all(r.comm.decode() for r in mine)
    assert any(r.tid == os.getpid() and r.comm.decode() == my_comm() for r in mine)
    typed = [r for r in link.records(TaskRec) if r.pid == os.getpid()]
    assert [(r.pid, r.tid) for r in typed] == [(r.pid, r.tid) for r in mine]


def test_task_iterator_limited_to_one_process(iters: pyprobe.BpfObject) -> None:
    need_feature("iter_task_params")
    started = threading.Event()
    stop = threading.Event()
    thread = threading.Thread(target=lambda: (started.set(), stop.wait(10)))
    thread.start()
    started.wait()
    try:
        link = iters.programs["task_records"].attach_iter(pid=os.getpid())
        assert link.pid == os.getpid()
        records = list(link.records(TaskRec))
        assert {r.pid for r in records} == {os.getpid()}
        assert len(records) >= 2  # this thread and the one started above
        too_big = ctypes.c_char * (ctypes.sizeof(TaskRec) * len(records) + 1)
        with pytest.raises(pyprobe.BpfError, match=f"not a whole record of {ctypes.sizeof(too_big)} bytes") as exc:
            list(link.records(too_big))
        assert exc.value.errno == errno.EBADMSG
    finally:
        stop.set()
        thread.join()


def test_task_file_iterator_shows_open_fds(iters: pyprobe.BpfObject, tmp_path: Path) -> None:
    need_feature("iter_task_file")
    path = tmp_path / "probe-file"
    path.write_bytes(b"x")
    fd = os.open(path, os.O_RDONLY)
    try:
        lines = set(iters.programs["task_files"].attach_iter().lines())
        assert f"{fd} {os.fstat(fd).st_ino}" in lines
    finally:
        os.close(fd)
    lines = set(iters.programs["task_files"].attach_iter().lines())
    assert not any(line.split()[0] == str(fd) and line.endswith(f" {path.stat().st_ino}") for line in lines)


def test_bpf_map_iterator_lists_the_objects_maps(iters: pyprobe.BpfObject) -> None:
    need_feature("iter_bpf_map")
    lines = set(iters.programs["bpf_maps"].attach_iter().lines())
    assert f"{iters.maps['numbers'].id} numbers" in lines


def test_map_elem_iterator_sums_a_filled_map(iters: pyprobe.BpfObject) -> None:
    need_feature("iter_bpf_map_elem")
    numbers = iters.maps["numbers"]
    for i in range(100):
        numbers[i] = i * 7
    link = iters.programs["elem_records"].attach_iter(map=numbers)
    assert (link.kind, link.map_name, link.map_id) == ("bpf_map_elem", "numbers", numbers.id)
    records = list(link.records("elem_rec"))
    assert sorted(r.key for r in records) == list(range(100))
    assert sum(r.value for r in records) == 7 * sum(range(100))
    assert iters.bss.elem_sum == 7 * sum(range(100)) and iters.bss.elem_count == 100
    with pytest.raises(pyprobe.AttachError, match="walks one map and none was given"):
        iters.programs["elem_records"].attach_iter()
    with pytest.raises(ValueError, match="a map is an argument of"):
        iters.programs["task_lines"].attach_iter(map=numbers)


def test_tcp_and_udp_iterators_show_a_socket_of_this_test(iters: pyprobe.BpfObject) -> None:
    need_feature("iter_tcp")
    need_feature("iter_udp")
    with socket.socket() as server, socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
        server.bind(("127.0.0.1", 0))
        server.listen()
        udp.bind(("127.0.0.1", 0))
        tcp_port, udp_port = server.getsockname()[1], udp.getsockname()[1]
        tcp_lines = set(iters.programs["tcp_sockets"].attach_iter().lines())
        assert f"{socket.AF_INET} {tcp_port} 10" in tcp_lines  # 10: TCP_LISTEN
        udp_lines = set(iters.programs["udp_sockets"].attach_iter().lines())
        assert f"{socket.AF_INET} {udp_port}" in udp_lines
    assert f"{socket.AF_INET} {tcp_port} 10" not in set(iters.programs["tcp_sockets"].attach_iter().lines())


def test_auto_attach_skips_the_map_iterator(iters: pyprobe.BpfObject) -> None:
    links = iters.attach()
    kinds = sorted(link.kind for link in links if isinstance(link, pyprobe.IterLink))
    assert kinds == ["bpf_map", "task", "task", "task_file", "tcp", "udp"]
    with pytest.raises(pyprobe.AttachError, match="names no target"):
        iters.programs["elem_records"].attach()


def test_each_read_owns_and_closes_its_iterator_fd(iters: pyprobe.BpfObject) -> None:
    link = iters.programs["task_lines"].attach_iter()
    before = open_fds()
    lines = link.lines()
    next(lines)
    assert len(open_fds() - before) == 1  # the iterator fd, while the generator runs
    lines.close()
    link.read()
    assert open_fds() == before
    with pytest.raises(pyprobe.BpfError, match="passes max_bytes=10") as exc:
        link.read(max_bytes=10)
    assert exc.value.errno == errno.EFBIG
    assert open_fds() == before
    fd = link.open_fd()
    link.close()
    assert os.read(fd, 1 << 16)  # the iterator fd holds the kernel link
    os.close(fd)
    with pytest.raises(pyprobe.ClosedError):
        link.read()


def test_pinned_iterator_link_reads_after_its_object_closed(iters: pyprobe.BpfObject) -> None:
    path = f"/sys/fs/bpf/pyprobe_iter_{os.getpid()}"
    link = iters.programs["task_lines"].attach_iter()
    link.pin(path)
    try:
        iters.close()
        with pyprobe.IterLink.from_pinned(path) as pinned:
            assert isinstance(pinned, pyprobe.IterLink) and pinned.kind is None
            assert f"{os.getpid()} {my_comm()}" in set(pinned.lines())
    finally:
        os.unlink(path)


def test_iterator_bad_arguments(iters: pyprobe.BpfObject) -> None:
    with pyprobe.load(test_object("iter_user_ringbuf")) as other, pytest.raises(pyprobe.AttachError, match="needs"):
        other.programs["drain"].attach_iter()
    prog = iters.programs["task_lines"]
    with pytest.raises(ValueError, match="cgroup is an argument of the cgroup iterator only"):
        prog.attach_iter(cgroup="/sys/fs/cgroup")
    with pytest.raises(ValueError, match="pid and tid are arguments"):
        iters.programs["bpf_maps"].attach_iter(pid=os.getpid())
    with pytest.raises(pyprobe.AttachError, match="no process with pid"):
        prog.attach_iter(pid=2**31 - 2)
    link = prog.attach_iter()
    with pytest.raises(TypeError, match="must be a ctypes type"):
        link.records(int)  # type: ignore[arg-type]
    with pytest.raises(pyprobe.BtfError):
        link.records("no_such_type")
    assert iters.links == [link]


# --- user ring buffers -----------------------------------------------------------------


@pytest.fixture
def urb() -> Iterator[pyprobe.BpfObject]:
    need_feature("user_ringbuf")
    with pyprobe.load(test_object("iter_user_ringbuf")) as obj:
        yield obj


def test_user_ringbuf_records_reach_the_bpf_side(urb: pyprobe.BpfObject) -> None:
    ring = urb.maps["input"]
    assert isinstance(ring, pyprobe.UserRingBufMap)
    with ring.writer() as writer:
        assert writer.record_size == 16  # PYPROBE_EVENT_TYPE(input, struct urec)
        writer.write(URec(seq=1, value=10))
        writer.write((2).to_bytes(8, "little") + (20).to_bytes(8, "little"))
        assert writer.write_batch((URec * 50)(*(URec(seq=3 + i, value=i) for i in range(50)))) == 50
        assert writer.write_batch(b"".join(bytes(URec(seq=60 + i, value=1)) for i in range(5))) == 5
        assert writer.write_batch([URec(seq=70, value=100)]) == 1
        with writer.reserve() as sample:
            sample.write(URec(seq=80, value=1000))
        with pytest.raises(RuntimeError), writer.reserve() as dropped:
            dropped.write(URec(seq=99, value=99))
            raise RuntimeError("discarded")
        urb.programs["drain"].test_run()
    bss = urb.bss
    assert bss.drained == 1 + 1 + 50 + 5 + 1 + 1
    assert bss.value_sum == 10 + 20 + sum(range(50)) + 5 + 100 + 1000
    assert bss.last_seq == 80 and bss.short_records == 0


def test_user_ringbuf_full_and_blocking_reserve(urb: pyprobe.BpfObject) -> None:
    drain = urb.programs["drain"]
    with urb.maps["input"].writer() as writer:
        written = 0
        while (n := writer.write_batch(bytes(16 * 4096))) == 4096:
            written += n
        written += n
        assert 5000 < written < 256 * 1024 // 16
        with pytest.raises(pyprobe.MapFullError, match="the ring is full"):
            writer.write(URec(seq=1, value=1))
        assert writer.write_batch([URec()]) == 0
        timer = threading.Timer(0.2, drain.test_run)
        timer.start()
        started = time.monotonic()
        writer.write(URec(seq=2, value=2), timeout=10)  # waits for the drain
        assert time.monotonic() - started >= 0.1
        timer.join()
        # The kernel frees space record by record as it drains: the waiting write may land while the
        # same drain still runs and be drained by it too.
        assert urb.bss.drained in (written, written + 1)
        drain.test_run()
        assert urb.bss.drained == written + 1


def test_user_ringbuf_checks_records_before_writing(urb: pyprobe.BpfObject) -> None:
    with urb.maps["input"].writer() as writer:
        with pytest.raises(ValueError, match="a record of 15 bytes; records of this map have 16"):
            writer.write(bytes(15))
        with pytest.raises(TypeError, match="bytes or a ctypes instance"):
            writer.write("text")  # type: ignore[arg-type]
        with pytest.raises(ValueError, match="not a whole number of 16-byte records"):
            writer.write_batch(bytes(20))
        with pytest.raises(ValueError, match="timeout"):
            writer.write(bytes(16), timeout=-1)
        sample = writer.reserve()
        with pytest.raises(ValueError, match="do not fit a record of 16 bytes"):
            sample.write(bytes(8), offset=12)
        sample.discard()
        with pytest.raises(pyprobe.BpfError, match="already submitted or discarded"):
            sample.submit()
    with pytest.raises(pyprobe.ClosedError):
        writer.write(bytes(16))
    with urb.maps["input"].writer(record_type=bytes) as raw:
        raw.write(bytes(40))  # any size without a record type
    with pytest.raises(TypeError, match="not a user ring buffer"):
        pyprobe.UserRingBuffer(pyprobe.Map.create("array", key_size=4, value_size=4, max_entries=1))


# --- struct_ops ---------------------------------------------------------------------------


def available_congestion_controls() -> list[str]:
    return Path("/proc/sys/net/ipv4/tcp_available_congestion_control").read_text().split()


@pytest.mark.parametrize(("name", "ca", "feature"), [
    ("iter_struct_ops", "pyprobe_ca", "struct_ops_link"),
    ("iter_struct_ops_legacy", "pyprobe_ca_old", "struct_ops"),
])  # fmt: skip
def test_struct_ops_congestion_control_runs_a_tcp_connection(name: str, ca: str, feature: str) -> None:
    need_feature(feature)
    with pyprobe.load(test_object(name)) as obj:
        table = obj.maps["pp_ca"]
        assert isinstance(table, pyprobe.StructOpsMap)
        assert ca not in available_congestion_controls()
        link = table.attach()
        assert isinstance(link, pyprobe.StructOpsLink) and link.map_name == "pp_ca"
        assert ca in available_congestion_controls()
        with pytest.raises(pyprobe.AttachError):
            table.attach()  # a congestion control of that name is registered already
        with socket.socket() as server, socket.socket() as client:
            server.bind(("127.0.0.1", 0))
            server.listen()
            client.setsockopt(socket.IPPROTO_TCP, socket.TCP_CONGESTION, ca.encode())
            client.connect(server.getsockname())
            peer, _ = server.accept()
            with peer:
                client.sendall(b"x" * (1 << 20))
                got = 0
                while got < 1 << 20:
                    got += len(peer.recv(1 << 16))
            assert client.getsockopt(socket.IPPROTO_TCP, socket.TCP_CONGESTION, 16).rstrip(b"\0") == ca.encode()
        assert obj.bss.inits >= 1 and obj.bss.acks >= 1
        link.close()
        assert ca not in available_congestion_controls()
        assert obj.links == []


def test_struct_ops_link_closes_with_its_object() -> None:
    need_feature("struct_ops_link")
    obj = pyprobe.load(test_object("iter_struct_ops"))
    link = obj.maps["pp_ca"].attach()
    assert obj.links == [link]
    obj.close()
    assert link.closed and "pyprobe_ca" not in available_congestion_controls()


# --- custom SEC() handlers -----------------------------------------------------------------


def test_section_handlers_load_and_attach_other_loaders_sections() -> None:
    with pytest.raises(pyprobe.LoadError):  # libbpf cannot guess the type of SEC("xdp/lo")
        pyprobe.load(test_object("iter_sections"))
    xdp = pyprobe.register_section_handler("xdp/", "xdp", "xdp", attach=lambda prog, iface: prog.attach_xdp(iface))
    custom = pyprobe.register_section_handler(
        "pyprobe_custom/", pyprobe.ProgramType.TRACEPOINT,
        attach=lambda prog, target: prog.attach_tracepoint(*target.split("/")),
    )  # fmt: skip
    with xdp, custom, pyprobe.open(test_object("iter_sections")) as obj:
        assert obj.programs["count_lo"].type == pyprobe.ProgramType.XDP
        assert obj.programs["count_lo"].attach_type == pyprobe.AttachType.XDP
        assert obj.programs["on_getppid"].type == pyprobe.ProgramType.TRACEPOINT
        obj.load()
        links = obj.attach()
        assert sorted(type(link).__name__ for link in links) == ["TracepointLink", "XdpLink"]
        os.getppid()
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.sendto(b"ping", ("127.0.0.1", 9))
        deadline = time.monotonic() + 5
        while obj.bss.xdp_packets == 0 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert obj.bss.custom_calls >= 1 and obj.bss.xdp_packets >= 1
    assert xdp.closed and custom.closed
    with pytest.raises(pyprobe.LoadError):
        pyprobe.load(test_object("iter_sections"))


def test_section_handler_closed_or_added_between_open_and_load() -> None:
    first = pyprobe.register_section_handler("xdp/", "xdp", "xdp")
    second = pyprobe.register_section_handler("pyprobe_custom+", "tracepoint")
    obj = pyprobe.open(test_object("iter_sections"))
    first.close()  # libbpf moves its table: the programs opened above must not point into it
    others = [pyprobe.register_section_handler(f"pyprobe_other{i}/", "kprobe") for i in range(8)]
    second.close()
    with obj:
        obj.load()
        assert obj.programs["count_lo"].type == pyprobe.ProgramType.XDP
        link = obj.programs["count_lo"].attach_xdp("lo")
        with pytest.raises(pyprobe.AttachError, match="names no target"):
            obj.programs["on_getppid"].attach()  # the handler gave no attach function
        link.close()
    for handler in others:
        handler.close()
        handler.close()


def test_section_handler_bad_arguments() -> None:
    with pytest.raises(ValueError, match="non-empty SEC"):
        pyprobe.register_section_handler("/", "xdp")
    with pytest.raises(ValueError, match="unknown ProgramType"):
        pyprobe.register_section_handler("x/", "no_such_type")
    with pytest.raises(TypeError, match="must be callable"):
        pyprobe.register_section_handler("x/", "xdp", attach="attach_xdp")  # type: ignore[arg-type]
    handler = pyprobe.register_section_handler("pyprobe_exact", "xdp")
    assert handler.match("pyprobe_exact") == "" and handler.match("pyprobe_exact/x") is None
    handler.close()
    assert "closed" in repr(handler)


# --- arena -------------------------------------------------------------------------------------


def test_arena_is_mapped_at_load_and_reached_by_offset() -> None:
    need_feature("arena")
    with pyprobe.load(test_object("iter_arena")) as obj:
        arena = obj.maps["arena"]
        assert isinstance(arena, pyprobe.ArenaMap)
        assert arena.size == 4 * os.sysconf("SC_PAGE_SIZE")
        assert arena.read(0, 16) == bytes(16)  # a page is allocated, zeroed, on first touch
        arena.write(arena.size - 5, b"arena")
        assert arena.read(arena.size - 8, 8) == b"\0\0\0arena"
        with pytest.raises(ValueError, match="outside the arena"):
            arena.read(arena.size - 4, 8)
        with pytest.raises(ValueError, match="outside the arena"):
            arena.write(-1, b"x")
        with pyprobe.Map.from_id(arena.id) as by_id:
            assert isinstance(by_id, pyprobe.ArenaMap) and by_id.size == arena.size
            with pytest.raises(pyprobe.MapError, match="only the object that declares an arena maps it"):
                by_id.read(0, 1)
    with pytest.raises(pyprobe.ClosedError):
        arena.read(0, 1)
