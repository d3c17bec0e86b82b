"""How `pyprobe trace` starts: the first event wakes the reader at once, later ones wait for its timer."""

from __future__ import annotations

import select
import subprocess

import pytest

from conftest import target
from pyprobe.cli.probespec import parse_probe
from pyprobe.cli.trace import Tracer

pytestmark = pytest.mark.bpf


def test_the_first_event_wakes_the_reader_and_later_ones_do_not() -> None:
    args8 = str(target("args8"))
    with Tracer(
        [parse_probe(f"{args8}:long args8(long a, long b, long c, long d, long e, long f, long g, long h)")]
    ) as tr:
        assert tr._reader is not None
        fd = tr._reader.fileno()
        assert select.select([fd], [], [], 0)[0] == []
        subprocess.run([args8, "1", "0"], check=True, capture_output=True)
        assert select.select([fd], [], [], 2.0)[0] == [fd], "the first event did not wake the reader"
        first = tr.drain(timeout=1.0)
        assert [(c.function.display, c.ret_value()) for c in first] == [("args8", "8028")]
        assert select.select([fd], [], [], 0)[0] == []  # drained: not readable any more
        subprocess.run([args8, "3", "0"], check=True, capture_output=True)
        assert select.select([fd], [], [], 0.05)[0] == [], "a later event woke the reader"
        assert len(tr.drain(timeout=1.0)) == 3  # the reader's timer finds them
