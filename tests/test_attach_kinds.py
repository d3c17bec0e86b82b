"""Every other attach kind on the real kernel: tracepoints, raw_tp, tp_btf, perf_event, XDP, pinning,
and the kinds this kernel refuses (kprobe, fentry, lsm, freplace) with their UnsupportedError."""

from __future__ import annotations

import errno
import os
import socket
import struct
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

import pyprobe
from conftest import open_fds, test_object
from pyprobe import features

pytestmark = pytest.mark.bpf

SLOT = struct.Struct("<Q4qI4x")
TP_GETPID, RAW_TP, TP_BTF, PERF_EVENT, XDP_PACKETS, USDT_TICK, USDT_GATED, KPROBE, FENTRY, LSM, TP_AUTO = range(11)


def slot(obj: pyprobe.BpfObject, key: int) -> tuple[int, ...]:
    return SLOT.unpack(obj.maps["slots"].get_bytes(struct.pack("<I", key)))


def open_kinds(**autoload: bool) -> pyprobe.BpfObject:
    """The kinds object with the programs the kernel cannot load turned off (unless asked for)."""
    obj = pyprobe.open(test_object("attach_kinds"))
    obj.programs["on_fentry"].autoload = autoload.get("on_fentry", False)
    obj.programs["on_lsm"].autoload = autoload.get("on_lsm", False)
    return obj


@pytest.fixture
def kinds() -> Iterator[pyprobe.BpfObject]:
    with open_kinds() as obj:
        obj.load()
        yield obj


def test_tracepoint_on_a_syscall(kinds: pyprobe.BpfObject) -> None:
    link = kinds.programs["on_tracepoint"].attach_tracepoint("syscalls", "sys_enter_getpid")
    assert isinstance(link, pyprobe.TracepointLink)
    assert (link.category, link.name) == ("syscalls", "sys_enter_getpid")
    for _ in range(20):
        os.getpid()
    assert slot(kinds, TP_GETPID)[0] >= 20
    link.detach()


def test_auto_attach_gives_typed_links(kinds: pyprobe.BpfObject) -> None:
    links = kinds.attach()
    by_name = {link.program.name: link for link in links if link.program is not None}
    assert set(by_name) == {"on_getppid_auto", "on_tp_btf"}
    assert isinstance(by_name["on_getppid_auto"], pyprobe.TracepointLink)
    assert isinstance(by_name["on_tp_btf"], pyprobe.TraceLink)
    os.getppid()
    assert slot(kinds, TP_AUTO)[0] >= 1


def test_raw_tracepoint(kinds: pyprobe.BpfObject) -> None:
    link = kinds.programs["on_raw_tp"].attach_raw_tracepoint("sys_enter")
    assert isinstance(link, pyprobe.RawTracepointLink) and link.name == "sys_enter"
    os.getpid()
    assert slot(kinds, RAW_TP)[0] >= 1
    link.detach()
    with pytest.raises(pyprobe.AttachError, match="no raw tracepoint 'no_such_tracepoint'"):
        kinds.programs["on_raw_tp"].attach_raw_tracepoint("no_such_tracepoint")
    assert kinds.links == []


def test_tp_btf(kinds: pyprobe.BpfObject) -> None:
    link = kinds.programs["on_tp_btf"].attach_trace()
    assert isinstance(link, pyprobe.TraceLink)
    assert (link.kind, link.target) == ("tp_btf", "sys_enter")
    before = slot(kinds, TP_BTF)[0]
    os.getpid()
    assert slot(kinds, TP_BTF)[0] > before
    link.detach()


def test_perf_event_sampling(kinds: pyprobe.BpfObject) -> None:
    events = pyprobe.perf_event.open_sampling("cpu-clock", frequency=1000)
    assert len(events) == len(pyprobe.perf_event.online_cpus())
    try:
        links = [kinds.programs["on_perf_event"].attach_perf_event(ev) for ev in events]
        assert all(isinstance(link, pyprobe.PerfEventLink) for link in links)
        assert {link.cpu for link in links} == {ev.cpu for ev in events}
        deadline = time.monotonic() + 0.3
        while time.monotonic() < deadline:
            pass
        assert slot(kinds, PERF_EVENT)[0] > 10
        for link in links:
            link.detach()
    finally:
        for ev in events:
            ev.close()


def test_perf_event_helper_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match="unknown perf event 'nope'"):
        pyprobe.perf_event.open_sampling("nope")
    with pytest.raises(ValueError, match="frequency or period, not both"):
        pyprobe.perf_event.open_sampling(frequency=1, period=1)
    try:
        events = pyprobe.perf_event.open_sampling("cpu-cycles", period=1_000_000)
    except pyprobe.UnsupportedError as exc:
        assert "no hardware counter for cpu-cycles" in str(exc)
    else:
        for ev in events:
            ev.close()


def test_xdp_on_loopback(kinds: pyprobe.BpfObject) -> None:
    link = kinds.programs["on_xdp"].attach_xdp("lo")
    assert isinstance(link, pyprobe.XdpLink)
    assert (link.ifindex, link.interface) == (socket.if_nametoindex("lo"), "lo")
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as rx, socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as tx:
        rx.bind(("127.0.0.1", 0))
        for _ in range(5):
            tx.sendto(b"x" * 100, rx.getsockname())
        rx.settimeout(1)
        assert rx.recv(200) == b"x" * 100  # XDP_PASS lets packets through
    count, size, *_ = slot(kinds, XDP_PACKETS)
    assert count >= 5
    assert size >= 100 + 28  # payload + IP and UDP headers
    link.detach()


def test_xdp_on_a_veth_in_a_network_namespace(kinds: pyprobe.BpfObject) -> None:
    tag = os.getpid() % 100000
    ns, here, there = f"pyprobe-test-{tag}", f"ppx{tag}a", f"ppx{tag}b"
    run = ["ip", "netns", "exec", ns]
    subprocess.run(["ip", "netns", "add", ns], check=True)
    try:
        subprocess.run(["ip", "link", "add", here, "type", "veth", "peer", "name", there, "netns", ns], check=True)
        subprocess.run(["ip", "link", "set", here, "up"], check=True)
        subprocess.run([*run, "ip", "link", "set", there, "up"], check=True)
        link = kinds.programs["on_xdp"].attach_xdp(socket.if_nametoindex(here))
        assert link.interface == here
        # Raw Ethernet frames sent from the namespace's end arrive on our end, where the program runs.
        # They are addressed to no IP host: nothing leaves this pair of interfaces.
        send = (
            "import socket; s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW); "
            f"s.bind(({there!r}, 0)); "
            "[s.send(b'\\xff' * 6 + b'\\x02' + b'\\0' * 5 + b'\\x88\\xb5' + b'pyprobe' * 20) for _ in range(3)]"
        )
        subprocess.run([*run, sys.executable, "-c", send], check=True)
        deadline = time.monotonic() + 5
        while slot(kinds, XDP_PACKETS)[0] < 3 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert slot(kinds, XDP_PACKETS)[0] >= 3
        link.detach()
    finally:
        subprocess.run(["ip", "link", "del", here], check=False, capture_output=True)
        subprocess.run(["ip", "netns", "del", ns], check=False)


def test_xdp_unknown_interface(kinds: pyprobe.BpfObject) -> None:
    with pytest.raises(pyprobe.AttachError, match="no network interface 'nope0'") as info:
        kinds.programs["on_xdp"].attach_xdp("nope0")
    assert info.value.errno == 19  # ENODEV
    assert kinds.links == []


def test_unknown_tracepoint(kinds: pyprobe.BpfObject) -> None:
    with pytest.raises(pyprobe.AttachError, match="no tracepoint syscalls:nope"):
        kinds.programs["on_tracepoint"].attach_tracepoint("syscalls", "nope")
    with pytest.raises(pyprobe.AttachError, match=r"is a xdp program.*attach_tracepoint needs"):
        kinds.programs["on_xdp"].attach_tracepoint("syscalls", "sys_enter_getpid")
    assert kinds.links == []


def test_pin_unpin_from_pinned(kinds: pyprobe.BpfObject, tmp_path: Path) -> None:
    path = f"/sys/fs/bpf/pyprobe-test-link-{os.getpid()}"
    link = kinds.programs["on_raw_tp"].attach_raw_tracepoint("sys_enter")
    link.pin(path)
    assert link.pin_path == path
    again = pyprobe.RawTracepointLink.from_pinned(path)
    assert again.id == link.id and again.name is None
    again.close()
    link.unpin()
    assert not os.path.exists(path)
    link.detach()
    with pytest.raises(pyprobe.BpfError, match="No such file"):
        pyprobe.Link.from_pinned(path)


def test_many_attach_detach_cycles_leak_no_fd(kinds: pyprobe.BpfObject) -> None:
    prog = kinds.programs["on_tp_btf"]  # BTF tracing links detach in well under a millisecond
    before = open_fds()
    for _ in range(200):
        with prog.attach_trace() as link:
            assert link.fd >= 0
    assert open_fds() - before == set()
    assert kinds.links == []


# --- the kinds this kernel may refuse --------------------------------------------------------


def test_kprobe_refused_with_the_missing_feature(kinds: pyprobe.BpfObject) -> None:
    status = features.probe("kprobe")
    if status.available:
        pytest.skip("this kernel has kprobes: test_kprobe covers them")
    with pytest.raises(pyprobe.UnsupportedError, match="kprobes and kretprobes.*" + status.reason.split(" ")[0]):
        kinds.programs["on_kprobe"].attach_kprobe("do_sys_openat2")
    assert kinds.links == []


@pytest.mark.kprobe
def test_kprobe(kinds: pyprobe.BpfObject) -> None:
    link = kinds.programs["on_kprobe"].attach_kprobe("do_sys_openat2")
    assert isinstance(link, pyprobe.KprobeLink) and link.function == "do_sys_openat2"
    with open("/proc/self/stat"):
        pass
    assert slot(kinds, KPROBE)[0] >= 1


def test_fentry_and_lsm_refused_with_the_missing_feature(kinds: pyprobe.BpfObject) -> None:
    checked = 0
    for name, feature in (("on_fentry", "fentry"), ("on_lsm", "lsm")):
        status = features.probe(feature)
        if status.available:
            continue
        with pytest.raises(pyprobe.UnsupportedError, match=f"'{feature}'.*{status.reason[:20]}"):
            kinds.programs[name].attach_trace()
        checked += 1
    if not checked:
        pytest.skip("this kernel has fentry and lsm: test_fentry and test_lsm cover them")
    assert kinds.links == []


@pytest.mark.fentry
def test_fentry() -> None:
    with open_kinds(on_fentry=True) as obj:
        obj.load()
        link = obj.programs["on_fentry"].attach_trace()
        assert (link.kind, link.target) == ("fentry", "do_getpgid")
        os.getpgid(0)
        assert slot(obj, FENTRY)[0] >= 1


@pytest.mark.lsm
def test_lsm() -> None:
    with open_kinds(on_lsm=True) as obj:
        obj.load()
        link = obj.programs["on_lsm"].attach_trace()
        assert link.kind == "lsm"
        with open("/proc/self/stat"):
            pass
        assert slot(obj, LSM)[0] >= 1


def test_freplace_refused_with_the_missing_feature() -> None:
    status = features.probe("freplace")
    if status.available:
        pytest.skip("this kernel has freplace: test_freplace covers it")
    with pyprobe.open(test_object("attach_freplace")) as obj:
        obj.programs["replacement"].autoload = False
        obj.load()
        with pyprobe.open(test_object("attach_freplace")) as ext:
            with pytest.raises(pyprobe.UnsupportedError, match="'freplace'"):
                ext.programs["replacement"].set_attach_target(obj.programs["target"], "decide")
            with pytest.raises(pyprobe.UnsupportedError, match="'freplace'"):
                ext.programs["replacement"].attach_freplace(obj.programs["target"], "decide")


@pytest.mark.freplace
def test_freplace() -> None:
    with pyprobe.open(test_object("attach_freplace")) as obj:
        obj.programs["replacement"].autoload = False
        obj.load()
        target = obj.programs["target"]
        assert target.test_run(ctx=b"\0" * 4).retval == 42
        with pyprobe.open(test_object("attach_freplace")) as ext:
            ext.programs["target"].autoload = False
            ext.programs["replacement"].set_attach_target(target, "decide")
            ext.load()
            link = ext.programs["replacement"].attach_freplace(target, "decide")
            assert (link.kind, link.target) == ("freplace", "decide")
            assert target.test_run(ctx=b"\0" * 4).retval == 1000
            link.detach()


def test_loading_a_refused_program_kind_names_the_feature() -> None:
    """Where the kernel refuses fentry, the load error says so instead of a bare EPERM."""
    with open_kinds(on_fentry=True) as obj:
        if pyprobe.features.available("fentry"):
            assert obj.load().programs["on_fentry"].fd >= 0
            return
        with pytest.raises(pyprobe.UnsupportedError, match=r"program 'on_fentry'.*fentry programs are refused") as info:
            obj.load()
        assert info.value.errno == errno.EPERM
        assert pyprobe.features.probe("fentry").reason in str(info.value)
