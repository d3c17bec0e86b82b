"""A real OTLP/HTTP metrics endpoint on loopback for the tests: it stores what it receives.

Each POST body is decoded with the official OpenTelemetry protobuf definitions
(opentelemetry-proto's ExportMetricsServiceRequest) and answered as a collector
answers: 200 with an ExportMetricsServiceResponse.
"""

from __future__ import annotations

import gzip
import threading
import time
import zlib
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
    ExportMetricsServiceResponse,
)


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    request: ExportMetricsServiceRequest
    at: float = field(default_factory=time.monotonic)
    """time.monotonic() when it arrived."""

    def metrics(self) -> dict[str, Any]:
        """Metric name -> the protobuf Metric (across resources and scopes)."""
        out: dict[str, Any] = {}
        for rm in self.request.resource_metrics:
            for sm in rm.scope_metrics:
                for metric in sm.metrics:
                    assert metric.name not in out, f"metric {metric.name} sent twice in one request"
                    out[metric.name] = metric
        return out

    def resource(self) -> dict[str, Any]:
        (rm,) = self.request.resource_metrics
        return attributes(rm.resource.attributes)


def any_value(value: Any) -> Any:
    kind = value.WhichOneof("value")
    return getattr(value, kind) if kind else None


def attributes(kvs: Any) -> dict[str, Any]:
    return {kv.key: any_value(kv.value) for kv in kvs}


def points(metric: Any) -> dict[tuple[tuple[str, Any], ...], Any]:
    """Data points of a metric by their sorted attributes."""
    data = getattr(metric, metric.WhichOneof("data"))
    out = {}
    for point in data.data_points:
        key = tuple(sorted(attributes(point.attributes).items()))
        assert key not in out, f"{metric.name}: two points with attributes {key}"
        out[key] = point
    return out


@dataclass
class OtlpReceiver:
    """ThreadingHTTPServer on 127.0.0.1 accepting POST /v1/metrics (any path is recorded)."""

    port: int = 0
    received: list[Received] = field(default_factory=list)
    status: int = 200

    def __post_init__(self) -> None:
        self._cond = threading.Condition()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                encoding = self.headers.get("Content-Encoding", "")
                if encoding == "gzip":
                    body = gzip.decompress(body)
                elif encoding == "deflate":
                    body = zlib.decompress(body)
                if receiver.status != 200:
                    self.send_response(receiver.status)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                request = ExportMetricsServiceRequest.FromString(body)
                with receiver._cond:
                    receiver.received.append(
                        Received(self.path, {k.lower(): v for k, v in self.headers.items()}, request)
                    )
                    receiver._cond.notify_all()
                reply = ExportMetricsServiceResponse().SerializeToString()
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, name="otlp-receiver", daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1/metrics"

    def wait(self, count: int, timeout: float = 10.0) -> list[Received]:
        """Block until at least ``count`` requests arrived; AssertionError after ``timeout``."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while len(self.received) < count:
                left = deadline - time.monotonic()
                assert left > 0, f"{len(self.received)} OTLP requests after {timeout} s, expected {count}"
                self._cond.wait(left)
            return list(self.received)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join()

    def __enter__(self) -> OtlpReceiver:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
