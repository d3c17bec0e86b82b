"""Attaching uprobes to the 1,000 functions of one generated binary, three ways in one run.

1. pyprobe, one uprobe link per function (``attach_uprobe`` by name);
2. pyprobe, one uprobe_multi link for all of them (``attach_uprobe_multi``);
3. the same per-function attach in C with libbpf (bench/c/attach.c).

Goals: per-function attach within 1.2x of C; the multi link at least 10x faster
than attaching per function. Growth: uprobe_multi on the 1,000 and the 10,000
functions of a second generated binary (funcs10000), best of MULTI_RUNS, split
into the symbol look-up (pyprobe's ELF read, cold and cached) and the kernel's
attach and detach; the ratio 10k/1k says whether each part grows linearly.
``--multi`` runs only this part. Detaching a uprobe link costs ~100 ms here (RCU),
so the per-function cases attach N_SINGLE functions (default 200, in 8 rounds
that alternate C and pyprobe; PYPROBE_BENCH_N changes it) and the per-1,000
figure is their mean x 1,000.
Not run by the tests (it takes about a minute, mostly detaching).
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time

from _common import BUILD, helper, test_object

import pyprobe

FUNCTIONS = 1000
N_SINGLE = int(os.environ.get("PYPROBE_BENCH_N", "200"))
ROUNDS = 8
MULTI_RUNS = 5


def multi_growth(obj: pyprobe.BpfObject) -> None:
    """uprobe_multi on 1,000 then 10,000 functions: symbol look-up, attach and detach, and their growth."""
    prog = obj.programs["multi"]
    figures: dict[int, dict[str, list[float]]] = {}
    for count in (1000, 10000):
        binary = BUILD / "bench" / f"funcs{count}"
        if not binary.exists():
            raise SystemExit(f"{binary} is missing: run ./dev build first")
        runs: dict[str, list[float]] = {"cold": [], "cached": [], "attach": [], "detach": []}
        for _ in range(MULTI_RUNS):
            os.utime(binary)  # a new mtime: the symbol cache reads the ELF again
            start = time.perf_counter()
            syms = pyprobe.symbols.find(binary, "bench_fn_*")
            runs["cold"].append(time.perf_counter() - start)
            start = time.perf_counter()
            syms = pyprobe.symbols.find(binary, "bench_fn_*")
            runs["cached"].append(time.perf_counter() - start)
            assert len(syms) == count
            start = time.perf_counter()
            link = prog.attach_uprobe_multi(binary, "bench_fn_*")
            runs["attach"].append(time.perf_counter() - start)
            assert len(link.functions) == count
            start = time.perf_counter()
            link.detach()
            runs["detach"].append(time.perf_counter() - start)
        figures[count] = runs
    print(f"uprobe_multi growth, 1,000 -> 10,000 functions (best of {MULTI_RUNS}, ms; [min-max]):")
    for part, what in (
        ("cold", "symbols, ELF read"), ("cached", "symbols, cached"), ("attach", "attach"),
        ("detach", "detach"),
    ):  # fmt: skip
        small, big = figures[1000][part], figures[10000][part]
        print(f"  {what:>18}: {min(small) * 1e3:8.2f} [{min(small) * 1e3:.1f}-{max(small) * 1e3:.1f}] -> "
              f"{min(big) * 1e3:8.2f} [{min(big) * 1e3:.1f}-{max(big) * 1e3:.1f}]   x{min(big) / min(small):.1f} "
              f"(linear: x10); {min(big) / 10000 * 1e6:.2f} us per function at 10,000")  # fmt: skip


def main() -> None:
    if "--multi" in sys.argv[1:]:
        with pyprobe.load(test_object("attach_uprobe")) as obj:
            multi_growth(obj)
        return
    binary = BUILD / "bench" / "funcs1000"
    if not binary.exists():
        raise SystemExit(f"{binary} is missing: run ./dev build first")
    obj_path = test_object("attach_uprobe")
    names = [f"bench_fn_{i:04d}" for i in range(FUNCTIONS)]

    # The kernel's cost of a uprobe attach drifts while earlier detaches finish: interleave C and
    # pyprobe in rounds and compare the medians of the rounds.
    per_round = max(1, N_SINGLE // ROUNDS)
    c_rounds: list[float] = []
    py_rounds: list[float] = []
    detach_s = 0.0
    with pyprobe.load(obj_path) as obj:
        prog = obj.programs["add_entry"]
        pyprobe.symbols.resolve(binary, names[0])  # parse the ELF once (cached while the file is unchanged)
        for _ in range(ROUNDS):
            c_run = subprocess.run(
                [str(helper("attach")), str(obj_path), "add_entry", str(binary), str(per_round)],
                check=True, capture_output=True, text=True,
            )  # fmt: skip
            c_rounds.append(float(c_run.stdout))
            start = time.perf_counter()
            links = [prog.attach_uprobe(binary, name) for name in names[:per_round]]
            py_rounds.append((time.perf_counter() - start) / per_round * 1e6)
            start = time.perf_counter()
            for link in links:
                link.detach()
            detach_s += time.perf_counter() - start
        c_us, py_us = statistics.median(c_rounds), statistics.median(py_rounds)
        detach_ms = detach_s / (per_round * ROUNDS) * 1e3

        multi_prog = obj.programs["multi"]
        start = time.perf_counter()
        multi = multi_prog.attach_uprobe_multi(binary, "bench_fn_*")
        multi_ms = (time.perf_counter() - start) * 1e3
        assert len(multi.functions) == FUNCTIONS
        start = time.perf_counter()
        multi.detach()
        multi_detach_ms = (time.perf_counter() - start) * 1e3

    per_1000_ms = py_us * FUNCTIONS / 1e3
    print(f"per-function uprobe attach ({ROUNDS} rounds of {per_round} of the {FUNCTIONS} functions, median of means):")
    print(f"  rounds, us: pyprobe {[round(x) for x in py_rounds]}, C {[round(x) for x in c_rounds]}")
    print(f"  pyprobe {py_us:.0f} us, C libbpf {c_us:.0f} us, ratio {py_us / c_us:.2f}x (goal <= 1.2x)")
    print(f"  detach: {detach_ms:.0f} ms per link (kernel RCU wait)")
    print(
        f"uprobe_multi on {FUNCTIONS} functions (one link, glob): "
        f"attach {multi_ms:.1f} ms, detach {multi_detach_ms:.1f} ms"
    )
    print(
        f"  vs per-function for {FUNCTIONS}: pyprobe {per_1000_ms:.0f} ms, C {c_us * FUNCTIONS / 1e3:.0f} ms "
        f"-> multi is {per_1000_ms / multi_ms:.0f}x faster than pyprobe per-function (goal >= 10x)"
    )

    with pyprobe.load(obj_path) as obj:
        multi_growth(obj)


if __name__ == "__main__":
    main()
