"""Shared by the exporter's tests: workloads with exact counts and reading the exposition."""

from __future__ import annotations

import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable

from prometheus_client.parser import text_string_to_metric_families

from conftest import BUILD, target

EXAMPLES = BUILD / "examples" / "exporter"

WORKLOAD = """
import ctypes, os, sys
ctypes.CDLL(None).prctl(15, sys.argv[1].encode(), 0, 0, 0)  # PR_SET_NAME: the comm label
for _ in range(int(sys.argv[2])):
    os.getppid()
for _ in range(int(sys.argv[3])):
    try:
        os.open("/nonexistent-pyprobe-export/x", os.O_RDONLY)
    except FileNotFoundError:
        pass
"""


def run_workload(comm: str, getppid: int, failed_opens: int) -> None:
    """A process named ``comm`` that calls getppid() and a failing openat() exactly so many times."""
    subprocess.run([sys.executable, "-c", WORKLOAD, comm, str(getppid), str(failed_opens)], check=True)


def run_utest(calls: int) -> None:
    subprocess.run([str(target("utest")), str(calls), "0"], check=True, stdout=subprocess.DEVNULL)


def run_usdt(ticks: int) -> None:
    subprocess.run([str(target("usdt_target")), str(ticks), "0"], check=True, stdout=subprocess.DEVNULL)


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of an exposition: (name, sorted labels) -> value."""
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def value(text: str, metric: str, /, **labels: str) -> float | None:
    return samples(text).get((metric, tuple(sorted(labels.items()))))


def fetch(url: str, **kw: object) -> str:
    with urllib.request.urlopen(url, timeout=10, **kw) as resp:  # type: ignore[arg-type]
        return str(resp.read().decode())


def wait_for(check: Callable[[], bool], timeout: float = 10.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")
