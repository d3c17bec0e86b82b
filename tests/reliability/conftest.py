"""The reliability suite: races, fd reuse, fuzzing, property tests, hostile names and signals.

Every test here is marked ``reliability`` (run with ``-m reliability``, or
left out with ``-m 'not reliability'``); CI runs them with the rest. Their
rounds and case counts are bounded so the suite stays within minutes.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.reliability)


def run_in_child(code: str, *, timeout: float = 120.0, env: dict[str, str] | None = None) -> str:
    """Runs ``code`` in a fresh interpreter and returns its stdout; a crash or a non-zero exit fails the test.

    Crashes (SIGSEGV, SIGABRT) kill the child, not the test run, and are
    reported with the signal and the child's stderr.
    """
    proc = subprocess.run(
        [sys.executable, "-X", "faulthandler", "-c", textwrap.dedent(code)],
        check=False, capture_output=True, text=True, timeout=timeout, env={**os.environ, **(env or {})},
    )  # fmt: skip
    if proc.returncode != 0:
        how = f"signal {-proc.returncode}" if proc.returncode < 0 else f"exit {proc.returncode}"
        pytest.fail(f"child ended with {how}\n--- stdout\n{proc.stdout[-4000:]}\n--- stderr\n{proc.stderr[-4000:]}")
    return proc.stdout
