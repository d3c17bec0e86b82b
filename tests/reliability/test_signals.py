"""Signals against ``pyprobe trace -c CMD``: whatever ends pyprobe, the command ends and nothing stays in the kernel.

Each round starts ``pyprobe trace -c 'utest -1 2000' utest_add`` (a target
that loops forever), sends one signal at one moment, and then checks:

- pyprobe ended the way that signal should end it (SIGINT, SIGTERM, SIGHUP:
  like Ctrl-C, with the summary once tracing runs; SIGKILL: killed);
- the command it started is gone (after a SIGKILL of pyprobe the kernel sends
  the command SIGTERM: PR_SET_PDEATHSIG);
- every BPF program and map pyprobe held (read from its /proc/PID/fdinfo
  while it ran) is gone from the kernel (pyprobe.system.programs()/maps()).

Moments: ``forked`` (the command is forked but held, probes still loading or
attaching) and ``tracing`` (the first call was printed). 4 signals x 2 moments,
plus SIGTERM and SIGHUP with SIGINT ignored at start (a background job of a
non-interactive shell): 10 rounds, a few seconds in all.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable

import pytest

import pyprobe.system
from conftest import target

pytestmark = pytest.mark.bpf

SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGKILL)
GONE_WITHIN = 5.0  # seconds for the kernel to free programs and for an orphan to be reaped


def _children(pid: int) -> list[int]:
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            return [int(p) for p in f.read().split()]
    except OSError:
        return []


def _bpf_ids(pid: int) -> tuple[set[int], set[int]]:
    """The ids of the BPF programs and maps process ``pid`` holds fds of."""
    progs: set[int] = set()
    maps: set[int] = set()
    try:
        fds = os.listdir(f"/proc/{pid}/fdinfo")
    except OSError:
        return progs, maps
    for fd in fds:
        try:
            with open(f"/proc/{pid}/fdinfo/{fd}") as f:
                text = f.read()
        except OSError:
            continue
        if m := re.search(r"^prog_id:\s*(\d+)", text, re.M):
            progs.add(int(m.group(1)))
        if m := re.search(r"^map_id:\s*(\d+)", text, re.M):
            maps.add(int(m.group(1)))
    return progs, maps


class Watch:
    """Samples the BPF objects a process holds until it ends (a thread; the fds close with the process)."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.progs: set[int] = set()
        self.maps: set[int] = set()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            progs, maps = _bpf_ids(self.pid)
            self.progs |= progs
            self.maps |= maps
            time.sleep(0.002)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


def _wait_for(check: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + GONE_WITHIN
    while not check():
        if time.monotonic() > deadline:
            pytest.fail(what)
        time.sleep(0.02)


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def _round(sig: signal.Signals, moment: str, *, ignore_sigint: bool = False) -> None:
    ut = target("utest")
    # an ignored signal stays ignored across fork and exec, as for a background job of `sh -c`
    old = signal.signal(signal.SIGINT, signal.SIG_IGN if ignore_sigint else signal.getsignal(signal.SIGINT))
    try:
        proc = subprocess.Popen(
            [sys.executable, "-m", "pyprobe", "trace", "-c", f"{ut} -1 2000", "utest_add"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
    finally:
        signal.signal(signal.SIGINT, old)
    assert proc.stdout is not None
    watch = Watch(proc.pid)
    try:
        deadline = time.monotonic() + 30
        while not (kids := _children(proc.pid)):
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "pyprobe never forked its command"
            time.sleep(0.001)
        child = kids[0]
        if moment == "tracing":
            for line in proc.stdout:
                if "utest_add(" in line:
                    break
        proc.send_signal(sig)
        _, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        watch.stop()
    where = f"{sig.name} at {moment}{' with SIGINT ignored' if ignore_sigint else ''}"
    if sig == signal.SIGKILL:
        assert proc.returncode == -signal.SIGKILL, (where, err)
    elif moment == "tracing":
        assert proc.returncode == 0, (where, err)
        why = "interrupted" if sig == signal.SIGINT else f"ended by {sig.name}"
        assert re.search(rf"\d+ events, \d+ lost \({why}\)", err), (where, err)
    else:  # before tracing started: the exit code of an interrupted start, or the summary if it got there
        assert proc.returncode in (0, 130), (where, proc.returncode, err)
        assert "Traceback" not in err, (where, err)
    try:
        _wait_for(lambda: not _alive(child), f"{where}: the command (pid {child}) still runs")
    finally:  # a failure must not leave the looping command behind
        if _alive(child):
            os.kill(child, signal.SIGKILL)
    assert watch.progs or moment == "forked", where
    _wait_for(
        lambda: not watch.progs & {p.id for p in pyprobe.system.programs()},
        f"{where}: programs {watch.progs} of pyprobe are still loaded",
    )
    _wait_for(
        lambda: not watch.maps & {m.id for m in pyprobe.system.maps()},
        f"{where}: maps {watch.maps} of pyprobe are still in the kernel",
    )


@pytest.mark.parametrize("moment", ["forked", "tracing"])
@pytest.mark.parametrize("sig", SIGNALS, ids=[s.name for s in SIGNALS])
def test_signal_ends_trace_and_its_command_and_leaves_nothing(sig: signal.Signals, moment: str) -> None:
    _round(sig, moment)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP], ids=["SIGTERM", "SIGHUP"])
def test_sigterm_and_sighup_end_trace_when_sigint_was_ignored_at_start(sig: signal.Signals) -> None:
    _round(sig, "tracing", ignore_sigint=True)
