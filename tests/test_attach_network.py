"""Network attach kinds on the real kernel, each shown working with real frames between network
namespaces: tcx links and classic TC filters (counting and dropping UDP), their order, netkit,
netfilter hooks, XDP redirects through a devmap and a cpumap, and the LPM trie and redirect maps."""

from __future__ import annotations

import contextlib
import ctypes
import ipaddress
import os
import socket
import struct
import subprocess
import time
from collections.abc import Iterator
from typing import Literal

import pytest

import pyprobe
from conftest import need_feature, test_object
from pyprobe import features

pytestmark = pytest.mark.bpf

TAG = os.getpid() % 1000000
DROP, PASS, REDIRECT = 40001, 40002, 40003
(TC_DROPPED, TC_PASSED, NF_DROPPED, NF_PASSED, XDP_REDIRECTED, XDP_ARRIVED, CPU_REDIRECTED, NETKIT_DROPPED,
 ORDER_SEQ, ORDER_FIRST, ORDER_SECOND, LPM_DROPPED, DEVMAP_PROG) = range(13)  # fmt: skip
_libc = ctypes.CDLL(None, use_errno=True)
CLONE_NEWNET = 0x40000000


def _setns(fd: int) -> None:
    if _libc.setns(fd, CLONE_NEWNET) != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))


@contextlib.contextmanager
def netns(name: str) -> Iterator[None]:
    """Runs the block in network namespace ``name`` (this thread only); sockets made there stay there."""
    here = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
    there = os.open(f"/run/netns/{name}", os.O_RDONLY)
    try:
        _setns(there)
        try:
            yield
        finally:
            _setns(here)
    finally:
        os.close(here)
        os.close(there)


def ip(*args: str, ns: str | None = None) -> str:
    cmd = ["ip", "netns", "exec", ns, *args] if ns else list(args)
    return subprocess.run(cmd, check=True, capture_output=True, text=True).stdout


class Net:
    """Namespaces ``a`` and ``b`` joined by a veth pair (``a_if`` 10.77.0.1 <-> ``b_if`` 10.77.0.2), and
    ``c`` joined to ``b`` by a second pair (``b2_if`` <-> ``c_if``), for redirects."""

    def __init__(self) -> None:
        self.a, self.b, self.c = f"ppnet{TAG}a", f"ppnet{TAG}b", f"ppnet{TAG}c"
        self.a_if, self.b_if = f"pna{TAG}", f"pnb{TAG}"
        self.b2_if, self.c_if = f"pnd{TAG}", f"pnc{TAG}"
        for ns in (self.a, self.b, self.c):
            ip("ip", "netns", "add", ns)
        ip("ip", "link", "add", self.a_if, "netns", self.a, "type", "veth", "peer", "name", self.b_if, "netns", self.b)
        ip("ip", "link", "add", self.b2_if, "netns", self.b, "type", "veth", "peer", "name", self.c_if, "netns", self.c)
        for ns, dev, addr in (
            (self.a, self.a_if, "10.77.0.1/24"), (self.b, self.b_if, "10.77.0.2/24"),
            (self.b, self.b2_if, "10.78.0.1/24"), (self.c, self.c_if, "10.78.0.2/24"),
        ):  # fmt: skip
            ip("ip", "addr", "add", addr, "dev", dev, ns=ns)
            ip("ip", "link", "set", dev, "up", ns=ns)
        for ns in (self.a, self.b, self.c):
            ip("ip", "link", "set", "lo", "up", ns=ns)

    def close(self) -> None:
        for ns in (self.a, self.b, self.c):
            subprocess.run(["ip", "netns", "del", ns], check=False, capture_output=True)

    def ifindex(self, ns: str, dev: str) -> int:
        with netns(ns):
            return socket.if_nametoindex(dev)

    def udp(self, ns: str, bind: tuple[str, int] | None = None) -> socket.socket:
        with netns(ns):
            sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        if bind:
            sock.bind(bind)
        sock.settimeout(0.5)
        return sock

    def exchange(self, port: int, count: int = 5, *, checksum: bool = True) -> int:
        """Sends ``count`` datagrams from namespace a to 10.77.0.2:``port`` in b; returns how many arrived.

        ``checksum=False`` sends them without UDP checksum: a veth leaves it to the receiver
        (CHECKSUM_PARTIAL), which a frame rebuilt from XDP (cpumap) no longer knows."""
        with self.udp(self.b, ("10.77.0.2", port)) as rx, self.udp(self.a) as tx:
            if not checksum:
                tx.setsockopt(socket.SOL_SOCKET, 11, 1)  # SO_NO_CHECK
            for i in range(count):
                tx.sendto(b"pyprobe %d" % i, ("10.77.0.2", port))
            got = 0
            with contextlib.suppress(TimeoutError):
                while got < count:
                    rx.recv(100)
                    got += 1
            return got


@pytest.fixture(scope="module")
def net() -> Iterator[Net]:
    made = Net()
    try:
        yield made
    finally:
        made.close()


@pytest.fixture
def obj() -> Iterator[pyprobe.BpfObject]:
    with pyprobe.open(test_object("network")) as opened:
        opened.rodata.drop_port = DROP
        opened.rodata.pass_port = PASS
        opened.rodata.redirect_port = REDIRECT
        # a kernel without netfilter programs (before 6.4) refuses to load the object with one
        opened.programs["nf_filter"].autoload = features.available("netfilter")
        opened.load()
        yield opened


def count(obj: pyprobe.BpfObject, key: int) -> int:
    counts = obj.maps["counts"]
    assert isinstance(counts, pyprobe.ArrayMap)
    value: int = counts[key]
    return value


def wait_count(obj: pyprobe.BpfObject, key: int, at_least: int) -> int:
    deadline = time.monotonic() + 3
    while count(obj, key) < at_least and time.monotonic() < deadline:
        time.sleep(0.02)
    return count(obj, key)


def qdiscs(net: Net, ns: str, dev: str) -> str:
    return ip("tc", "qdisc", "show", "dev", dev, ns=ns)


# --- tc: tcx and classic ---------------------------------------------------------------------------


def test_tcx_counts_and_drops_real_frames(net: Net, obj: pyprobe.BpfObject) -> None:
    need_feature("tcx")
    with netns(net.b):
        link = obj.programs["tcx_in"].attach_tcx(net.b_if)  # the direction from SEC("tcx/ingress")
    assert isinstance(link, pyprobe.TcxLink)
    assert (link.mechanism, link.direction, link.interface) == ("tcx", "ingress", net.b_if)
    assert link.ifindex == net.ifindex(net.b, net.b_if)
    assert "tcx ingress on" in repr(link) and link.type == pyprobe.LinkType.TCX and link.id > 0
    assert net.exchange(DROP) == 0
    assert count(obj, TC_DROPPED) == 5
    assert net.exchange(PASS) == 5
    assert count(obj, TC_PASSED) == 5
    link.close()
    assert net.exchange(DROP) == 5  # detached: nothing drops
    assert count(obj, TC_DROPPED) == 5
    assert "closed" in repr(link) or "detached" in repr(link)


def test_tc_section_on_egress_with_an_explicit_direction(net: Net, obj: pyprobe.BpfObject) -> None:
    prog = obj.programs["tc_any"]
    with netns(net.a), pytest.raises(ValueError, match="names no direction"):
        prog.attach_tcx(net.a_if)
    with netns(net.a), prog.attach_tcx(net.a_if, "egress") as link:
        expected = "tcx" if features.available("tcx") else "tc"
        assert link.mechanism == expected  # the automatic choice: tcx where the kernel has it
        assert link.direction == "egress"
        assert net.exchange(DROP, 3) == 0
        assert count(obj, TC_DROPPED) == 3
        assert net.exchange(PASS, 3) == 3
    assert net.exchange(DROP, 3) == 3


def test_classic_tc_filter_owns_the_qdisc_it_made(net: Net, obj: pyprobe.BpfObject) -> None:
    need_feature("tc")
    assert "clsact" not in qdiscs(net, net.b, net.b_if)
    with netns(net.b):
        link = obj.programs["tcx_in"].attach_tcx(net.b_if, mechanism="tc")
        second = obj.programs["tc_any"].attach_tcx(net.b_if, "egress", mechanism="tc", priority=7)
    assert isinstance(link, pyprobe.TcLink)
    assert (link.mechanism, link.direction, link.created_qdisc) == ("tc", "ingress", True)
    assert (second.created_qdisc, second.priority) == (False, 7)
    assert "classic tc (clsact) ingress filter" in repr(link) and link.fd == -1
    assert "clsact" in qdiscs(net, net.b, net.b_if)
    filters = ip("tc", "filter", "show", "dev", net.b_if, "ingress", ns=net.b)
    assert "tcx_in" in filters and "direct-action" in filters
    with pytest.raises(pyprobe.UnsupportedError, match="no kernel link"):
        link.pin("/sys/fs/bpf/nope")
    assert net.exchange(DROP) == 0
    assert count(obj, TC_DROPPED) == 5
    assert net.exchange(PASS) == 5
    link.close()  # closed outside the namespace it was attached in: removed there all the same
    link.close()
    assert "tcx_in" not in ip("tc", "filter", "show", "dev", net.b_if, "ingress", ns=net.b)
    assert "clsact" in qdiscs(net, net.b, net.b_if)  # the egress filter still uses it
    assert net.exchange(DROP) == 5
    second.close()
    assert "clsact" not in qdiscs(net, net.b, net.b_if)  # the last filter took the qdisc it made


def test_classic_tc_leaves_a_qdisc_it_did_not_make(net: Net, obj: pyprobe.BpfObject) -> None:
    need_feature("tc")
    ip("tc", "qdisc", "add", "dev", net.b_if, "clsact", ns=net.b)
    try:
        with netns(net.b):
            link = obj.programs["tc_any"].attach_tcx(net.b_if, "ingress", mechanism="tc")
        assert not link.created_qdisc
        assert net.exchange(DROP, 2) == 0
        obj.close()  # the object's close detaches its links
        assert link.closed
        assert "clsact" in qdiscs(net, net.b, net.b_if)
        assert net.exchange(DROP, 2) == 2
    finally:
        ip("tc", "qdisc", "del", "dev", net.b_if, "clsact", ns=net.b)


def test_tcx_order_before_and_after(net: Net, obj: pyprobe.BpfObject) -> None:
    need_feature("tcx")
    a, b = obj.programs["order_a"], obj.programs["order_b"]
    with netns(net.b):
        link_b = b.attach_tcx(net.b_if)
        link_a = a.attach_tcx(net.b_if, before=link_b)  # runs first although attached last
    with link_a, link_b:
        assert net.exchange(PASS, 1) == 1
        assert wait_count(obj, ORDER_SECOND, 1) == 2
        assert count(obj, ORDER_FIRST) == 1
    with netns(net.b), pytest.raises(ValueError, match="not both"):
        a.attach_tcx(net.b_if, before=b, after=b)


def test_tcx_unavailable_or_refused(net: Net, obj: pyprobe.BpfObject) -> None:
    prog = obj.programs["tcx_in"]
    if features.available("tcx"):
        with pytest.raises(ValueError, match="classic TC's"):
            prog.attach_tcx("lo", mechanism="tcx", priority=3)
    else:
        with pytest.raises(pyprobe.UnsupportedError, match=r"tcx links.*Linux 6\.6"):
            prog.attach_tcx("lo", mechanism="tcx")
        with pytest.raises(ValueError, match="need tcx links"):
            prog.attach_tcx("lo", after=obj.programs["order_a"], mechanism="tc")


def test_tc_bad_arguments(obj: pyprobe.BpfObject) -> None:
    prog = obj.programs["tcx_in"]
    with pytest.raises(pyprobe.AttachError, match="no network interface 'nope0'") as info:
        prog.attach_tcx("nope0")
    assert info.value.errno == 19
    with pytest.raises(ValueError, match="direction must be"):
        prog.attach_tcx("lo", "sideways")  # type: ignore[call-overload]
    with pytest.raises(ValueError, match="mechanism must be"):
        prog.attach_tcx("lo", mechanism="bpfilter")  # type: ignore[call-overload]
    with pytest.raises(pyprobe.AttachError, match=r"is a xdp program.*attach_tcx needs"):
        obj.programs["xdp_sink"].attach_tcx("lo", "ingress")
    with pytest.raises(TypeError, match="before/after must be"):
        prog.attach_tcx("lo", before="first")  # type: ignore[call-overload]
    assert obj.links == []


# --- netkit ------------------------------------------------------------------------------------------


def _netkit_pair(ns: str, primary: str, peer: str) -> None:
    """Creates a netkit pair in L2 mode through rtnetlink (iproute2 learnt netkit in 6.7)."""

    def attr(kind: int, payload: bytes) -> bytes:
        length = 4 + len(payload)
        return struct.pack("=HH", length, kind) + payload + b"\0" * (-length % 4)

    ifinfo = struct.pack("=BxHiII", 0, 0, 0, 0, 0)
    peer_info = ifinfo + attr(3, peer.encode() + b"\0")  # IFLA_IFNAME
    data = attr(1, peer_info) + attr(5, struct.pack("=I", 0))  # IFLA_NETKIT_PEER_INFO, IFLA_NETKIT_MODE=L2
    linkinfo = attr(1, b"netkit\0") + attr(2 | 0x8000, data)  # IFLA_INFO_KIND, IFLA_INFO_DATA (nested)
    body = ifinfo + attr(3, primary.encode() + b"\0") + attr(18 | 0x8000, linkinfo)  # IFLA_LINKINFO
    flags = 0x1 | 0x4 | 0x400 | 0x200  # NLM_F_REQUEST | ACK | CREATE | EXCL
    message = struct.pack("=IHHII", 16 + len(body), 16, flags, 1, 0) + body  # RTM_NEWLINK
    with netns(ns), socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, 0) as nl:
        nl.send(message)
        reply = nl.recv(4096)
    err = struct.unpack_from("=i", reply, 16)[0]
    if err:
        raise OSError(-err, f"create netkit pair {primary}: {os.strerror(-err)}")


def test_netkit_peer_program_drops_what_the_peer_sends(net: Net, obj: pyprobe.BpfObject) -> None:
    need_feature("netkit")
    primary, peer = f"pnk{TAG}p", f"pnk{TAG}q"
    _netkit_pair(net.a, primary, peer)
    try:
        ip("ip", "link", "set", peer, "netns", net.c, ns=net.a)
        ip("ip", "addr", "add", "10.79.0.1/24", "dev", primary, ns=net.a)
        ip("ip", "link", "set", primary, "up", ns=net.a)
        ip("ip", "addr", "add", "10.79.0.2/24", "dev", peer, ns=net.c)
        ip("ip", "link", "set", peer, "up", ns=net.c)
        with netns(net.a):
            link = obj.programs["netkit_filter"].attach_netkit(primary, peer=True)
            rx = net.udp(net.a, ("10.79.0.1", DROP))
        assert isinstance(link, pyprobe.NetkitLink) and link.peer and link.type == pyprobe.LinkType.NETKIT
        with rx, net.udp(net.c) as tx:
            for _ in range(3):
                tx.sendto(b"x", ("10.79.0.1", DROP))
            with pytest.raises(TimeoutError):
                rx.recv(10)
            assert count(obj, NETKIT_DROPPED) == 3
            link.close()
            tx.sendto(b"y", ("10.79.0.1", DROP))
            assert rx.recv(10) == b"y"
    finally:
        subprocess.run(["ip", "netns", "exec", net.a, "ip", "link", "del", primary], check=False, capture_output=True)


def test_netkit_unavailable_says_why(obj: pyprobe.BpfObject) -> None:
    if features.available("netkit"):
        with pytest.raises(pyprobe.AttachError, match="netkit"):
            obj.programs["netkit_filter"].attach_netkit("lo")  # no netkit device
        return
    with pytest.raises(pyprobe.UnsupportedError, match=r"netkit.*Linux 6\.7") as info:
        obj.programs["netkit_filter"].attach_netkit("lo")
    assert features.probe("netkit").reason in str(info.value)


# --- netfilter -----------------------------------------------------------------------------------------


def test_netfilter_local_out_sees_and_drops_real_packets(net: Net, obj: pyprobe.BpfObject) -> None:
    need_feature("netfilter")
    prog = obj.programs["nf_filter"]
    with netns(net.a):
        link = prog.attach_netfilter(pf="ipv4", hooknum="local_out", priority=-100)
    assert isinstance(link, pyprobe.NetfilterLink)
    assert (link.pf, link.hooknum, link.priority, link.type) == (2, 3, -100, pyprobe.LinkType.NETFILTER)
    with net.udp(net.a) as tx, pytest.raises(PermissionError):  # NF_DROP on the way out: sendto() fails with EPERM
        tx.sendto(b"x", ("10.77.0.2", DROP))
    assert count(obj, NF_DROPPED) == 1
    assert net.exchange(PASS, 3) == 3
    assert count(obj, NF_PASSED) == 3
    link.close()
    assert net.exchange(DROP, 2) == 2
    assert count(obj, NF_DROPPED) == 1


def test_netfilter_bad_arguments(obj: pyprobe.BpfObject) -> None:
    prog = obj.programs["nf_filter"]
    with pytest.raises(ValueError, match="pf must be"):
        prog.attach_netfilter(pf="arp", hooknum="local_out", priority=1)
    with pytest.raises(ValueError, match="hooknum must be one of"):
        prog.attach_netfilter(hooknum="output", priority=1)
    with pytest.raises(ValueError, match="priority"):
        prog.attach_netfilter(hooknum=3, priority=2**31)
    with pytest.raises(pyprobe.AttachError, match="attach_netfilter needs"):
        obj.programs["tcx_in"].attach_netfilter(hooknum=3, priority=1)


# --- XDP redirect maps --------------------------------------------------------------------------------


def test_devmap_redirects_real_frames_to_another_veth(net: Net, obj: pyprobe.BpfObject) -> None:
    tx_ports = obj.maps["tx_ports"]
    assert isinstance(tx_ports, pyprobe.DevMap)
    with netns(net.b):
        tx_ports[0] = net.b2_if  # an interface name, looked up in this namespace
        links = [obj.programs["xdp_redirect_dev"].attach_xdp(net.b_if)]
    assert tx_ports[0] == net.ifindex(net.b, net.b2_if)
    assert list(tx_ports.items()) == [(0, net.ifindex(net.b, net.b2_if))]
    with netns(net.c):  # the far end runs XDP too: a veth delivers redirected frames to a peer with XDP
        links.append(obj.programs["xdp_sink"].attach_xdp(net.c_if))
    try:
        assert net.exchange(REDIRECT, 4) == 0  # they left b through the other veth
        assert wait_count(obj, XDP_ARRIVED, 4) == 4
        assert count(obj, XDP_REDIRECTED) == 4
        assert net.exchange(PASS, 2) == 2  # others pass
        # with a program of its own, run on each frame sent to that interface
        with netns(net.b):
            tx_ports[0] = (net.b2_if, obj.programs["devmap_prog"])
        assert tx_ports.program_id(0) == obj.programs["devmap_prog"].id
        assert net.exchange(REDIRECT, 2) == 0
        assert wait_count(obj, XDP_ARRIVED, 6) == 6
        assert count(obj, DEVMAP_PROG) == 2
    finally:
        for link in links:
            link.close()
    with pytest.raises(pyprobe.MapError, match="no network interface 'nope0'"):
        tx_ports[1] = "nope0"


def test_cpumap_redirects_real_frames_to_a_cpu(net: Net, obj: pyprobe.BpfObject) -> None:
    cpus = obj.maps["cpus"]
    assert isinstance(cpus, pyprobe.CpuMap)
    cpus[0] = 64  # queue size: starts CPU 0's kthread
    assert cpus[0] == 64
    with netns(net.b), obj.programs["xdp_redirect_cpu"].attach_xdp(net.b_if):
        assert net.exchange(REDIRECT, 3, checksum=False) == 3  # handed to the stack on CPU 0: delivered
        assert count(obj, CPU_REDIRECTED) == 3
    del cpus[0]
    assert cpus.lookup(0) is None


def test_xskmap_takes_only_af_xdp_sockets() -> None:
    xsk = pyprobe.Map.create("xskmap", key_size=4, value_size=4, max_entries=2)
    try:
        assert isinstance(xsk, pyprobe.XskMap)
        with socket.socket() as sock, pytest.raises(pyprobe.MapError, match="is no AF_XDP socket"):
            xsk[0] = sock
        with pytest.raises(ValueError, match="out of range"):
            xsk[2] = 0
    finally:
        xsk.close()


# --- LPM trie -------------------------------------------------------------------------------------------


def test_lpm_trie_keys_are_ip_networks() -> None:
    trie = pyprobe.Map.create("lpm_trie", key_size=8, max_entries=16, flags=1, value_type=ctypes.c_uint32)
    try:
        assert isinstance(trie, pyprobe.LpmTrieMap)
        assert trie.key_type is ipaddress.IPv4Network
        trie[ipaddress.ip_network("10.0.0.0/8")] = 8
        trie["10.1.0.0/16"] = 16
        trie[(24, bytes([10, 1, 2, 0]))] = 24
        # lookups are the kernel's longest-prefix match
        assert trie.lookup(ipaddress.ip_address("10.1.2.3")) == 24
        assert trie["10.1.9.9"] == 16
        assert trie["10.200.0.1"] == 8
        assert trie.lookup("11.0.0.1") is None and "11.0.0.1" not in trie
        assert trie[ipaddress.ip_network("10.1.0.0/20")] == 16
        assert sorted(trie, key=lambda n: n.prefixlen) == [
            ipaddress.ip_network(n) for n in ("10.0.0.0/8", "10.1.0.0/16", "10.1.2.0/24")
        ]
        assert len(trie) == 3
        assert dict(trie.items())[ipaddress.ip_network("10.1.2.0/24")] == 24
        del trie["10.1.0.0/16"]
        assert trie["10.1.9.9"] == 8
        with pytest.raises(pyprobe.KeyNotFoundError):
            del trie["10.1.0.0/16"]
        with pytest.raises(ValueError, match="must be an IPv4 key"):
            trie["2001:db8::/32"] = 1
        with pytest.raises(ValueError, match="no IP network"):
            trie["10.0.0.0/40"] = 1
        with pytest.raises(TypeError, match="must be an IP network"):
            trie[3.5] = 1  # type: ignore[index]
    finally:
        trie.close()


def test_lpm_trie_filled_from_python_drives_a_tc_program(net: Net, obj: pyprobe.BpfObject) -> None:
    blocked = obj.maps["blocked"]
    assert isinstance(blocked, pyprobe.LpmTrieMap)
    blocked[ipaddress.ip_network("10.77.0.0/30")] = 1  # holds 10.77.0.1, the sender in namespace a
    blocked["10.66.0.0/16"] = 2
    assert set(blocked) == {ipaddress.ip_network("10.77.0.0/30"), ipaddress.ip_network("10.66.0.0/16")}
    with netns(net.b), obj.programs["tc_blocklist"].attach_tcx(net.b_if, "ingress"):
        assert net.exchange(PASS, 3) == 0
        assert count(obj, LPM_DROPPED) == 3
        del blocked["10.77.0.0/30"]
        assert net.exchange(PASS, 3) == 3
        assert count(obj, LPM_DROPPED) == 3


def test_lpm_trie_ipv6() -> None:
    trie = pyprobe.Map.create("lpm_trie", key_size=20, max_entries=8, flags=1, value_type=ctypes.c_uint32)
    try:
        trie["2001:db8::/32"] = 32
        trie[ipaddress.ip_network("2001:db8:1::/48")] = 48
        assert trie[ipaddress.ip_address("2001:db8:1::7")] == 48
        assert trie["2001:db8:2::7"] == 32
        assert set(trie) == {ipaddress.ip_network("2001:db8::/32"), ipaddress.ip_network("2001:db8:1::/48")}
    finally:
        trie.close()


# --- feature probes -----------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["tcx", "netkit", "netfilter", "tc"])
def test_network_features_answer_with_a_reason(name: str) -> None:
    status = features.probe(name)
    assert status.available or status.reason
    since = features.FEATURES[name].since
    if features.kernel_version()[:2] >= since and status.cause == "kernel-version":
        pytest.fail(f"{name} blamed on the kernel version on Linux {features.kernel_version()}")
    if name == "tcx" and features.kernel_version()[:2] < (6, 6):
        assert not status.available and status.cause == "kernel-version"


def test_sections_without_an_interface_are_left_to_the_attach_methods(obj: pyprobe.BpfObject) -> None:
    assert obj.attach() == []  # SEC("tc"), SEC("tcx/ingress"), SEC("netfilter"), SEC("xdp") name no target
    with pytest.raises(pyprobe.AttachError, match="names no target"):
        obj.programs["tc_any"].attach()


def test_attach_and_close_leave_no_fd_or_qdisc_behind(no_fd_leak: None, net: Net, obj: pyprobe.BpfObject) -> None:
    prog = obj.programs["tc_any"]
    mechanisms: list[Literal["tc", "tcx"]] = ["tc", "tcx"] if features.available("tcx") else ["tc"]
    for mechanism in mechanisms:
        for _ in range(3):
            with netns(net.b):
                link = prog.attach_tcx(net.b_if, "ingress", mechanism=mechanism)
            assert link.mechanism == mechanism
            link.close()
    assert "clsact" not in qdiscs(net, net.b, net.b_if)
    assert obj.links == []
