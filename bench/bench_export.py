"""Scrape a 10,000-series counter map through `pyprobe.export`: batch dump against one lookup per key.

The map is the syscalls example's (key: 16-byte comm + u64 syscall number, decoded by the
`string`, `uint` and `syscall` decoders), filled with 10,000 distinct keys and loaded without
attaching so the counts stay fixed. Each way is timed on a whole scrape (the registry rendered
in Prometheus' text format, as /metrics serves it) and on the map read alone, both with the
label cache warm (the steady state of a scraped exporter); the first, cold scrape is shown too.
Prints series per second and the ratio measured now.
"""

from __future__ import annotations

import time

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


if __name__ == "__main__":
    main()
