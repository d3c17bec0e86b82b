"""pyprobe.export.otlp: pushes received by a real OTLP/HTTP endpoint, decoded with opentelemetry-proto."""

from __future__ import annotations

import logging
import math
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator

import pytest

pytest.importorskip("prometheus_client")
pytest.importorskip("opentelemetry.sdk")

from opentelemetry.proto.metrics.v1.metrics_pb2 import AggregationTemporality
from prometheus_client import CollectorRegistry, Counter, Enum, Gauge, Histogram, Info, Summary
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.parser import text_string_to_metric_families

from export_helpers import EXAMPLES, fetch, run_usdt, run_utest, wait_for
from otlp_receiver import OtlpReceiver, Received, points
from pyprobe.export.otlp import OtlpPusher, to_metrics_data

CUMULATIVE = AggregationTemporality.AGGREGATION_TEMPORALITY_CUMULATIVE


@pytest.fixture
def receiver() -> Iterator[OtlpReceiver]:
    with OtlpReceiver() as r:
        yield r


def free_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def known_registry() -> tuple[CollectorRegistry, Counter, Histogram]:
    registry = CollectorRegistry()
    requests = Counter("requests_total", "Requests served.", ["code", "method"], registry=registry)
    requests.labels("200", "GET").inc(7)
    requests.labels("500", "POST").inc(2)
    temp = Gauge("room_temperature", "Room temperature.", ["room"], unit="celsius", registry=registry)
    temp.labels("lab").set(21.5)
    temp.labels("hall").set(-3.25)
    latency = Histogram("op_latency_seconds", "Latency.", ["op"], buckets=[0.001, 0.01, 0.1, 1.0], registry=registry)
    for value in (0.0005, 0.0007, 0.05, 0.5, 0.9, 3.0):
        latency.labels("read").observe(value)
    latency.labels("write").observe(0.002)
    return registry, requests, latency


def test_counter_gauge_histogram_decode(receiver: OtlpReceiver) -> None:
    registry, _, _ = known_registry()
    before = time.time_ns()
    pusher = OtlpPusher(
        registry,
        receiver.url,
        resource_attributes={"deployment.environment": "test", "host.name": "node-7"},
        headers={"Authorization": "Bearer s3cret"},
    )
    try:
        assert pusher.push_now() is True
    finally:
        pusher.close()
    after = time.time_ns()
    first = receiver.received[0]
    assert first.path == "/v1/metrics"
    assert first.headers["authorization"] == "Bearer s3cret"
    assert first.headers["content-type"] == "application/x-protobuf"
    resource = first.resource()
    assert resource["service.name"] == "pyprobe-export"
    assert resource["host.name"] == "node-7"
    assert resource["deployment.environment"] == "test"
    assert resource["telemetry.sdk.name"] == "opentelemetry"
    (scope_metrics,) = first.request.resource_metrics[0].scope_metrics
    assert scope_metrics.scope.name == "pyprobe.export"
    metrics = first.metrics()

    requests = metrics["requests_total"]
    assert requests.WhichOneof("data") == "sum"
    assert requests.description == "Requests served."
    assert requests.sum.is_monotonic is True
    assert requests.sum.aggregation_temporality == CUMULATIVE
    pts = points(requests)
    assert set(pts) == {(("code", "200"), ("method", "GET")), (("code", "500"), ("method", "POST"))}
    assert pts[(("code", "200"), ("method", "GET"))].as_double == 7.0
    assert pts[(("code", "500"), ("method", "POST"))].as_double == 2.0
    for point in pts.values():  # the series' own _created time, before the push
        assert 0 < point.start_time_unix_nano <= before <= point.time_unix_nano <= after

    temperature = metrics["room_temperature_celsius"]
    assert temperature.WhichOneof("data") == "gauge"
    assert temperature.unit == "Cel"
    temps = {dict(k)["room"]: p.as_double for k, p in points(temperature).items()}
    assert temps == {"lab": 21.5, "hall": -3.25}

    latency = metrics["op_latency_seconds"]
    assert latency.WhichOneof("data") == "histogram"
    assert latency.histogram.aggregation_temporality == CUMULATIVE
    hist = points(latency)
    read = hist[(("op", "read"),)]
    assert list(read.explicit_bounds) == [0.001, 0.01, 0.1, 1.0]
    assert list(read.bucket_counts) == [2, 0, 1, 2, 1]
    assert read.count == 6
    assert read.sum == pytest.approx(0.0005 + 0.0007 + 0.05 + 0.5 + 0.9 + 3.0)
    assert not read.HasField("min") and not read.HasField("max")
    write = hist[(("op", "write"),)]
    assert list(write.bucket_counts) == [0, 1, 0, 0, 0]
    assert write.count == 1 and write.sum == pytest.approx(0.002)
    assert 0 < write.start_time_unix_nano <= write.time_unix_nano
    # nothing but the registry's families (no _created or _bucket series of their own)
    assert set(metrics) == {"requests_total", "room_temperature_celsius", "op_latency_seconds"}


def test_pushes_are_cumulative_with_a_fixed_start(receiver: OtlpReceiver) -> None:
    registry, requests, latency = known_registry()
    with OtlpPusher(registry, receiver.url, interval=3600) as pusher:
        assert pusher.push_now()
        requests.labels("200", "GET").inc(5)
        latency.labels("write").observe(0.5)
        assert pusher.push_now()
    first, second, final = receiver.wait(3)  # the third is close()'s final push
    key = (("code", "200"), ("method", "GET"))
    p1, p2 = points(first.metrics()["requests_total"])[key], points(second.metrics()["requests_total"])[key]
    assert (p1.as_double, p2.as_double) == (7.0, 12.0)
    assert p1.start_time_unix_nano == p2.start_time_unix_nano
    assert p2.time_unix_nano > p1.time_unix_nano
    w = points(second.metrics()["op_latency_seconds"])[(("op", "write"),)]
    assert list(w.bucket_counts) == [0, 1, 0, 1, 0] and w.count == 2
    assert points(final.metrics()["requests_total"])[key].as_double == 12.0
    assert pusher.pushes == 3 and pusher.failures == 0


def test_custom_collector_without_created_starts_at_the_pusher(receiver: OtlpReceiver) -> None:
    class Maps:
        def collect(self) -> Iterator[CounterMetricFamily | GaugeMetricFamily]:
            c = CounterMetricFamily("ebpf_exporter_syscalls_total", "Syscalls.", labels=["syscall"])
            c.add_metric(["read"], 41)
            c.add_metric(["write"], 1 << 40)
            yield c
            g = GaugeMetricFamily("ebpf_exporter_map_entries", "Entries.", labels=["map"])
            g.add_metric(["counts"], 2)
            yield g

    registry = CollectorRegistry()
    registry.register(Maps())
    before = time.time_ns()
    with OtlpPusher(registry, receiver.url) as pusher:
        assert pusher.push_now()
    metrics = receiver.received[0].metrics()
    syscalls = points(metrics["ebpf_exporter_syscalls_total"])
    assert {dict(k)["syscall"]: p.as_double for k, p in syscalls.items()} == {"read": 41.0, "write": float(1 << 40)}
    for point in syscalls.values():
        assert point.start_time_unix_nano == pusher.start_time_ns
        assert before <= point.start_time_unix_nano < point.time_unix_nano
    assert metrics["ebpf_exporter_syscalls_total"].sum.is_monotonic
    assert points(metrics["ebpf_exporter_map_entries"])[(("map", "counts"),)].as_double == 2.0


def test_info_stateset_summary_and_target_info(receiver: OtlpReceiver, caplog: pytest.LogCaptureFixture) -> None:
    registry = CollectorRegistry(target_info={"cluster": "eu-1"})
    Info("build", "Build.", registry=registry).info({"version": "1.2"})
    Enum("state", "State.", states=["up", "down"], registry=registry).state("down")
    Summary("request_size_bytes", "Sizes.", registry=registry).observe(10)
    with caplog.at_level(logging.WARNING, logger="pyprobe.export"), OtlpPusher(registry, receiver.url) as pusher:
        assert pusher.push_now()
        assert pusher.push_now()
    metrics = receiver.received[0].metrics()
    assert receiver.received[0].resource()["cluster"] == "eu-1"
    assert "target_info" not in metrics
    info = metrics["build_info"]
    assert info.WhichOneof("data") == "sum" and not info.sum.is_monotonic
    assert points(info)[(("version", "1.2"),)].as_double == 1.0
    states = {dict(k)["state"]: p.as_double for k, p in points(metrics["state"]).items()}
    assert states == {"up": 0.0, "down": 1.0}
    assert not metrics["state"].sum.is_monotonic
    assert "request_size_bytes" not in metrics
    dropped = [r for r in caplog.records if "request_size_bytes" in r.getMessage()]
    assert len(dropped) == 1, "a dropped family is logged once, not at every push"


def test_more_series_than_the_sdk_cardinality_limit(receiver: OtlpReceiver) -> None:
    registry = CollectorRegistry()
    family = Gauge("many", "Many series.", ["i"], registry=registry)
    for i in range(2500):
        family.labels(str(i)).set(i)
    with OtlpPusher(registry, receiver.url) as pusher:
        assert pusher.push_now()
    got = points(receiver.received[0].metrics()["many"])
    assert len(got) == 2500
    assert all(p.as_double == float(dict(k)["i"]) for k, p in got.items())


def test_unreachable_endpoint_is_logged_and_retried(caplog: pytest.LogCaptureFixture) -> None:
    registry, _, _ = known_registry()
    port = free_port()
    pusher = OtlpPusher(registry, f"http://127.0.0.1:{port}/v1/metrics", interval=0.2, timeout=1.0)
    try:
        with caplog.at_level(logging.WARNING, logger="pyprobe.export"):
            started = time.monotonic()
            assert pusher.push_now() is False
            assert time.monotonic() - started < 5
            pusher.start()
            wait_for(lambda: pusher.failures >= 3)  # the thread's pushes fail too, and it keeps going
        assert any(
            r.name == "pyprobe.export" and f"127.0.0.1:{port}" in r.getMessage() and "failed" in r.getMessage()
            for r in caplog.records
        )
        with OtlpReceiver(port=port) as receiver:  # the endpoint comes up: the next interval's push lands
            receiver.wait(1)
            wait_for(lambda: pusher.pushes >= 1)  # the reply is on its way
            pusher.close()
            assert points(receiver.received[-1].metrics()["requests_total"])
    finally:
        pusher.close()


def test_http_error_status_is_a_failed_push(receiver: OtlpReceiver, caplog: pytest.LogCaptureFixture) -> None:
    registry, _, _ = known_registry()
    receiver.status = 400  # not retryable: one request, then the push gives up
    with OtlpPusher(registry, receiver.url, timeout=2.0) as pusher:
        with caplog.at_level(logging.WARNING, logger="pyprobe.export"):
            assert pusher.push_now() is False
        receiver.status = 200
        assert pusher.push_now() is True
    assert pusher.failures == 1
    assert any(r.name == "pyprobe.export" for r in caplog.records)


def test_collection_failure_is_logged_and_the_thread_survives(
    receiver: OtlpReceiver, caplog: pytest.LogCaptureFixture
) -> None:
    class Flaky:
        calls = 0

        def collect(self) -> Iterator[GaugeMetricFamily]:
            Flaky.calls += 1
            if Flaky.calls <= 2:
                raise OSError("map read failed")
            yield GaugeMetricFamily("ok", "Ok.", value=1)

    registry = CollectorRegistry()
    registry.register(Flaky())
    Flaky.calls = 0  # register() collected once to learn the names
    with caplog.at_level(logging.ERROR, logger="pyprobe.export"), OtlpPusher(registry, receiver.url, interval=0.1):
        receiver.wait(1)
    assert any("map read failed" in (r.exc_text or "") or r.exc_info for r in caplog.records)
    assert points(receiver.received[0].metrics()["ok"])[()].as_double == 1.0


def test_periodic_pushes_and_close() -> None:
    registry, requests, _ = known_registry()
    with OtlpReceiver() as receiver:
        pusher = OtlpPusher(registry, receiver.url, interval=0.2).start()
        assert pusher.start() is pusher  # already running: nothing more
        receiver.wait(2, timeout=5)
        requests.labels("200", "GET").inc(100)
        count = len(receiver.received)
        pusher.close()
        pusher.close()  # idempotent
        received = receiver.received
        assert len(received) >= count + 1  # the final push
        assert points(received[-1].metrics()["requests_total"])[(("code", "200"), ("method", "GET"))].as_double == 107
        time.sleep(0.5)
        assert len(receiver.received) == len(received), "no push after close()"
    assert pusher.closed
    assert not any(t.name == "pyprobe-otlp" for t in threading.enumerate())
    with pytest.raises(RuntimeError, match="closed"):
        pusher.push_now()
    with pytest.raises(RuntimeError, match="closed"):
        pusher.start()


def test_url_without_path_gets_v1_metrics(receiver: OtlpReceiver) -> None:
    registry, _, _ = known_registry()
    pusher = OtlpPusher(registry, f"http://127.0.0.1:{receiver.port}")
    assert pusher.url == f"http://127.0.0.1:{receiver.port}/v1/metrics"
    try:
        assert pusher.push_now()
    finally:
        pusher.close()
    assert receiver.received[0].path == "/v1/metrics"


@pytest.mark.parametrize(
    "url", ["ftp://127.0.0.1/v1/metrics", "127.0.0.1:4318", "http:///v1/metrics", "http://h:99999/", "", "http://h:0"]
)
def test_bad_url_is_a_value_error_naming_it(url: str) -> None:
    with pytest.raises(ValueError, match="OTLP endpoint") as info:
        OtlpPusher(CollectorRegistry(), url)
    assert repr(url) in str(info.value)


@pytest.mark.parametrize(
    ("option", "value"), [("interval", 0), ("interval", -1), ("interval", math.inf), ("timeout", 0)]
)
def test_bad_interval_or_timeout(option: str, value: float) -> None:
    with pytest.raises(ValueError, match=option):
        OtlpPusher(CollectorRegistry(), "http://127.0.0.1:4318/v1/metrics", **{option: value})


def test_bad_header_name() -> None:
    with pytest.raises(ValueError, match="header"):
        OtlpPusher(CollectorRegistry(), "http://127.0.0.1:4318/v1/metrics", headers={"Bad Name": "x"})


def test_to_metrics_data_without_a_pusher() -> None:
    registry, _, _ = known_registry()
    data = to_metrics_data(registry.collect(), start_time_ns=1, time_ns=2)
    (rm,) = data.resource_metrics
    metrics = {m.name: m for m in rm.scope_metrics[0].metrics}
    assert set(metrics) == {"requests_total", "room_temperature_celsius", "op_latency_seconds"}
    assert all(p.time_unix_nano == 2 for m in metrics.values() for p in m.data.data_points)


def test_import_pyprobe_does_not_import_opentelemetry() -> None:
    code = (
        "import sys, pyprobe, pyprobe.cli.main\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('opentelemetry', 'prometheus_client', 'yaml'))\n"
        "assert not bad, bad\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


# --- end to end: the exporter's registry, loaded from the bundled example configs -------------------

PYPROBE = [sys.executable, "-m", "pyprobe"]


PER_COLLECTION = {"ebpf_exporter_scrape_duration_seconds"}
"""Families that measure the collection itself: a push and a scrape are two collections."""


def assert_push_matches_scrape(received: Received, text: str) -> int:
    """Every sample of a /metrics scrape has the same value in the OTLP push; returns the samples compared."""
    metrics = received.metrics()
    compared = 0
    for family in text_string_to_metric_families(text):
        if family.name in PER_COLLECTION:
            assert family.name in metrics
            continue
        if family.type == "counter":
            for name in {s.name for s in family.samples if not s.name.endswith("_created")}:
                metric = metrics[name]
                assert metric.sum.is_monotonic and metric.sum.aggregation_temporality == CUMULATIVE
            for sample in family.samples:
                if sample.name.endswith("_created"):
                    continue
                point = points(metrics[sample.name])[tuple(sorted(sample.labels.items()))]
                assert point.as_double == sample.value, sample
                compared += 1
        elif family.type in ("gauge", "unknown"):
            for sample in family.samples:
                point = points(metrics[sample.name])[tuple(sorted(sample.labels.items()))]
                assert point.as_double == sample.value, sample
                compared += 1
        elif family.type == "histogram":
            hist = points(metrics[family.name])
            for sample in family.samples:
                labels = dict(sample.labels)
                le = labels.pop("le", None)
                point = hist[tuple(sorted(labels.items()))]
                if sample.name.endswith("_bucket"):
                    assert le is not None
                    bounds = [*point.explicit_bounds, math.inf]
                    index = bounds.index(float(le))
                    assert sum(point.bucket_counts[: index + 1]) == sample.value, sample
                elif sample.name.endswith("_count"):
                    assert point.count == sample.value, sample
                elif sample.name.endswith("_sum"):
                    assert point.sum == pytest.approx(sample.value, rel=1e-12), sample
                compared += 1
        else:
            raise AssertionError(f"/metrics has a {family.type} family {family.name} this test does not compare")
    return compared


@pytest.mark.bpf
def test_exporter_push_matches_its_scrape(receiver: OtlpReceiver) -> None:
    from pyprobe.export import Exporter, load_config
    from pyprobe.export.web import ExporterServer

    with Exporter() as exporter:
        for config in load_config(str(EXAMPLES), ["usdt-ticks", "utest-latency"]):
            exporter.add(config)
        run_usdt(30)  # ticks 0..29: remainders 0, 1, 2 ten times each
        run_utest(200)  # 200 calls of utest_add
        with ExporterServer(exporter, "127.0.0.1:0") as server:
            pusher = OtlpPusher(exporter.registry, receiver.url, resource_attributes={"fleet": "test"})
            try:
                assert pusher.push_now()
                host, port = server.address
                text = fetch(f"http://{host}:{port}/metrics")
            finally:
                pusher.close()
    (received,) = receiver.received
    assert received.resource()["fleet"] == "test"
    metrics = received.metrics()

    ticks = points(metrics["ebpf_exporter_usdt_ticks_total"])
    assert {dict(k)["remainder"]: p.as_double for k, p in ticks.items()} == {"zero": 10.0, "one": 10.0, "two": 10.0}
    latency = points(metrics["ebpf_exporter_utest_add_latency_seconds"])
    (point,) = latency.values()
    assert point.count == 200 and sum(point.bucket_counts) == 200
    assert list(point.explicit_bounds) == pytest.approx([2**i * 1e-9 for i in range(27)])  # exp2, 0..26
    assert len(point.bucket_counts) == 28
    assert 0 < point.sum < 200 * 0.1  # seconds: 200 short calls
    assert points(metrics["ebpf_exporter_enabled_configs"]).keys() == {
        (("name", "usdt-ticks"),),
        (("name", "utest-latency"),),
    }

    compared = assert_push_matches_scrape(received, text)
    assert compared > 30


@pytest.mark.bpf
def test_cli_export_pushes_every_interval_and_at_sigterm(receiver: OtlpReceiver) -> None:
    argv = [
        *PYPROBE, "export", "--config", str(EXAMPLES), "--names", "usdt-ticks", "--listen", "127.0.0.1:0",
        "--otlp", receiver.url, "--otlp-interval", "1", "--otlp-header", "X-Scope-OrgID=fleet-1",
    ]  # fmt: skip
    proc = subprocess.Popen(argv, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stderr is not None
        lines = []
        for line in proc.stderr:
            lines.append(line)
            if "pushing to" in line:
                break
        assert any("serving usdt-ticks" in line for line in lines), lines
        assert f"pushing to {receiver.url} every 1 s" in lines[-1]
        first = receiver.wait(1, timeout=15)[0]
        assert first.headers["x-scope-orgid"] == "fleet-1"
        assert "ebpf_exporter_enabled_configs" in first.metrics()
        run_usdt(7)  # remainders 0, 1, 2, 0, 1, 2, 0
        before = len(receiver.received)
        stopped_at = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=30)
        assert proc.returncode == 0, err
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert "links detached" in err
    after = [r for r in receiver.received[before:] if r.at >= stopped_at]
    assert after, "no push at shutdown"
    final = points(after[-1].metrics()["ebpf_exporter_usdt_ticks_total"])
    assert {dict(k)["remainder"]: p.as_double for k, p in final.items()} == {"zero": 3.0, "one": 2.0, "two": 2.0}


def test_cli_otlp_options_are_checked_before_anything_loads() -> None:
    config = str(EXAMPLES)
    for extra, message in (
        (["--otlp", "ftp://collector/v1/metrics"], "OTLP endpoint 'ftp://collector/v1/metrics'"),
        (["--otlp", "http://127.0.0.1:4318", "--otlp-interval", "0"], "interval"),
        (["--otlp", "http://127.0.0.1:4318", "--otlp-header", "novalue"], "--otlp-header 'novalue'"),
        (["--otlp-header", "a=b"], "need --otlp"),
    ):
        out = subprocess.run(
            [*PYPROBE, "export", "--config", config, "--names", "usdt-ticks", "--listen", "127.0.0.1:0", *extra],
            capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip
        assert out.returncode == 2, (extra, out.stderr)
        assert message in out.stderr, (extra, out.stderr)
        assert "serving" not in out.stderr


@pytest.mark.bpf
def test_cli_unreachable_endpoint_is_reported_and_the_exporter_keeps_serving() -> None:
    url = f"http://127.0.0.1:{free_port()}/v1/metrics"
    argv = [*PYPROBE, "export", "--config", str(EXAMPLES), "--names", "usdt-ticks", "--listen", "127.0.0.1:0",
            "--otlp", url, "--otlp-interval", "0.5"]  # fmt: skip
    proc = subprocess.Popen(argv, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stderr is not None
        lines: list[str] = []
        for line in proc.stderr:
            lines.append(line)
            if f"pyprobe: OTLP push to {url} failed; trying again in 0.5 s" in line:
                break
        served = next(line for line in lines if "serving usdt-ticks on" in line)
        metrics_url = served.split(" on ", 1)[1].strip()
        assert 'ebpf_exporter_enabled_configs{name="usdt-ticks"} 1.0' in fetch(metrics_url)  # still serving
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=30)
        assert proc.returncode == 0, err
        assert "links detached" in err
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_timeout_defaults_to_the_interval_when_shorter() -> None:
    for kwargs, timeout in (({"interval": 2}, 2), ({"interval": 60}, 10), ({"interval": 60, "timeout": 30}, 30)):
        pusher = OtlpPusher(CollectorRegistry(), "http://127.0.0.1:4318", **kwargs)
        pusher.close()
        assert pusher.timeout == timeout
