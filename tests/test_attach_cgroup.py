"""Cgroup programs on the real kernel, each shown working on a process the test moves into a cgroup it
creates: cgroup_skb counting and dropping packets, sock_create refusing a family, connect4/6 rewriting
a port, bind4/6 rewriting and refusing binds, sockops counting connections, sysctl refusing a write,
getsockopt rewriting a result, device refusing an open; bpf_link and classic attachments with their
flags; the cgroup, task and inode storage maps read and written from Python."""

from __future__ import annotations

import errno
import itertools
import json
import os
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import pyprobe
from conftest import need_feature, open_fds, test_object
from pyprobe import features
from pyprobe.attach.cgroup import CgroupAttachFlags, CgroupLink, cgroup2_mount, query_cgroup
from pyprobe.enums import AttachType

pytestmark = pytest.mark.bpf

(
    INGRESS, EGRESS, EGRESS_DROPPED, SOCK_CREATE, SOCK_REFUSED, CONNECT4, CONNECT6, REWRITTEN, BIND4, BIND6,
    BIND_REFUSED, ESTABLISHED, STATE_CB, SYSCTL_READ, SYSCTL_REFUSED, GETSOCKOPT, DEV, DEV_DENIED,
) = range(18)  # fmt: skip
_serial = itertools.count()


@pytest.fixture(scope="module")
def cgroup2_root() -> Iterator[str]:
    root = cgroup2_mount()
    mounted = None
    if root is None:
        mounted = tempfile.mkdtemp(prefix=f"pyprobe-cg2-{os.getpid()}-")
        subprocess.run(["mount", "-t", "cgroup2", "none", mounted], check=True)
        root = mounted
    yield root
    if mounted is not None:
        subprocess.run(["umount", mounted], check=False)
        os.rmdir(mounted)


def remove_cgroup(path: str) -> None:
    """Moves what is left in the cgroup to its parent and removes it (children may take a moment to go)."""
    parent = os.path.dirname(path)
    deadline = time.monotonic() + 10
    while True:
        try:
            with open(os.path.join(path, "cgroup.procs")) as f:
                pids = f.read().split()
            for pid in pids:
                with open(os.path.join(parent, "cgroup.procs"), "w") as f:
                    f.write(pid)
            os.rmdir(path)
            return
        except FileNotFoundError:
            return
        except OSError as exc:
            if exc.errno not in (errno.EBUSY, errno.ESRCH) or time.monotonic() > deadline:
                raise
            time.sleep(0.05)


@pytest.fixture
def cgroup(cgroup2_root: str) -> Iterator[str]:
    path = os.path.join(cgroup2_root, f"pyprobe-cgroup-{os.getpid()}-{next(_serial)}")
    os.mkdir(path)
    try:
        yield path
    finally:
        remove_cgroup(path)


def in_cgroup(cgroup: str, code: str, **popen: Any) -> subprocess.Popen[str]:
    """Starts ``python -c code`` already inside ``cgroup`` (the shell moves itself there, then execs)."""
    return subprocess.Popen(
        ["sh", "-c", 'echo $$ > "$1/cgroup.procs" && shift && exec "$@"', "sh", cgroup,
         sys.executable, "-I", "-S", "-c", code],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **popen,
    )  # fmt: skip


def run_in_cgroup(cgroup: str, code: str) -> dict[str, Any]:
    """Runs ``code`` in a child process inside ``cgroup``; returns the JSON object it printed last."""
    proc = in_cgroup(cgroup, code)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, f"child failed ({proc.returncode}): {err}"
    result: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
    return result


CHILD_PRELUDE = """
import errno, json, os, socket, struct
def attempt(fn):
    try:
        return fn()
    except OSError as exc:
        return errno.errorcode.get(exc.errno, str(exc.errno))
"""


def counter(obj: pyprobe.BpfObject, slot: int) -> int:
    return int(obj.maps["counters"][slot])


@pytest.fixture
def cg_obj() -> Iterator[pyprobe.BpfObject]:
    need_feature("cgroup_link")
    with pyprobe.load(test_object("cgroup")) as obj:
        yield obj


def free_port(family: socket.AddressFamily = socket.AF_INET) -> int:
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.bind(("::1" if family == socket.AF_INET6 else "127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class Server:
    """A TCP server of the test process (outside the cgroup) that answers each connection with its port."""

    def __init__(self, family: socket.AddressFamily = socket.AF_INET) -> None:
        self.sock = socket.socket(family, socket.SOCK_STREAM)
        self.sock.bind(("::1" if family == socket.AF_INET6 else "127.0.0.1", 0))
        self.sock.listen(16)
        self.port: int = self.sock.getsockname()[1]
        self.accepted = 0
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with conn:
                self.accepted += 1
                conn.sendall(str(self.port).encode())

    def close(self) -> None:
        self.sock.shutdown(socket.SHUT_RDWR)
        self.sock.close()
        self.thread.join(5)


# --- cgroup_skb --------------------------------------------------------------------------


def test_cgroup_skb_counts_and_drops_the_cgroup_packets(cg_obj: pyprobe.BpfObject, cgroup: str) -> None:
    need_feature("cgroup_skb")
    need_feature("cgroup_storage")
    ingress = cg_obj.programs["skb_ingress"].attach_cgroup(cgroup)
    egress = cg_obj.programs["skb_egress"].attach_cgroup(cgroup)
    assert isinstance(egress, CgroupLink) and isinstance(egress, pyprobe.Link)
    assert (egress.cgroup, egress.attach_type, egress.mechanism) == (cgroup, AttachType.CGROUP_INET_EGRESS, "bpf_link")
    assert cgroup in repr(egress) and "cgroup_inet_egress" in repr(egress) and "bpf_link" in repr(egress)
    assert egress.type == pyprobe.LinkType.CGROUP
    code = (
        CHILD_PRELUDE
        + """
rx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); rx.bind(("127.0.0.1", 0))
tx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
sent = [attempt(lambda: tx.sendto(b"x" * 100, rx.getsockname())) for _ in range(5)]
got = [len(rx.recv(200)) for _ in range(5)]
print(json.dumps({"sent": sent, "got": got, "port": rx.getsockname()[1]}))
"""
    )
    result = run_in_cgroup(cgroup, code)
    assert result["sent"] == [100] * 5 and result["got"] == [100] * 5
    assert counter(cg_obj, EGRESS) >= 5
    assert counter(cg_obj, INGRESS) >= 5
    # the legacy cgroup local storage of the egress program: the bytes the cgroup sent
    storage = cg_obj.maps["egress_bytes"]
    assert isinstance(storage, pyprobe.CgroupLocalStorageMap)
    sent_bytes = storage[cgroup, AttachType.CGROUP_INET_EGRESS]
    assert sent_bytes >= 5 * (100 + 28)
    assert list(storage) == [(os.stat(cgroup).st_ino, AttachType.CGROUP_INET_EGRESS)]
    storage[cgroup, "cgroup_inet_egress"] = 7
    assert storage.lookup((cgroup, AttachType.CGROUP_INET_EGRESS)) == 7

    # now drop the datagrams to one port: sendto fails with EPERM in the cgroup, not outside it
    victim = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    victim.bind(("127.0.0.1", 0))
    victim.settimeout(0.2)
    with victim:
        cg_obj.bss.drop_udp_port = victim.getsockname()[1]
        code = (
            CHILD_PRELUDE
            + f"""
tx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
print(json.dumps({{"sent": attempt(lambda: tx.sendto(b"y", ("127.0.0.1", {victim.getsockname()[1]})))}}))
"""
        )
        assert run_in_cgroup(cgroup, code)["sent"] == "EPERM"
        assert counter(cg_obj, EGRESS_DROPPED) == 1
        with pytest.raises(TimeoutError):
            victim.recv(10)
        egress.detach()
        assert run_in_cgroup(cgroup, code)["sent"] == 1
        assert victim.recv(10) == b"y"
    assert counter(cg_obj, EGRESS_DROPPED) == 1
    assert "detached" in repr(egress)
    ingress.detach()


# --- sock_create ---------------------------------------------------------------------------


def test_sock_create_refuses_a_family(cg_obj: pyprobe.BpfObject, cgroup: str) -> None:
    need_feature("cgroup_sock")
    cg_obj.bss.refuse_family = socket.AF_INET6
    with cg_obj.programs["sock_create"].attach_cgroup(cgroup) as link:
        assert link.attach_type == AttachType.CGROUP_INET_SOCK_CREATE
        code = (
            CHILD_PRELUDE
            + """
v6 = attempt(lambda: socket.socket(socket.AF_INET6, socket.SOCK_DGRAM).family)
v4 = attempt(lambda: socket.socket(socket.AF_INET, socket.SOCK_DGRAM).family)
print(json.dumps({"v6": v6, "v4": v4}))
"""
        )
        assert run_in_cgroup(cgroup, code) == {"v6": "EPERM", "v4": int(socket.AF_INET)}
        assert counter(cg_obj, SOCK_REFUSED) == 1
        assert counter(cg_obj, SOCK_CREATE) >= 2
        # the test process is outside the cgroup: its sockets are not refused
        socket.socket(socket.AF_INET6, socket.SOCK_DGRAM).close()
        assert counter(cg_obj, SOCK_REFUSED) == 1


# --- connect4 / connect6 ------------------------------------------------------------------------


@pytest.mark.parametrize("family", [socket.AF_INET, socket.AF_INET6], ids=["connect4", "connect6"])
def test_connect_goes_to_the_rewritten_port(
    cg_obj: pyprobe.BpfObject, cgroup: str, family: socket.AddressFamily
) -> None:
    need_feature("cgroup_sock_addr")
    v6 = family == socket.AF_INET6
    server = Server(family)
    nobody = free_port(family)  # a port nobody listens on
    cg_obj.bss.connect_from = nobody
    cg_obj.bss.connect_to = server.port
    host = "::1" if v6 else "127.0.0.1"
    code = (
        CHILD_PRELUDE
        + f"""
s = socket.socket({int(family)}, socket.SOCK_STREAM)
s.settimeout(5)
err = attempt(lambda: s.connect(({host!r}, {nobody})))
print(json.dumps({{"err": err, "peer": s.getpeername()[1] if err is None else None,
                  "answer": s.recv(16).decode() if err is None else None}}))
"""
    )
    try:
        assert run_in_cgroup(cgroup, code)["err"] == "ECONNREFUSED"  # nothing attached yet
        link = cg_obj.programs["connect6" if v6 else "connect4"].attach_cgroup(cgroup)
        assert link.attach_type == (AttachType.CGROUP_INET6_CONNECT if v6 else AttachType.CGROUP_INET4_CONNECT)
        result = run_in_cgroup(cgroup, code)
        # connect() to the empty port reached the server: the socket's peer is the rewritten port
        assert result == {"err": None, "peer": server.port, "answer": str(server.port)}
        assert counter(cg_obj, REWRITTEN) == 1
        assert counter(cg_obj, CONNECT6 if v6 else CONNECT4) >= 1
        assert server.accepted == 1
        link.detach()
        assert run_in_cgroup(cgroup, code)["err"] == "ECONNREFUSED"
    finally:
        server.close()


# --- bind4 / bind6 --------------------------------------------------------------------------------


@pytest.mark.parametrize("family", [socket.AF_INET, socket.AF_INET6], ids=["bind4", "bind6"])
def test_bind_is_rewritten_or_refused(cg_obj: pyprobe.BpfObject, cgroup: str, family: socket.AddressFamily) -> None:
    need_feature("cgroup_sock_addr")
    v6 = family == socket.AF_INET6
    refused, asked, given = free_port(family), free_port(family), free_port(family)
    cg_obj.bss.bind_refuse = refused
    cg_obj.bss.bind_from = asked
    cg_obj.bss.bind_to = given
    host = "::1" if v6 else "127.0.0.1"
    with cg_obj.programs["bind6" if v6 else "bind4"].attach_cgroup(cgroup):
        code = (
            CHILD_PRELUDE
            + f"""
a = socket.socket({int(family)}, socket.SOCK_STREAM)
b = socket.socket({int(family)}, socket.SOCK_STREAM)
print(json.dumps({{"refused": attempt(lambda: a.bind(({host!r}, {refused}))),
                  "bound": attempt(lambda: b.bind(({host!r}, {asked}))) or b.getsockname()[1]}}))
"""
        )
        assert run_in_cgroup(cgroup, code) == {"refused": "EPERM", "bound": given}
    assert counter(cg_obj, BIND_REFUSED) == 1
    assert counter(cg_obj, BIND6 if v6 else BIND4) == 2


# --- sockops ----------------------------------------------------------------------------------------


def test_sockops_counts_established_connections(cg_obj: pyprobe.BpfObject, cgroup: str) -> None:
    need_feature("sockops")
    server = Server()
    try:
        with cg_obj.programs["sock_ops"].attach_cgroup(cgroup) as link:
            assert link.attach_type == AttachType.CGROUP_SOCK_OPS
            code = (
                CHILD_PRELUDE
                + f"""
answers = []
for _ in range(3):
    with socket.create_connection(("127.0.0.1", {server.port}), timeout=5) as s:
        answers.append(s.recv(16).decode())
print(json.dumps({{"answers": answers}}))
"""
            )
            assert run_in_cgroup(cgroup, code) == {"answers": [str(server.port)] * 3}
            assert counter(cg_obj, ESTABLISHED) == 3
            # the program asked for state callbacks at connect: each connection reports its closing states
            deadline = time.monotonic() + 5
            while counter(cg_obj, STATE_CB) < 3 and time.monotonic() < deadline:
                time.sleep(0.05)
            assert counter(cg_obj, STATE_CB) >= 3
    finally:
        server.close()


# --- sysctl -----------------------------------------------------------------------------------------


def test_sysctl_reads_are_seen_and_a_write_refused(cgroup: str) -> None:
    need_feature("cgroup_sysctl")
    need_feature("cgroup_link")
    name = "net/ipv4/ip_default_ttl"
    spec = pyprobe.open(test_object("cgroup"))
    with spec:
        spec.rodata.sysctl_refuse = name.encode()
        obj = spec.load()
        with obj.programs["sysctl_guard"].attach_cgroup(cgroup):
            # the child writes back the value it read: refused in the cgroup, a no-op if it went through
            code = (
                CHILD_PRELUDE
                + f"""
path = "/proc/sys/{name}"
value = open(path).read()
def write():
    with open(path, "w") as f:
        f.write(value)
print(json.dumps({{"value": value.strip(), "write": attempt(write)}}))
"""
            )
            result = run_in_cgroup(cgroup, code)
        assert result["write"] == "EPERM"
        assert result["value"] == Path(f"/proc/sys/{name}").read_text().strip()
        assert counter(obj, SYSCTL_REFUSED) >= 1  # the write, and the retry of the flush at close
        assert counter(obj, SYSCTL_READ) >= 1
        assert obj.bss.sysctl_name.rstrip(b"\0") == name.encode()


# --- getsockopt -------------------------------------------------------------------------------------


def test_getsockopt_result_is_rewritten(cg_obj: pyprobe.BpfObject, cgroup: str) -> None:
    need_feature("cgroup_sockopt")
    cg_obj.bss.sockopt_sndbuf = 55555
    with cg_obj.programs["getsockopt_rewrite"].attach_cgroup(cgroup) as link:
        assert link.attach_type == AttachType.CGROUP_GETSOCKOPT
        code = (
            CHILD_PRELUDE
            + """
s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
print(json.dumps({"sndbuf": s.getsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF),
                  "rcvbuf": s.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF)}))
"""
        )
        result = run_in_cgroup(cgroup, code)
    assert result["sndbuf"] == 55555
    assert result["rcvbuf"] != 55555
    with socket.socket() as own:  # outside the cgroup: the kernel's value
        assert own.getsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF) != 55555
    assert counter(cg_obj, GETSOCKOPT) >= 2


# --- device -----------------------------------------------------------------------------------------


def test_device_open_is_refused(cg_obj: pyprobe.BpfObject, cgroup: str, tmp_path: Path) -> None:
    need_feature("cgroup_device")
    zero = tmp_path / "zero"  # a node of its own for /dev/zero (1:5): the program checks the device, not the path
    os.mknod(zero, 0o666 | 0o020000, os.makedev(1, 5))
    with cg_obj.programs["dev_guard"].attach_cgroup(cgroup) as link:
        assert link.attach_type == AttachType.CGROUP_DEVICE
        code = (
            CHILD_PRELUDE
            + f"""
print(json.dumps({{"zero": attempt(lambda: len(open({str(zero)!r}, "rb").read(4))),
                  "devzero": attempt(lambda: len(open("/dev/zero", "rb").read(4))),
                  "null": attempt(lambda: len(open("/dev/null", "rb").read(4)))}}))
"""
        )
        assert run_in_cgroup(cgroup, code) == {"zero": "EPERM", "devzero": "EPERM", "null": 0}
    assert counter(cg_obj, DEV_DENIED) == 2
    with open(zero, "rb") as f:  # outside the cgroup the device opens
        assert f.read(4) == b"\0" * 4


# --- classic attachments and their flags --------------------------------------------------------------


def test_classic_multi_attach_replace_and_exclusive(cgroup: str) -> None:
    need_feature("cgroup_sock")
    need_feature("cgroup_link")
    objs = [pyprobe.load(test_object("cgroup")) for _ in range(3)]
    try:
        progs = [obj.programs["sock_create"] for obj in objs]
        hook = AttachType.CGROUP_INET_SOCK_CREATE
        multi = CgroupAttachFlags.ALLOW_MULTI
        first = progs[0].attach_cgroup(cgroup, flags=multi)
        second = progs[1].attach_cgroup(cgroup, flags=multi)
        assert (first.mechanism, first.flags) == ("prog_attach", multi)
        assert "prog_attach" in repr(first) and cgroup in repr(first) and "cgroup_inet_sock_create" in repr(first)
        assert query_cgroup(cgroup, hook) == [progs[0].id, progs[1].id]
        code = CHILD_PRELUDE + "socket.socket().close(); print(json.dumps({}))"
        run_in_cgroup(cgroup, code)
        assert [counter(obj, SOCK_CREATE) for obj in objs] == [1, 1, 0]  # both programs ran
        with pytest.raises(pyprobe.BpfError, match="no kernel link"):
            first.pin("/sys/fs/bpf/nowhere")
        with pytest.raises(pyprobe.BpfError, match="no kernel link"):
            _ = first.fd

        # REPLACE swaps the second program for the third in place
        third = progs[2].attach_cgroup(cgroup, flags=multi | CgroupAttachFlags.REPLACE, replace=progs[1])
        assert query_cgroup(cgroup, hook) == [progs[0].id, progs[2].id]
        run_in_cgroup(cgroup, code)
        assert [counter(obj, SOCK_CREATE) for obj in objs] == [2, 1, 1]
        second.detach()  # already replaced: nothing left to detach, no error
        third.detach()
        first.detach()
        assert query_cgroup(cgroup, hook) == []

        # an exclusive program (NONE) keeps bpf_links and multi programs off the hook
        only = progs[0].attach_cgroup(cgroup, flags=CgroupAttachFlags.NONE)
        assert "exclusive" in repr(only)
        with pytest.raises(pyprobe.AttachError, match="does not allow"):
            progs[1].attach_cgroup(cgroup)
        with pytest.raises(pyprobe.AttachError, match="does not allow"):
            progs[1].attach_cgroup(cgroup, flags=multi)
        only.detach()
        with progs[1].attach_cgroup(cgroup) as link:
            assert query_cgroup(cgroup, hook) == [progs[1].id]
            assert link.id > 0
            link.update(progs[2])  # the link now runs the third object's program
            assert query_cgroup(cgroup, hook) == [progs[2].id]
            assert link.program is progs[2]
        assert query_cgroup(cgroup, hook) == []
    finally:
        for obj in objs:
            obj.close()


def test_attach_by_fd_and_object_close_detaches(cgroup: str) -> None:
    need_feature("cgroup_sock")
    need_feature("cgroup_link")
    obj = pyprobe.load(test_object("cgroup"))
    fd = os.open(cgroup, os.O_RDONLY | os.O_DIRECTORY)
    try:
        link = obj.programs["sock_create"].attach_cgroup(fd)
        classic = obj.programs["skb_ingress"].attach_cgroup(fd, flags=CgroupAttachFlags.ALLOW_MULTI)
        assert link.cgroup == cgroup and classic.cgroup == cgroup
        assert query_cgroup(fd, "cgroup_inet_sock_create") == [obj.programs["sock_create"].id]
        obj.close()  # detaches both
        assert link.closed and classic.closed
        assert query_cgroup(cgroup, AttachType.CGROUP_INET_SOCK_CREATE) == []
        assert query_cgroup(cgroup, AttachType.CGROUP_INET_INGRESS) == []
        os.fstat(fd)  # the caller's fd stays open
    finally:
        os.close(fd)
        obj.close()


# --- errors -----------------------------------------------------------------------------------------


def test_errors_name_the_cgroup_and_the_program(cg_obj: pyprobe.BpfObject, cgroup2_root: str, tmp_path: Path) -> None:
    prog = cg_obj.programs["connect4"]
    missing = os.path.join(cgroup2_root, f"pyprobe-no-such-cgroup-{os.getpid()}")
    with pytest.raises(pyprobe.AttachError, match=f"no cgroup {missing}") as info:
        prog.attach_cgroup(missing)
    assert info.value.errno == errno.ENOENT
    with pytest.raises(pyprobe.AttachError, match="not a cgroup v2 directory") as info:
        prog.attach_cgroup(tmp_path)
    assert info.value.errno == errno.EINVAL
    v1 = next((m for m in ("/sys/fs/cgroup/cpu", "/sys/fs/cgroup/memory") if os.path.ismount(m)), None)
    if v1 is not None and v1 != cgroup2_mount():
        with pytest.raises(pyprobe.AttachError, match="cgroup v1 hierarchy"):
            prog.attach_cgroup(v1)
    file = tmp_path / "file"
    file.write_text("")
    with pytest.raises(pyprobe.AttachError, match="not a cgroup directory"):
        prog.attach_cgroup(file)
    with pytest.raises(pyprobe.AttachError, match="is not open"):
        prog.attach_cgroup(987654)
    with pytest.raises(TypeError, match="path or an fd"):
        prog.attach_cgroup(1.5)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="REPLACE needs ALLOW_MULTI"):
        prog.attach_cgroup(cgroup2_root, flags=CgroupAttachFlags.REPLACE, replace=prog)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="replace= needs"):
        prog.attach_cgroup(cgroup2_root, replace=prog)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="unknown flags"):
        prog.attach_cgroup(cgroup2_root, flags=0x100)
    with pyprobe.open(test_object("cgroup_task_storage")) as other:
        other.programs["inode_storage_writer"].autoload = False
        other.load()
        with pytest.raises(pyprobe.AttachError, match=r"'task_storage_writer' is a tracing program.*attach_cgroup"):
            other.programs["task_storage_writer"].attach_cgroup(cgroup2_root)
    # the section names no cgroup: attach() says which method to call
    with pytest.raises(pyprobe.AttachError, match=r"names no cgroup.*attach_cgroup\('/sys/fs/cgroup/NAME'\)"):
        prog.attach()
    # obj.attach() attaches what names its target and skips the cgroup programs, as it skips SEC("uprobe")
    assert cg_obj.attach() == []


def test_features_name_the_cgroup_kinds() -> None:
    for name, since in (
        ("cgroup_skb", (4, 10)), ("cgroup_sock", (4, 10)), ("cgroup_sock_addr", (4, 17)), ("sockops", (4, 13)),
        ("cgroup_device", (4, 15)), ("cgroup_sysctl", (5, 2)), ("cgroup_sockopt", (5, 3)), ("cgroup_link", (5, 7)),
        ("cgroup_storage", (4, 19)), ("cgrp_storage", (6, 2)), ("task_storage", (5, 11)), ("inode_storage", (5, 10)),
    ):  # fmt: skip
        status = features.probe(name)
        assert status.feature.since == since
        if features.kernel_version()[:2] >= since:
            assert status.available or status.explained, status


# --- storage maps -----------------------------------------------------------------------------------------


STORAGE_CHILD = """
import os, sys
print(os.getpid(), flush=True)
sys.stdin.readline()
for _ in range(10):
    os.getppid()
print("done", flush=True)
"""


def test_cgroup_storage_by_path_and_fd(cgroup: str) -> None:
    need_feature("cgrp_storage")
    with pyprobe.load(test_object("cgroup_storage")) as obj:
        storage = obj.maps["cgroup_values"]
        assert isinstance(storage, pyprobe.CgroupStorageMap)
        assert cgroup not in storage
        value = storage.value_type(syscalls=0, stamp=424242, seen=0)
        storage[cgroup] = value  # Python creates the cgroup's storage
        link = obj.programs["cgroup_storage_writer"].attach_trace()
        child = in_cgroup(cgroup, STORAGE_CHILD, stdin=subprocess.PIPE)
        try:
            assert child.stdout is not None and child.stdin is not None
            obj.bss.target_tgid = int(child.stdout.readline())
            child.stdin.write("go\n")
            child.stdin.flush()
            assert child.stdout.readline().strip() == "done"
        finally:
            child.communicate(timeout=30)
        link.detach()
        got = storage[cgroup]
        assert got.syscalls >= 10 and got.seen == 424242  # the program counted, and read what Python wrote
        fd = os.open(cgroup, os.O_RDONLY | os.O_DIRECTORY)
        try:
            assert storage[fd].syscalls == got.syscalls
            storage.update(fd, storage.value_type(syscalls=1, stamp=2, seen=3), pyprobe.UpdateFlags.EXIST)
            assert storage.lookup(cgroup).to_dict() == {"syscalls": 1, "stamp": 2, "seen": 3}
        finally:
            os.close(fd)
        del storage[cgroup]
        assert storage.lookup(cgroup) is None
        with pytest.raises(pyprobe.KeyNotFoundError, match=f"cgroup '{cgroup}'"):
            storage[cgroup]
        with pytest.raises(pyprobe.MapError, match="cannot open cgroup /nonexistent"):
            storage["/nonexistent"]
        with pytest.raises(TypeError, match="cannot be iterated"):
            list(storage)


def test_task_storage_by_pid(tmp_path: Path) -> None:
    need_feature("task_storage")
    with pyprobe.open(test_object("cgroup_task_storage")) as spec:
        spec.programs["inode_storage_writer"].autoload = False
        obj = spec.load()
        tasks = obj.maps["task_values"]
        assert isinstance(tasks, pyprobe.TaskStorageMap)
        link = obj.programs["task_storage_writer"].attach_trace()
        child = subprocess.Popen(
            [sys.executable, "-I", "-S", "-c", STORAGE_CHILD], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )
        try:
            assert child.stdout is not None and child.stdin is not None
            pid = int(child.stdout.readline())
            assert pid not in tasks
            tasks[pid] = tasks.value_type(syscalls=0, stamp=777, seen=0)
            obj.bss.target_tgid = pid
            child.stdin.write("go\n")
            child.stdin.flush()
            assert child.stdout.readline().strip() == "done"
            got = tasks[pid]
            assert got.syscalls >= 10 and got.seen == 777
            pidfd = os.pidfd_open(pid)
            try:
                assert tasks.by_pidfd(pidfd).seen == 777
            finally:
                os.close(pidfd)
        finally:
            child.communicate(timeout=30)
            link.detach()
        child.wait()
        with pytest.raises(pyprobe.KeyNotFoundError, match=f"no process with pid {pid}"):
            tasks[pid]
        assert tasks.lookup(os.getpid()) is None


def test_inode_storage_by_file(tmp_path: Path) -> None:
    need_feature("inode_storage")
    lsm = features.probe("lsm").available
    with pyprobe.open(test_object("cgroup_task_storage")) as spec:
        spec.programs["inode_storage_writer"].autoload = lsm  # BPF LSM programs write inode storage
        spec.programs["task_storage_writer"].autoload = False
        obj = spec.load()
        inodes = obj.maps["inode_values"]
        assert isinstance(inodes, pyprobe.InodeStorageMap)
        path = tmp_path / "file"
        path.write_text("x")
        assert path not in inodes
        inodes[path] = inodes.value_type(opener_tgid=1, opens=2)
        with open(path) as f:
            assert inodes[f].opens == 2
            assert inodes[f.fileno()].opener_tgid == 1
        os.rename(path, tmp_path / "moved")  # the value belongs to the inode, not the name
        assert inodes[tmp_path / "moved"].opens == 2
        del inodes[tmp_path / "moved"]
        assert inodes.lookup(tmp_path / "moved") is None
        if not lsm:
            return  # BPF LSM programs are refused by this kernel (features.probe("lsm") says why)
        target = tmp_path / "opened"
        target.write_text("y")
        with obj.programs["inode_storage_writer"].attach_trace():
            child = subprocess.Popen(
                [sys.executable, "-I", "-S", "-c", f"import sys; print(1, flush=True); sys.stdin.readline(); "
                 f"open({str(target)!r}).close(); open({str(target)!r}).close()"],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
            )  # fmt: skip
            assert child.stdout is not None
            child.stdout.readline()
            obj.bss.target_tgid = child.pid
            child.communicate("go\n", timeout=30)
        got = inodes[target]
        assert (got.opener_tgid, got.opens) == (child.pid, 2)


def test_storage_maps_reject_bad_owners(tmp_path: Path) -> None:
    need_feature("task_storage")
    with pyprobe.open(test_object("cgroup_task_storage")) as spec:
        spec.programs["inode_storage_writer"].autoload = False
        obj = spec.load()
        tasks = obj.maps["task_values"]
        with pytest.raises(TypeError, match="a task is a pid"):
            tasks["1"]
        with pytest.raises(ValueError, match="out of range"):
            tasks[-3]
        inodes = obj.maps["inode_values"]
        with pytest.raises(pyprobe.MapError, match="cannot open file"):
            inodes[tmp_path / "absent"]
        with pytest.raises(pyprobe.MapError, match="fd 987654 is not open"):
            inodes[987654]
        with pytest.raises(TypeError, match="cannot be iterated"):
            iter(inodes)
        with pytest.raises(ValueError, match="must be"):
            tasks.update(os.getpid(), tasks.value_type(), flags=struct.calcsize("Q") << 10)


def test_attach_detach_and_storage_calls_leak_no_fd(cgroup: str, tmp_path: Path) -> None:
    need_feature("cgroup_link")
    need_feature("task_storage")
    with pyprobe.load(test_object("cgroup")) as obj:
        prog = obj.programs["sock_create"]
        prog.attach_cgroup(cgroup).detach()  # warm up (lazy imports, feature probes)
        before = open_fds()
        for _ in range(20):
            prog.attach_cgroup(cgroup).detach()
            prog.attach_cgroup(cgroup, flags=CgroupAttachFlags.ALLOW_MULTI).detach()
            with pytest.raises(pyprobe.AttachError):
                prog.attach_cgroup(cgroup + "-absent")
            query_cgroup(cgroup, AttachType.CGROUP_INET_SOCK_CREATE)
        assert open_fds() == before
    with pyprobe.open(test_object("cgroup_task_storage")) as spec:
        spec.programs["inode_storage_writer"].autoload = False
        obj = spec.load()
        tasks, inodes = obj.maps["task_values"], obj.maps["inode_values"]
        (tmp_path / "f").write_text("")
        tasks.lookup(os.getpid())
        before = open_fds()
        for i in range(20):
            tasks[os.getpid()] = tasks.value_type(stamp=i)
            inodes[tmp_path / "f"] = inodes.value_type(opens=i)
            assert tasks[os.getpid()].stamp == inodes[tmp_path / "f"].opens == i
            with pytest.raises(pyprobe.KeyNotFoundError):
                tasks[1 << 30]
        del tasks[os.getpid()]
        assert open_fds() == before
