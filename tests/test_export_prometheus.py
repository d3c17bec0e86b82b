"""A real Prometheus server (Debian's `prometheus`) scrapes `pyprobe export` every second; its HTTP API
must return the counts and histogram buckets of a known workload."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.parse
from collections.abc import Iterator
from pathlib import Path

import pytest

pytest.importorskip("prometheus_client")

from export_helpers import EXAMPLES, fetch, run_usdt, run_utest, run_workload, value

pytestmark = pytest.mark.bpf

PROMETHEUS = shutil.which("prometheus")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def exporter_url() -> Iterator[str]:
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "pyprobe", "export", "--config", str(EXAMPLES),
         "--names", "syscalls,open-errors,utest-latency,usdt-ticks", "--listen", f"127.0.0.1:{port}"],
        stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert proc.stderr is not None
    line = proc.stderr.readline()
    assert "serving" in line, line + (proc.stderr.read() if proc.poll() is not None else "")
    try:
        yield f"127.0.0.1:{port}"
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0


@pytest.fixture
def prometheus(tmp_path: Path, exporter_url: str) -> Iterator[str]:
    if PROMETHEUS is None:
        pytest.fail("the prometheus server is not installed (Debian package `prometheus`: .ci/apt-setup.sh)")
    port = free_port()
    config = tmp_path / "prometheus.yml"
    config.write_text(
        "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n"
        "scrape_configs:\n  - job_name: pyprobe\n    static_configs:\n"
        f"      - targets: ['{exporter_url}']\n"
    )
    log = open(tmp_path / "prometheus.log", "w")  # noqa: SIM115 (closed after the server stops)
    proc = subprocess.Popen(
        [PROMETHEUS, f"--config.file={config}", f"--storage.tsdb.path={tmp_path / 'data'}",
         f"--web.listen-address=127.0.0.1:{port}", "--storage.tsdb.retention.time=1h"],
        stdout=log, stderr=subprocess.STDOUT, cwd=tmp_path,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if fetch(url + "/-/ready").strip():
                    break
            except OSError:
                pass
            assert proc.poll() is None, (tmp_path / "prometheus.log").read_text()
            assert time.monotonic() < deadline, "prometheus did not become ready"
            time.sleep(0.2)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        log.close()


def query(url: str, promql: str) -> list[dict[str, object]]:
    doc = json.loads(fetch(f"{url}/api/v1/query?" + urllib.parse.urlencode({"query": promql})))
    assert doc["status"] == "success", doc
    return list(doc["data"]["result"])


def wait_value(url: str, promql: str, expected: float, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    got: object = None
    while time.monotonic() < deadline:
        result = query(url, promql)
        got = [float(r["value"][1]) for r in result]  # type: ignore[index]
        if got == [expected]:
            return
        time.sleep(0.5)
    raise AssertionError(f"{promql}: Prometheus has {got}, expected [{expected}]")


def test_prometheus_scrapes_and_stores_the_metrics(prometheus: str, exporter_url: str) -> None:
    comm = f"prm{os.getpid() % 100000}"
    run_workload(comm, getppid=41, failed_opens=13)
    run_utest(30)
    run_usdt(6)
    text = fetch(f"http://{exporter_url}/metrics")
    assert value(text, "ebpf_exporter_usdt_ticks_total", remainder="two") == 2
    wait_value(prometheus, 'up{job="pyprobe"}', 1)
    wait_value(prometheus, f'ebpf_exporter_syscalls_total{{comm="{comm}",syscall="getppid"}}', 41)
    wait_value(prometheus, f'ebpf_exporter_open_errors_total{{comm="{comm}",errno="ENOENT"}}', 13)
    for remainder in ("zero", "one", "two"):
        wait_value(prometheus, f'ebpf_exporter_usdt_ticks_total{{remainder="{remainder}"}}', 2)
    wait_value(prometheus, "ebpf_exporter_utest_add_latency_seconds_count", 30)
    wait_value(prometheus, 'ebpf_exporter_utest_add_latency_seconds_bucket{le="+Inf"}', 30)
    buckets = query(prometheus, "ebpf_exporter_utest_add_latency_seconds_bucket")
    stored = {str(r["metric"]["le"]): float(r["value"][1]) for r in buckets}  # type: ignore[index]
    assert len(stored) == 28  # 27 exp2 buckets (2^0 .. 2^26 ns) and +Inf
    ordered = sorted(((float(le), v) for le, v in stored.items()))
    assert [v for _, v in ordered] == sorted(v for _, v in ordered) and ordered[0] == (1e-9, 0.0)
    assert stored["1e-09"] == 0 and stored["0.067108864"] == 30  # cumulative buckets in seconds
    (quantile,) = query(prometheus, "histogram_quantile(0.5, ebpf_exporter_utest_add_latency_seconds_bucket)")
    assert 0 < float(quantile["value"][1]) < 0.067108864  # type: ignore[index]
    run_usdt(3)
    wait_value(prometheus, 'ebpf_exporter_usdt_ticks_total{remainder="zero"}', 3)  # the next scrapes see new counts
