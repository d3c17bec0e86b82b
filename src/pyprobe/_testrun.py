"""What :meth:`Program.test_run <pyprobe.Program.test_run>` returns, in a module of its own.

Imported by the first test_run (or use of the name): creating a NamedTuple class takes 0.3 ms, which
every import of :mod:`pyprobe.program` paid, and most programs never run under BPF_PROG_RUN.
"""

from __future__ import annotations

from typing import NamedTuple

__all__ = ["TestRunResult"]


class TestRunResult(NamedTuple):
    """What one BPF_PROG_RUN returned: the program's return value, output data and mean run time (ns)."""

    retval: int
    data: bytes
    duration_ns: int
    ctx: bytes = b""
    """The context after the run (SEC("syscall") programs may write to it)."""


TestRunResult.__test__ = False  # type: ignore[attr-defined]  # not a pytest test class
