"""A whole hash map dumped and fully decoded into a dict, against C libbpf's batch dump of the same map.

Three shapes of entry, each in a map of ``--entries`` entries (1,000,000 by
default; 10,000,000 checks that the cost grows linearly):

- int keys, bytes values: u32 keys typed ``c_uint32``, 16-byte values left as bytes;
- int keys, int values: u32 keys, u64 values;
- struct keys and values: ``struct point`` keys, ``struct value16`` values (BTF structs).

For each, bench/c/maps.c dumps the map with ``bpf_map_lookup_batch`` (the
baseline), then pyprobe's ``items(batch=True).to_dict()`` and
``dict(items(batch=True))`` run on the same map in the same run. Every
figure is the median of ``--repeat`` runs in CPU time (user + system, of
this process and of the C one: robust to other load on the machine), in ns
per entry, with the ratio against C; then each way's ratio to the C dump of
the same round, best, median and worst. What a run returns is freed after
its clock stops.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import time
from collections.abc import Callable
from typing import Any

from _common import helper, test_object

import pyprobe
from pyprobe.btf import Btf

_FILL_CHUNK = 500_000


def _fill(m: Any, n: int, key_fmt: str, value_fmt: str) -> None:
    import struct

    kp, vp = struct.Struct(key_fmt).pack, struct.Struct(value_fmt).pack
    kargs: Callable[[int], tuple[int, ...]] = (lambda k: (k,)) if key_fmt == "I" else (lambda k: (k, k ^ 0x5A5A))
    one: Callable[[int], tuple[int, ...]] = lambda k: (k,)  # noqa: E731
    vargs: Callable[[int], tuple[int, ...]] = one if len(value_fmt) == 1 else (lambda k: (k, k & 0xFFFF, 1))
    for base in range(0, n, _FILL_CHUNK):
        stop = min(base + _FILL_CHUNK, n)
        m.update_batch([(kp(*kargs(k)), vp(*vargs(k))) for k in range(base, stop)])


def _cpu(fn: Callable[[], object]) -> float:
    """CPU time (user + system) of ``fn`` in seconds; what it returns is freed after the clock stops."""
    start = time.process_time()
    result = fn()
    spent = time.process_time() - start
    del result
    return spent


def _c_dump(m: Any, n: int) -> float:
    out = subprocess.run([str(helper("maps")), str(m.id), "1", "cpu"], check=True, capture_output=True, text=True)
    c_ms, c_count = out.stdout.split()
    assert int(c_count) == n, (c_count, n)
    return float(c_ms) / 1e3


def run_shape(label: str, m: Any, n: int, repeat: int) -> tuple[float, float, float]:
    """Runs C and the three ways in turn ``repeat`` times; prints the medians, then best and spread of the ratios."""
    ways: dict[str, Callable[[], object]] = {
        "snapshot": lambda: m.items(batch=True),
        "to_dict()": lambda: m.items(batch=True).to_dict(),
        "dict()": lambda: dict(m.items(batch=True)),
    }
    times: dict[str, list[float]] = {"C": [], **{name: [] for name in ways}}
    for _ in range(repeat):  # interleaved: a burst of load elsewhere touches every side alike
        times["C"].append(_c_dump(m, n))
        for name, fn in ways.items():
            times[name].append(_cpu(fn))
    med = {name: statistics.median(t) for name, t in times.items()}
    c, ns = med["C"], 1e9 / n
    print(f"{label:24s} C {c * ns:6.0f}" + "".join(f"   {w} {med[w] * ns:6.0f} ({med[w] / c:4.2f}x)" for w in ways))
    ratios = {w: sorted(t / cc for t, cc in zip(times[w], times["C"], strict=True)) for w in ways}
    print(
        f"{'':24s} ratio per run, best / median / worst:"
        + "".join(f"   {w} {r[0]:4.2f} / {statistics.median(r):4.2f} / {r[-1]:4.2f}" for w, r in ratios.items())
    )
    return c, med["to_dict()"], med["dict()"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--entries", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--shape", choices=["bytes", "int", "struct"], action="append")
    args = parser.parse_args()
    n, repeat = args.entries, args.repeat
    shapes = args.shape or ["bytes", "int", "struct"]
    btf = Btf.from_file(test_object("maps"))
    point, value16 = btf.type_by_name("struct point"), btf.type_by_name("struct value16")
    u32, u64 = pyprobe.btf.int_type(4, False), pyprobe.btf.int_type(8, False)
    print(f"{n:,} entries, median of {repeat} runs, ns per entry (ratio against C's batch dump)")
    made: dict[str, tuple[dict[str, Any], str, str]] = {
        "bytes": ({"key_type": u32, "value_size": 16}, "I", "QII"),
        "int": ({"key_type": u32, "value_type": u64}, "I", "Q"),
        "struct": ({"key_type": point, "value_type": value16}, "II", "QII"),
    }
    labels = {"bytes": "int keys, bytes values", "int": "int keys, int values", "struct": "struct keys and values"}
    for shape in shapes:
        kwargs, key_fmt, value_fmt = made[shape]
        m = pyprobe.Map.create("hash", max_entries=n, **kwargs)
        with m:
            start = time.perf_counter()
            _fill(m, n, key_fmt, value_fmt)
            fill = time.perf_counter() - start
            items = m.items(batch=True)
            sample = items.to_dict()
            assert len(sample) == n
            key = 12345 if shape != "struct" else point(x=12345, y=12345 ^ 0x5A5A)
            assert sample[key] == m[key], (sample[key], m[key])
            del items, sample
            print(f"  (filled in {fill:.1f} s)")
            run_shape(labels[shape], m, n, repeat)


if __name__ == "__main__":
    main()
