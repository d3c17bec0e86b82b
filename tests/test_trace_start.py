"""How `pyprobe trace` starts: uprobes registered while the object loads; the first event wakes the reader at once."""

from __future__ import annotations

import logging
import select
import subprocess

import pytest

import pyprobe
from conftest import open_fds, target
from pyprobe import features
from pyprobe.cli._early import EarlyUprobes
from pyprobe.cli.probespec import parse_probe
from pyprobe.cli.trace import ENTRY_PLAIN, ENTRY_SLEEPABLE, Tracer

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


def test_a_trace_without_strings_loads_without_the_kernel_btf(caplog: pytest.LogCaptureFixture) -> None:
    """The kfunc that reads strings makes libbpf parse the kernel's BTF (20 ms): only a string argument loads it."""
    utest = str(target("utest"))
    with (
        caplog.at_level(logging.DEBUG, logger="pyprobe.libbpf"),
        Tracer([parse_probe(f"{utest}:int utest_add(int a, int b)")]) as tr,
    ):
        assert tr._entry == ENTRY_PLAIN
    assert caplog.messages, "libbpf's debug log did not reach the logger"
    assert not [m for m in caplog.messages if "kernel BTF" in m]
    caplog.clear()
    sleepable = features.available("sleepable_uprobe")
    with (
        caplog.at_level(logging.DEBUG, logger="pyprobe.libbpf"),
        Tracer([parse_probe(f"{utest}:int utest_add(const char *a, int b)")]) as tr,
    ):
        assert tr._entry == (ENTRY_SLEEPABLE if sleepable else ENTRY_PLAIN)
    if sleepable:
        assert [m for m in caplog.messages if "bpf_copy_from_user_str" in m]


def test_uprobes_are_registered_while_the_object_loads_and_attached_to_it() -> None:
    """Entry and return probes are perf events opened in a thread before the load, attached to the programs after."""
    utest = str(target("utest"))
    before = open_fds()
    with Tracer([parse_probe(f"{utest}:int utest_add(int a, int b)")]) as tr:
        assert [type(link).__name__ for link in tr._links] == ["PerfEventLink", "PerfEventLink"]
        subprocess.run([utest, "2", "0"], check=True, capture_output=True)
        calls = tr.drain(timeout=2.0)
        assert [(c.function.display, c.arg_values()) for c in calls][:1] == [("utest_add", [("a", "0"), ("b", "3")])]
    assert open_fds() == before


def test_early_uprobes_not_taken_are_closed_and_failures_left_to_attach() -> None:
    utest = str(target("utest"))
    offset = pyprobe.symbols.resolve(utest, "utest_add").offset
    before = open_fds()
    early = EarlyUprobes([(utest, offset, False), (utest, offset, True)], -1)
    taken = early.take(utest, offset, False)
    assert taken is not None and not taken.closed
    taken.close()
    early.close()
    early.close()
    assert open_fds() == before
    failed = EarlyUprobes([(utest, offset, False), ("/nonexistent/bin", 0x10, False)], -1)
    assert failed.take("/nonexistent/bin", 0x10, False) is None  # attach_uprobe reports the missing binary
    assert failed.take(utest, offset, False) is None  # all or nothing
    failed.close()
    assert open_fds() == before


def test_open_uprobes_is_all_or_nothing() -> None:
    utest = str(target("utest"))
    offset = pyprobe.symbols.resolve(utest, "utest_add").offset
    before = open_fds()
    events = pyprobe.perf_event.open_uprobes([(utest, offset, False), (utest, offset, True)])
    assert [e.event.split()[0] for e in events] == ["uprobe", "uretprobe"]
    for e in events:
        e.close()
    with pytest.raises(pyprobe.AttachError, match=r"uretprobe .*utest\+0x7fffffffffff"):
        pyprobe.perf_event.open_uprobes([(utest, offset, False), (utest, 0x7FFFFFFFFFFF, True)])
    assert pyprobe.perf_event.open_uprobes([]) == []
    assert open_fds() == before
