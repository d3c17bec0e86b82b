"""Socket attach kinds on the real kernel, each shown working with real sockets: a socket filter that
keeps some datagrams, a SO_REUSEPORT program that steers datagrams, sk_lookup that hands a connection
to a port nobody listens on to a chosen socket, sk_msg / sk_skb redirects between TCP connections
through a sockhash and a sockmap, and a flow dissector (BPF_PROG_RUN and on real packets)."""

from __future__ import annotations

import ctypes
import errno
import os
import socket
import struct
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager, suppress

import pytest

import pyprobe
from conftest import need_feature, open_fds, test_object
from pyprobe import features

pytestmark = pytest.mark.bpf

PREFIX = f"pps{os.getpid()}"
CLONE_NEWNET = 0x40000000
_libc = ctypes.CDLL(None, use_errno=True)
_counter = iter(range(1_000_000))


@pytest.fixture
def sockobj() -> Iterator[pyprobe.BpfObject]:
    with pyprobe.open(test_object("socket")) as obj:
        for name, feature in (
            ("keep_k", "socket_filter"), ("pick_socket", "sk_reuseport"), ("steer", "sk_lookup"),
            ("msg_redirect", "sk_msg"), ("skb_parser", "sk_skb"), ("skb_verdict", "sk_skb"),
            ("dissect", "flow_dissector"),
        ):  # fmt: skip
            obj.programs[name].autoload = features.available(feature)
        obj.load()
        yield obj


@pytest.fixture
def netns() -> Iterator[str]:
    """A private network namespace with its loopback up, named after this process."""
    name = f"{PREFIX}_{next(_counter)}"
    subprocess.run(["ip", "netns", "add", name], check=True)
    try:
        subprocess.run(["ip", "-n", name, "link", "set", "lo", "up"], check=True)
        yield name
    finally:
        subprocess.run(["ip", "netns", "del", name], check=False)


@contextmanager
def in_netns(name: str) -> Iterator[None]:
    """Runs the block's socket calls in namespace ``name`` (setns on this thread), then comes back."""
    home = os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
    target = os.open(f"/run/netns/{name}", os.O_RDONLY | os.O_CLOEXEC)
    try:
        if _libc.setns(target, CLONE_NEWNET) != 0:
            raise OSError(ctypes.get_errno(), "setns")
        try:
            yield
        finally:
            if _libc.setns(home, CLONE_NEWNET) != 0:
                raise OSError(ctypes.get_errno(), "setns back")
    finally:
        os.close(home)
        os.close(target)


def udp_socket(*, reuseport: bool = False) -> socket.socket:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    if reuseport:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    s.settimeout(2)
    return s


def drain(s: socket.socket) -> list[bytes]:
    """Every datagram or chunk waiting on ``s`` now."""
    out = []
    s.setblocking(False)
    try:
        while True:
            try:
                data = s.recv(4096)
            except BlockingIOError:
                break
            if not data:
                break
            out.append(data)
    finally:
        s.settimeout(2)
    return out


def tcp_pair(listener: socket.socket) -> tuple[socket.socket, socket.socket]:
    """A client socket connected to ``listener`` and the server end accepted from it."""
    client = socket.create_connection(listener.getsockname()[:2], timeout=2)
    server, _ = listener.accept()
    server.settimeout(2)
    return client, server


@pytest.fixture
def listener() -> Iterator[socket.socket]:
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind(("127.0.0.1", 0))
    s.listen(8)
    s.settimeout(2)
    yield s
    s.close()


# --- feature probes --------------------------------------------------------------------


@pytest.mark.parametrize("name", ["socket_filter", "sk_reuseport", "sk_lookup", "sk_msg", "sk_skb", "flow_dissector"])
def test_feature_probes_know_the_socket_kinds(name: str) -> None:
    status = features.probe(name)
    feature = features.FEATURES[name]
    if features.kernel_version()[:2] >= feature.since:
        assert status.available, str(status)
    else:
        assert not status.available and status.cause == "kernel-version"


# --- socket filter -----------------------------------------------------------------------


def test_socket_filter_keeps_only_some_datagrams(sockobj: pyprobe.BpfObject) -> None:
    need_feature("socket_filter")
    rx, tx = udp_socket(), udp_socket()
    with rx, tx:
        rx.bind(("127.0.0.1", 0))
        link = sockobj.programs["keep_k"].attach_socket(rx)
        assert isinstance(link, pyprobe.SocketFilterLink) and link.socket_fd == rx.fileno()
        assert link in sockobj.links and "attached" in repr(link)
        for payload in (b"K1", b"D1", b"K2", b"D2", b"D3", b"K3"):
            tx.sendto(payload, rx.getsockname())
        got = [rx.recv(64) for _ in range(3)]
        assert got == [b"K1", b"K2", b"K3"]
        assert drain(rx) == []
        assert sockobj.bss.filter_seen == 6 and sockobj.bss.filter_kept == 3
        link.close()
        assert link.closed and link not in sockobj.links
        tx.sendto(b"D4", rx.getsockname())
        assert rx.recv(64) == b"D4"  # detached: everything passes again
        assert sockobj.bss.filter_seen == 6


def test_socket_filter_by_fd_and_its_errors(sockobj: pyprobe.BpfObject) -> None:
    need_feature("socket_filter")
    prog = sockobj.programs["keep_k"]
    with udp_socket() as rx, udp_socket() as tx:
        rx.bind(("127.0.0.1", 0))
        before = open_fds()
        with prog.attach_socket(rx.fileno()) as link:
            assert link.fd == -1
            with pytest.raises(pyprobe.BpfError, match="not a kernel link") as info:
                link.pin("/sys/fs/bpf/nothing")
            assert info.value.errno == errno.EOPNOTSUPP
            tx.sendto(b"D", rx.getsockname())
            tx.sendto(b"K", rx.getsockname())
            assert rx.recv(8) == b"K"
        assert open_fds() == before  # the duplicate of the socket's fd is gone
    r, w = os.pipe()
    try:
        with pytest.raises(pyprobe.AttachError, match=f"fd {r} is not a socket") as err:
            prog.attach_socket(r)
        assert err.value.errno == errno.ENOTSOCK
    finally:
        os.close(r)
        os.close(w)
    closed = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    closed.close()
    with pytest.raises(ValueError, match="is the socket closed"):
        prog.attach_socket(closed)
    with pytest.raises(TypeError, match="must be a socket"):
        prog.attach_socket("eth0")  # type: ignore[arg-type]
    with udp_socket() as s, pytest.raises(pyprobe.AttachError, match="attach_socket needs") as kind:
        sockobj.programs["pick_socket"].attach_socket(s)
    assert kind.value.errno == errno.EINVAL


def test_object_close_detaches_the_socket_filter() -> None:
    need_feature("socket_filter")
    with udp_socket() as rx, udp_socket() as tx:
        rx.bind(("127.0.0.1", 0))
        obj = pyprobe.open(test_object("socket"))
        for name in obj.programs:
            obj.programs[name].autoload = name == "keep_k"
        obj.load()
        link = obj.programs["keep_k"].attach_socket(rx)
        tx.sendto(b"D", rx.getsockname())
        tx.sendto(b"K", rx.getsockname())
        assert rx.recv(8) == b"K"
        obj.close()
        assert link.closed
        tx.sendto(b"D", rx.getsockname())
        assert rx.recv(8) == b"D"


# --- SO_REUSEPORT ------------------------------------------------------------------------


def test_reuseport_program_steers_datagrams_to_the_chosen_socket(sockobj: pyprobe.BpfObject) -> None:
    need_feature("sk_reuseport")
    group = [udp_socket(reuseport=True) for _ in range(3)]
    senders = [udp_socket() for _ in range(8)]
    try:
        group[0].bind(("127.0.0.1", 0))
        addr = group[0].getsockname()
        for s in group[1:]:
            s.bind(addr)
        socks = sockobj.maps["reuseport_socks"]
        assert isinstance(socks, pyprobe.ReuseportSockArrayMap)
        for i, s in enumerate(group):
            socks[i] = s
        assert [socks[i] for i in range(3)] == [pyprobe.socket_cookie(s) for s in group]
        assert 3 not in socks and socks.keys() == [0, 1, 2]
        link = sockobj.programs["pick_socket"].attach_reuseport(group[0])
        assert isinstance(link, pyprobe.ReuseportLink)
        for target in (2, 1):
            sockobj.bss.reuseport_target = target
            for n, tx in enumerate(senders):  # eight source ports: the kernel's hash would spread them
                tx.sendto(b"%d" % n, addr)
            got = [group[target].recv(16) for _ in senders]
            assert sorted(got) == sorted(b"%d" % n for n in range(len(senders)))
            assert all(drain(s) == [] for s in group)
        assert sockobj.bss.reuseport_seen == 2 * len(senders)
        link.close()
        for tx in senders:
            tx.sendto(b"x", addr)
        assert sum(len(drain_wait(s)) for s in group) == len(senders)
        assert sockobj.bss.reuseport_seen == 2 * len(senders)  # detached: the program no longer runs
    finally:
        for s in group + senders:
            s.close()


def drain_wait(s: socket.socket) -> list[bytes]:
    """What arrives on ``s`` within a short wait."""
    s.settimeout(0.2)
    out = []
    with suppress(TimeoutError):
        while True:
            out.append(s.recv(64))
    s.settimeout(2)
    return out


def test_reuseport_program_steers_connections_to_the_chosen_listener(sockobj: pyprobe.BpfObject) -> None:
    need_feature("sk_reuseport")
    group = [socket.socket(socket.AF_INET, socket.SOCK_STREAM) for _ in range(2)]
    try:
        for s in group:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            s.settimeout(2)
        group[0].bind(("127.0.0.1", 0))
        addr = group[0].getsockname()
        group[1].bind(addr)
        for s in group:
            s.listen(8)
        socks = sockobj.maps.typed("reuseport_socks", pyprobe.ReuseportSockArrayMap)
        for i, s in enumerate(group):
            socks[i] = s
        sockobj.bss.reuseport_target = 1
        with sockobj.programs["pick_socket"].attach_reuseport(group[1].fileno()):
            clients = [socket.create_connection(addr, timeout=2) for _ in range(6)]
            try:
                accepted = [group[1].accept()[0] for _ in clients]
                for conn in accepted:
                    conn.close()
                group[0].setblocking(False)
                with pytest.raises(BlockingIOError):
                    group[0].accept()  # every connection went to listener 1
            finally:
                for c in clients:
                    c.close()
        assert sockobj.bss.reuseport_seen == 6
    finally:
        for s in group:
            s.close()


def test_reuseport_needs_so_reuseport(sockobj: pyprobe.BpfObject) -> None:
    need_feature("sk_reuseport")
    with udp_socket() as s:
        s.bind(("127.0.0.1", 0))
        with pytest.raises(pyprobe.AttachError, match="has no SO_REUSEPORT") as err:
            sockobj.programs["pick_socket"].attach_reuseport(s)
        assert err.value.errno == errno.EINVAL


# --- sk_lookup ---------------------------------------------------------------------------


def test_sk_lookup_hands_a_connection_to_a_chosen_socket(sockobj: pyprobe.BpfObject, netns: str) -> None:
    need_feature("sk_lookup")
    port = 7777  # nobody listens on it in the private namespace
    sockobj.bss.lookup_port = port
    with in_netns(netns):
        chosen = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        chosen.bind(("127.0.0.1", 0))
        chosen.listen(4)
        chosen.settimeout(2)
    with chosen:
        socks = sockobj.maps["lookup_socks"]
        assert isinstance(socks, pyprobe.SockMap)
        socks[0] = chosen
        assert socks[0] == pyprobe.socket_cookie(chosen)
        with in_netns(netns), pytest.raises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.1", port), timeout=2).close()
        link = sockobj.programs["steer"].attach_netns(netns)
        assert isinstance(link, pyprobe.NetnsLink) and link.netns == f"/run/netns/{netns}"
        assert link.type == pyprobe.LinkType.NETNS
        with in_netns(netns):
            client = socket.create_connection(("127.0.0.1", port), timeout=2)
        with client:
            server, peer = chosen.accept()
            with server:
                assert peer == client.getsockname()
                assert server.getsockname() == ("127.0.0.1", port)  # the address the client asked for
                client.sendall(b"through sk_lookup")
                assert server.recv(64) == b"through sk_lookup"
        assert sockobj.bss.lookup_steered == 1
        link.close()
        with in_netns(netns), pytest.raises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.1", port), timeout=2).close()


def test_flow_dissector_on_a_netns_fd_and_object_attach_skips_the_socket_kinds(
    sockobj: pyprobe.BpfObject, netns: str
) -> None:
    need_feature("flow_dissector")
    fd = os.open(f"/run/netns/{netns}", os.O_RDONLY | os.O_CLOEXEC)
    try:
        link = sockobj.programs["dissect"].attach_netns(fd)
        assert link.netns == f"fd {fd}" and link.id > 0
    finally:
        os.close(fd)  # the link keeps the namespace, not the caller's fd
    with pytest.raises(pyprobe.AttachError, match="already has a program of this kind") as busy:
        sockobj.programs["dissect"].attach_netns(f"/run/netns/{netns}")
    assert busy.value.errno == errno.E2BIG
    link.close()
    assert sockobj.attach() == []  # no socket section names a target
    with pytest.raises(pyprobe.AttachError, match="names no target"):
        sockobj.programs["steer"].attach()


def test_attach_netns_errors(sockobj: pyprobe.BpfObject) -> None:
    need_feature("sk_lookup")
    prog = sockobj.programs["steer"]
    with pytest.raises(pyprobe.AttachError, match=f"/run/netns/{PREFIX}_none") as missing:
        prog.attach_netns(f"{PREFIX}_none")
    assert missing.value.errno == errno.ENOENT
    with pytest.raises(pyprobe.AttachError, match="is not a network namespace") as wrong:
        prog.attach_netns("/proc/self/ns/mnt")
    assert wrong.value.errno == errno.EINVAL
    with pytest.raises(pyprobe.AttachError, match="attach_netns needs"):
        sockobj.programs["keep_k"].attach_netns()


# --- sk_msg and sk_skb on a sockhash / sockmap ----------------------------------------------


def test_sk_msg_redirects_what_one_socket_sends_to_another(sockobj: pyprobe.BpfObject, listener: socket.socket) -> None:
    need_feature("sk_msg")
    socks = sockobj.maps["msg_socks"]
    assert isinstance(socks, pyprobe.SockHashMap)
    (c1, s1), (c2, s2) = tcp_pair(listener), tcp_pair(listener)
    with c1, s1, c2, s2:
        link = sockobj.programs["msg_redirect"].attach_sockmap(socks)
        assert isinstance(link, pyprobe.SockMapLink)
        assert link.attach_type == pyprobe.AttachType.SK_MSG_VERDICT and link.map_name == "msg_socks"
        socks[0] = c1
        socks[1] = c2
        assert socks[0] == pyprobe.socket_cookie(c1) and sorted(socks) == [0, 1]
        c1.sendall(b"redirected")
        assert c2.recv(64) == b"redirected"  # sent on c1, received on c2
        assert drain_wait(s1) == []  # c1's peer got nothing
        assert sockobj.bss.msg_seen >= 1
        link.close()
        c3, s3 = tcp_pair(listener)
        with c3, s3:
            socks[2] = c3  # added after the detach: no program runs for it
            c3.sendall(b"plain")
            assert s3.recv(64) == b"plain"
        del socks[0]
        assert 0 not in socks


def test_sk_skb_redirects_what_one_socket_receives_to_another(
    sockobj: pyprobe.BpfObject, listener: socket.socket
) -> None:
    need_feature("sk_skb")
    socks = sockobj.maps["skb_socks"]
    assert isinstance(socks, pyprobe.SockMap)
    (c1, s1), (c2, s2) = tcp_pair(listener), tcp_pair(listener)
    before = open_fds()
    with c1, s1, c2, s2:
        parser = sockobj.programs["skb_parser"].attach_sockmap(socks)
        verdict = sockobj.programs["skb_verdict"].attach_sockmap(socks.fd)
        assert parser.attach_type == pyprobe.AttachType.SK_SKB_STREAM_PARSER
        assert verdict.attach_type == pyprobe.AttachType.SK_SKB_STREAM_VERDICT
        socks[0] = s1
        socks[1] = c2
        c1.sendall(b"to s1, lands on c2")
        assert c2.recv(64) == b"to s1, lands on c2"
        assert drain_wait(s1) == []
        assert sockobj.bss.skb_seen >= 1
        verdict.close()
        parser.close()
        assert open_fds() == before  # the links' own references to the map and programs are gone


def test_attach_sockmap_errors(sockobj: pyprobe.BpfObject) -> None:
    need_feature("sk_msg")
    prog = sockobj.programs["msg_redirect"]
    with pytest.raises(pyprobe.AttachError, match="is a reuseport_sockarray map, not a sockmap"):
        prog.attach_sockmap(sockobj.maps["reuseport_socks"])
    with pytest.raises(pyprobe.AttachError, match="attach type sk_skb_stream_parser is not one of sk_msg's"):
        prog.attach_sockmap(sockobj.maps["msg_socks"], attach_type="sk_skb_stream_parser")
    with pytest.raises(pyprobe.AttachError, match="attach_sockmap needs"):
        sockobj.programs["keep_k"].attach_sockmap(sockobj.maps["msg_socks"])
    r, w = os.pipe()
    try:
        with pytest.raises(pyprobe.AttachError):
            prog.attach_sockmap(r)
    finally:
        os.close(r)
        os.close(w)


def test_socket_map_values_and_errors(sockobj: pyprobe.BpfObject, listener: socket.socket) -> None:
    socks = sockobj.maps["skb_socks"]
    assert isinstance(socks, pyprobe.SockMap)
    with pytest.raises(ValueError, match="out of range"):
        socks[2] = listener
    with pytest.raises(TypeError, match="must be a socket"):
        socks[0] = "sock"  # type: ignore[assignment]
    with pytest.raises(pyprobe.KeyNotFoundError):
        socks[0]
    assert socks.get(0) is None and socks.keys() == []
    c, s = tcp_pair(listener)
    with c, s:
        socks.update(0, c.fileno())
        assert socks.get(0) == pyprobe.socket_cookie(c) != pyprobe.socket_cookie(s)
        del socks[0]
        with pytest.raises(pyprobe.KeyNotFoundError):
            del socks[0]


# --- flow dissector ----------------------------------------------------------------------

FLOW_KEYS = struct.Struct("=HHHBBBB2s2s2s4s4s")  # the start of struct bpf_flow_keys


def udp_frame(src: str, dst: str, sport: int, dport: int, payload: bytes = b"x" * 18) -> bytes:
    ip = struct.pack(
        "!BBHHHBBH4s4s", 0x45, 0, 20 + 8 + len(payload), 1, 0, 64, 17, 0, socket.inet_aton(src), socket.inet_aton(dst)
    )
    udp = struct.pack("!HHHH", sport, dport, 8 + len(payload), 0)
    return b"\x02" * 6 + b"\x04" * 6 + b"\x08\x00" + ip + udp + payload


def test_flow_dissector_parses_a_packet_with_test_run(sockobj: pyprobe.BpfObject) -> None:
    need_feature("flow_dissector")
    result = sockobj.programs["dissect"].test_run(udp_frame("10.1.2.3", "10.4.5.6", 4242, 53))
    assert result.retval == 0  # BPF_OK
    nhoff, thoff, addr_proto, _frag, _first, _encap, ip_proto, n_proto, sport, dport, src, dst = FLOW_KEYS.unpack(
        result.data[: FLOW_KEYS.size]
    )
    assert (nhoff, thoff, addr_proto, ip_proto) == (14, 34, 0x0800, 17)
    assert n_proto == b"\x08\x00"
    assert (int.from_bytes(sport, "big"), int.from_bytes(dport, "big")) == (4242, 53)
    assert (socket.inet_ntoa(src), socket.inet_ntoa(dst)) == ("10.1.2.3", "10.4.5.6")


def test_flow_dissector_runs_on_real_packets_of_its_namespace(sockobj: pyprobe.BpfObject, netns: str) -> None:
    need_feature("flow_dissector")
    # With RPS on, the kernel hashes each received packet to choose a CPU: through the namespace's
    # flow dissector.
    rps = "echo 1 > /sys/class/net/lo/queues/rx-0/rps_cpus"  # CPU 0: online on every machine
    subprocess.run(["ip", "netns", "exec", netns, "sh", "-c", rps], check=True)
    link = sockobj.programs["dissect"].attach_netns(f"/run/netns/{netns}")
    assert link.type == pyprobe.LinkType.NETNS
    with in_netns(netns):
        rx, tx = udp_socket(), udp_socket()
    with rx, tx:
        rx.bind(("127.0.0.1", 0))
        for n in range(10):
            tx.sendto(b"%d" % n, rx.getsockname())
        assert len([rx.recv(16) for _ in range(10)]) == 10
        assert sockobj.bss.dissected >= 10
        link.close()
        seen = sockobj.bss.dissected
        for n in range(10):
            tx.sendto(b"%d" % n, rx.getsockname())
        assert len([rx.recv(16) for _ in range(10)]) == 10
        assert sockobj.bss.dissected == seen
