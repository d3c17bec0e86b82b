"""Signals against a process that holds a pinned map while threads use it; what is left in the kernel after.

The holder loads an object, pins one map, attaches a program and keeps
threads writing to the maps. SIGINT, SIGTERM and SIGHUP end it through
its handlers (the object closes in a ``with`` block while the writers are
inside calls: they must stop with ClosedError, and nothing may crash);
SIGKILL ends it at once. Afterwards, read through :mod:`pyprobe.system`:
the pinned map is still there with what was written, the holder's
programs and unpinned maps are gone, and removing the pin frees the map.
"""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Sequence
from typing import Any

import pytest

import pyprobe
from conftest import bpf_unavailable, test_object
from pyprobe import system

pytestmark = pytest.mark.bpf

HOLDER = """
import os, signal, struct, sys, threading, time
import pyprobe
from pyprobe import ClosedError

def stop(signum, frame):
    raise SystemExit(0)

signal.signal(signal.SIGTERM, stop)
signal.signal(signal.SIGHUP, stop)
path, pin = sys.argv[1], sys.argv[2]
unexpected = []

def writer(obj, n):
    counts = obj.maps["counts"]
    try:
        while True:
            counts[n] = 7
            if n == 0:
                obj.bss.runs = n
                os.getpid()  # the attached tracepoint counts these
    except ClosedError:
        pass
    except BaseException as exc:
        unexpected.append(repr(exc))

try:
    with pyprobe.load(path) as obj:
        obj.maps["counts"].pin(pin)
        obj.maps["counts"][4242] = 99
        obj.programs["on_getpid"].attach()
        for n in range(4):
            threading.Thread(target=writer, args=(obj, n), daemon=True).start()
        print("ready", obj.maps["counts"].id, obj.programs["on_getpid"].id, flush=True)
        while True:
            time.sleep(0.01)
except (KeyboardInterrupt, SystemExit):
    pass
time.sleep(0.05)  # the writers see the close
if unexpected:
    print("UNEXPECTED", unexpected, flush=True)
    sys.exit(3)
print("clean", flush=True)
"""

SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGKILL)
ROUNDS = 6


@pytest.fixture(autouse=True)
def _need_bpf() -> None:
    reason = bpf_unavailable()
    if reason:
        pytest.skip(reason)
    if not os.path.ismount("/sys/fs/bpf"):
        pytest.skip("bpffs is not mounted at /sys/fs/bpf")


def _gone(ids: set[int], listing: Callable[[], Sequence[Any]], timeout: float = 3.0) -> bool:
    """Whether none of ``ids`` is listed any more (the kernel frees objects shortly after the last fd closes)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        listed = {info.id for info in listing()}
        if not ids & listed:
            return True
        time.sleep(0.05)
    return False


@pytest.mark.parametrize("signum", SIGNALS, ids=[s.name for s in SIGNALS])
def test_signal_to_a_pinned_map_holder_leaves_only_the_pin(signum: signal.Signals) -> None:
    outcomes = []
    for round_ in range(ROUNDS):
        pin = f"/sys/fs/bpf/pyprobe_sig_{os.getpid()}_{signum.name}_{round_}"
        proc = subprocess.Popen(
            [sys.executable, "-X", "faulthandler", "-c", textwrap.dedent(HOLDER), str(test_object("minimal")), pin],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        try:
            assert proc.stdout is not None
            line = proc.stdout.readline().split()
            assert line[:1] == ["ready"], (line, proc.stderr.read() if proc.stderr else "")
            map_id, prog_id = int(line[1]), int(line[2])
            time.sleep(0.02 + 0.03 * round_)  # the writers are busy by now
            proc.send_signal(signum)
            out, err = proc.communicate(timeout=20)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        try:
            if signum == signal.SIGKILL:
                assert proc.returncode == -signal.SIGKILL
            else:
                assert proc.returncode == 0 and "clean" in out, (proc.returncode, out, err)
            assert "Fatal Python error" not in err, err
            # The pin keeps the map, with what was written; the program went with the process.
            assert map_id in {m.id for m in system.maps()}
            with pyprobe.Map.from_pinned(pin, key_type=ctypes.c_uint32, value_type=ctypes.c_uint64) as kept:
                assert kept.id == map_id and kept[4242] == 99
            assert _gone({prog_id}, system.programs), f"program {prog_id} outlived its process"
        finally:
            if os.path.exists(pin):
                os.unlink(pin)
        assert _gone({map_id}, system.maps), f"map {map_id} outlived its pin"
        outcomes.append(proc.returncode)
    print(f"{signum.name}: rounds={ROUNDS} exits={outcomes}")
