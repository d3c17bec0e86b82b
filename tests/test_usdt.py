"""USDT: listing probes from the ELF notes, and attaching with libbpf's USDT support (semaphores too)."""

from __future__ import annotations

import struct
import subprocess
import sys
import time
from pathlib import Path

import pytest

import pyprobe
from conftest import start, stop, target, test_object

SLOT = struct.Struct("<Q4qI4x")
USDT_TICK, USDT_GATED = 5, 6


def test_probes_lists_provider_name_address_semaphore_arguments() -> None:
    probes = {(p.provider, p.name): p for p in pyprobe.usdt.probes(target("usdt_target"))}
    assert set(probes) == {("pyprobe_test", "tick"), ("pyprobe_test", "gated")}
    tick, gated = probes["pyprobe_test", "tick"], probes["pyprobe_test", "gated"]
    assert [(a.size, a.signed) for a in tick.arguments] == [(8, True), (4, True), (8, True)]
    assert len(gated.arguments) == 2
    assert gated.semaphore != 0 and gated.semaphore_offset != 0
    assert tick.address > 0 and tick.offset > 0
    assert tick.binary == str(target("usdt_target"))


def test_probes_of_a_binary_without_notes() -> None:
    assert pyprobe.usdt.probes(target("utest")) == []


@pytest.mark.bpf
def test_usdt_arguments_cookie_and_semaphore() -> None:
    proc = start("usdt_target", "-1", "2000")
    try:
        with pyprobe.open(test_object("attach_kinds")) as obj:
            obj.programs["on_fentry"].autoload = False
            obj.programs["on_lsm"].autoload = False
            obj.load()
            tick = obj.programs["on_tick"].attach_usdt(
                target("usdt_target"), "pyprobe_test", "tick", pid=proc.pid, cookie=99
            )
            assert isinstance(tick, pyprobe.UsdtLink)
            assert (tick.provider, tick.name, tick.pid) == ("pyprobe_test", "tick", proc.pid)
            gated = obj.programs["on_gated"].attach_usdt(target("usdt_target"), "pyprobe_test", "gated", pid=proc.pid)
            # libbpf raised the semaphore: the target now takes its gated branch
            assert proc.stdout is not None
            assert proc.stdout.readline() == b"semaphore on\n"

            def slot(key: int) -> tuple[int, ...]:
                return SLOT.unpack(obj.maps["slots"].get_bytes(struct.pack("<I", key)))

            deadline = time.monotonic() + 5
            while time.monotonic() < deadline and (slot(USDT_TICK)[0] < 2 or slot(USDT_GATED)[0] < 2):
                time.sleep(0.01)
            _, i, small, big, cookie, _ = slot(USDT_TICK)
            assert (small, big - i, cookie) == (i % 1000, 1000000000000, 99)
            _, gi, neg, *_ = slot(USDT_GATED)
            assert neg == -(gi % 1000)
            tick.detach()
            gated.detach()
    finally:
        stop(proc)


@pytest.mark.bpf
def test_usdt_unknown_probe_lists_what_the_binary_has() -> None:
    with pyprobe.open(test_object("attach_kinds")) as obj:
        obj.programs["on_fentry"].autoload = False
        obj.programs["on_lsm"].autoload = False
        obj.load()
        with pytest.raises(pyprobe.SymbolNotFoundError, match=r"no USDT probe pyprobe_test:nope .*pyprobe_test:tick"):
            obj.programs["on_tick"].attach_usdt(target("usdt_target"), "pyprobe_test", "nope")
        assert obj.links == []


def test_notes_that_are_not_utf8_are_listed_with_escapes(tmp_path: Path) -> None:
    data = bytearray(target("usdt_target").read_bytes())
    at = data.find(b"pyprobe_test\0tick\0")
    assert at > 0
    data[at] = 0xFF  # the provider's first byte
    data[at + len(b"pyprobe_test\0")] = 0xFE  # the name's
    data[at + len(b"pyprobe_test\0tick\0")] = 0x80  # the arguments'
    patched = tmp_path / "usdt_target"
    patched.write_bytes(bytes(data))
    found = {(p.provider, p.name): p for p in pyprobe.usdt.probes(patched)}
    assert set(found) == {("\\xffyprobe_test", "\\xfeick"), ("pyprobe_test", "gated")}
    assert found["\\xffyprobe_test", "\\xfeick"].arguments[0].spec.startswith("\\x80")
    out = subprocess.run(
        [sys.executable, "-m", "pyprobe", "list", "usdt", str(patched)], capture_output=True, text=True, check=True
    ).stdout
    assert "\\xffyprobe_test" in out and "gated" in out
