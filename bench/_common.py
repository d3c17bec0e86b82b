"""Helpers of the benchmarks: where the build put things, and a robust timer."""

from __future__ import annotations

import os
import statistics
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BUILD = Path(os.environ.get("PYPROBE_BUILD_DIR", ROOT / "build" / "py"))


def helper(name: str) -> Path:
    """A C baseline built by CMake from bench/c/NAME.c."""
    path = BUILD / "bench" / f"bench_{name}"
    if not path.exists():
        raise SystemExit(f"{path} is missing: run ./dev build first")
    return path


def test_object(name: str) -> Path:
    return BUILD / "tests" / "bpf" / f"{name}.bpf.o"


def median_time(fn: Callable[[], object], repeat: int) -> float:
    """Median wall time of ``fn`` in seconds over ``repeat`` runs."""
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)
