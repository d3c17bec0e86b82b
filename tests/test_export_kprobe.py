"""The kprobe-based exporter example: runs where the kernel has kprobes (the kernel matrix, tests/vm),
and is refused with UnsupportedError, before the exporter serves anything, where it has none."""

from __future__ import annotations

import os

import pytest

pytest.importorskip("prometheus_client")

from prometheus_client import generate_latest

import pyprobe
from export_helpers import EXAMPLES, run_workload, value
from pyprobe import features
from pyprobe.export import Exporter, load_config

pytestmark = pytest.mark.bpf


@pytest.mark.kprobe
def test_kprobe_example_counts_opens() -> None:
    comm = f"kpx{os.getpid() % 100000}"
    with Exporter() as exporter:
        (config,) = load_config(EXAMPLES, ["kprobe-opens"])
        exporter.add(config)
        run_workload(comm, getppid=0, failed_opens=25)
        text = generate_latest(exporter.registry).decode()
    assert value(text, "ebpf_exporter_kprobe_opens_total", comm=comm) == 25


def test_kprobe_example_refused_without_kprobes() -> None:
    if features.available("kprobe"):
        pytest.skip("this kernel has kprobes: test_kprobe_example_counts_opens runs instead")
    with Exporter() as exporter:
        (config,) = load_config(EXAMPLES, ["kprobe-opens"])
        with pytest.raises(pyprobe.UnsupportedError, match="kprobe"):
            exporter.add(config)
        assert exporter.programs == []
