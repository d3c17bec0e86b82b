"""Scrape a 10,000-series counter map through `pyprobe.export`: batch dump against one lookup per key.

The map is the syscalls example's (key: 16-byte comm + u64 syscall number, decoded by the
`string`, `uint` and `syscall` decoders), filled with 10,000 distinct keys and loaded without
attaching so the counts stay fixed. Each way is timed on a whole scrape (the registry rendered
in Prometheus' text format, as /metrics serves it) and on the map read alone, both with the
label cache warm (the steady state of a scraped exporter); the first, cold scrape is shown too.
Prints series per second and the ratio measured now, then the time `--otlp` takes to push the
same 10,000 series (OpenTelemetry's OTLP/HTTP exporter, to a loopback endpoint).
"""

from __future__ import annotations

import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from _common import BUILD, median_time
from prometheus_client import generate_latest

import pyprobe
from pyprobe.export import Exporter, load_config

N = 10_000
EXAMPLES = BUILD / "examples" / "exporter"


def main() -> None:
    (config,) = load_config(EXAMPLES, ["syscalls"])
    with pyprobe.load(EXAMPLES / "syscalls.bpf.o") as obj:
        m = obj.maps["syscalls_total"]
        pairs = {}
        for i in range(N):
            comm = f"task{i // 300:05d}".encode().ljust(16, b"\0")
            pairs[comm + (i % 300).to_bytes(8, "little")] = (i + 1).to_bytes(8, "little")
        m.update_batch(pairs)
        assert len(m) == N
        results = {}
        for name, batch in (("batch", True), ("per-key", False)):
            with Exporter(batch=batch) as exporter:
                exported = exporter.add_object(obj, config)
                (mm,) = exported.metrics
                start = time.perf_counter()
                text = generate_latest(exporter.registry)
                cold = time.perf_counter() - start
                assert text.count(b"ebpf_exporter_syscalls_total{") == N
                scrape = median_time(lambda: generate_latest(exporter.registry), 7)
                read = median_time(lambda: mm.read(batch=batch), 7)  # noqa: B023
                assert len(mm.read(batch=batch)) == N and mm.decode_errors == 0
                results[name] = (cold, scrape, read)
        for name, (cold, scrape, read) in results.items():
            print(
                f"{name:8} first scrape {cold * 1e3:6.1f} ms | scrape {scrape * 1e3:6.1f} ms"
                f" ({N / scrape:9,.0f} series/s)"
                f" | map read + labels {read * 1e3:6.1f} ms ({N / read:9,.0f} series/s)"
            )
        (_, b_scrape, b_read), (_, p_scrape, p_read) = results["batch"], results["per-key"]
        print(
            f"batch vs per-key: whole scrape {p_scrape / b_scrape:.1f}x faster, map read {p_read / b_read:.1f}x faster"
        )
        print(f"a {N:,}-series scrape takes {b_scrape:.3f} s of Prometheus' default 10 s scrape timeout")
        with Exporter() as exporter:
            exporter.add_object(obj, config)
            otlp_push(exporter)


class _Sink(BaseHTTPRequestHandler):
    """An OTLP/HTTP endpoint that accepts every request (the receiving side's decoding is not timed)."""

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", "0")))
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass


def otlp_push(exporter: Exporter) -> None:
    """The same registry pushed with ``--otlp``'s OtlpPusher to a loopback endpoint: whole push and its parts."""
    from opentelemetry.exporter.otlp.proto.common.metrics_encoder import encode_metrics

    from pyprobe.export.otlp import OtlpPusher

    server = ThreadingHTTPServer(("127.0.0.1", 0), _Sink)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        pusher = OtlpPusher(exporter.registry, f"http://127.0.0.1:{server.server_address[1]}/v1/metrics")
        try:
            assert pusher.push_now()
            push = median_time(pusher.push_now, 5)
            snapshot = median_time(pusher.snapshot, 5)
            data = pusher.snapshot()
            encode = median_time(lambda: encode_metrics(data).SerializeToString(), 5)
            size = len(encode_metrics(data).SerializeToString())
            assert pusher.failures == 0
        finally:
            pusher.close()
    finally:
        server.shutdown()
        server.server_close()
    print(
        f"OTLP push of {N:,} series: {push * 1e3:6.1f} ms ({N / push:9,.0f} series/s): collect + convert"
        f" {snapshot * 1e3:.1f} ms, protobuf encode {encode * 1e3:.1f} ms, {size / 1e6:.2f} MB request"
    )


if __name__ == "__main__":
    main()
