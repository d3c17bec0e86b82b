"""`pyprobe profile` against no profiler and against `perf record -g` on the same CPU-bound target, in one run.

Measures (1) the target's slowdown at 99 Hz and 999 Hz: the bundled
proftarget_fp runs ROUND_S seconds under each condition (none, pyprobe,
perf, the conditions alternating, RUNS times) and its throughput is its work
rounds per second of its own CPU time (user + system, from wait4), so that
other load on the machine changes the wall time but not the figure;
(2) the symbolization time per unique address: the stacks of every process
sampled for 3 s, symbolized by a fresh symbolizer (ELF files and perf maps
read, the kernel's symbols already loaded), divided by the addresses it
looked up; (3) the time from stop (Ctrl-C) to each written file for a 30 s
profile of every process (with a CPU-bound target running). perf is Debian's
linux-perf (bookworm-backports); without it, or where it cannot record,
only pyprobe's figures print, with the reason.
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

from _common import BUILD, ROOT

PYPROBE = [str(ROOT / ".venv" / "bin" / "pyprobe")] if (ROOT / ".venv" / "bin" / "pyprobe").exists() else [
    sys.executable, "-m", "pyprobe",
]  # fmt: skip
TARGET = BUILD / "tests" / "targets" / "proftarget_fp"
ROUND_S = float(os.environ.get("BENCH_ROUND_S", "3"))
RUNS = int(os.environ.get("BENCH_RUNS", "5"))
LONG_S = float(os.environ.get("BENCH_LONG_S", "30"))


def run_target(wrapper: list[str], out_dir: str) -> float:
    """Runs the target under ``wrapper`` (a profiler's command, or none); its rounds per second of its CPU time."""
    out = os.path.join(out_dir, "target.out")
    argv = [str(TARGET), str(ROUND_S)]
    if wrapper and wrapper[-1] == "-c":  # pyprobe profile -c "CMD"
        argv = [*wrapper, " ".join(argv)]
    elif wrapper:  # perf record ... -- CMD
        argv = [*wrapper, *argv]
    with open(out, "w") as f:
        subprocess.run(argv, stdout=f, stderr=subprocess.DEVNULL, check=True)
    with open(out) as f:
        fields = dict(line.split()[1:3] for line in f if line.startswith("proftarget ") and "pid" not in line)
    return int(fields["rounds"]) / float(fields["cpu"])


def perf_works(tmp: str) -> str | None:
    """None when `perf record -g` can record here, else why not."""
    perf = shutil.which("perf")
    if perf is None:
        return "perf is not installed (apt-get install -t bookworm-backports linux-perf)"
    r = subprocess.run([perf, "record", "-F", "99", "-g", "-o", os.path.join(tmp, "check.data"), "--", "true"],
                       capture_output=True, text=True, check=False)  # fmt: skip
    if r.returncode != 0:
        return f"perf record failed: {(r.stderr.strip().splitlines() or ['?'])[-1]}"
    return None


def slowdown(tmp: str) -> None:
    perf = shutil.which("perf")
    why_not = perf_works(tmp)
    conditions: dict[str, list[str]] = {"none": []}
    for hz in (99, 999):
        conditions[f"pyprobe {hz} Hz"] = [*PYPROBE, "profile", "-F", str(hz), "-o", os.path.join(tmp, "p.folded"),
                                          "-c"]  # fmt: skip
        if why_not is None and perf is not None:
            conditions[f"perf -g {hz} Hz"] = [perf, "record", "-q", "-F", str(hz), "-g", "-o",
                                              os.path.join(tmp, "perf.data"), "--"]  # fmt: skip
    results: dict[str, list[float]] = {name: [] for name in conditions}
    for _ in range(RUNS):
        for name, wrapper in conditions.items():
            results[name].append(run_target(wrapper, tmp))
    base = statistics.median(results["none"])
    print(f"target throughput (rounds per CPU second; median of {RUNS} runs of {ROUND_S:.0f} s, spread min-max):")
    for name, values in results.items():
        med = statistics.median(values)
        spread = (max(values) - min(values)) / med * 100
        print(f"  {name:<16} {med:10.1f}   slowdown {100 * (1 - med / base):+6.2f}%   spread {spread:4.1f}%")
    for hz in (99, 999):
        if f"perf -g {hz} Hz" in results:
            ours = statistics.median(results[f"pyprobe {hz} Hz"])
            theirs = statistics.median(results[f"perf -g {hz} Hz"])
            print(f"  {hz} Hz: pyprobe's slowdown / perf's = {(1 - ours / base) * 100:.2f}% / "
                  f"{(1 - theirs / base) * 100:.2f}%")  # fmt: skip
    if why_not is not None:
        print(f"  perf: not measured ({why_not})")


def symbolization() -> None:
    from pyprobe.profile._sampler import FramePointerSampler
    from pyprobe.profile._symbolize import Symbolizer, kernel_symbols

    load = subprocess.Popen([str(TARGET), "5"], stdout=subprocess.DEVNULL)
    sampler = FramePointerSampler(frequency=999)
    try:
        sampler.start()
        time.sleep(3.0)
        raw = sampler.drain()
    finally:
        sampler.close()
        load.wait()
    kernel_symbols()  # loaded once per process: not part of the per-address figure
    times = []
    lookups = 0
    for _ in range(3):
        sym = Symbolizer()
        start = time.perf_counter()
        sym.new_generation()
        for r in raw:
            sym.user_frames(r.pid, r.user)
            sym.kernel_frames(r.kernel)
        times.append(time.perf_counter() - start)
        lookups = sym.lookups
    best = min(times)
    print(f"symbolization: {lookups} unique addresses of {len({r.pid for r in raw})} processes, "
          f"{best * 1e6 / max(lookups, 1):.1f} us per address cold (ELF files read), best of 3 "
          f"(spread {(max(times) - best) / best * 100:.0f}%)")  # fmt: skip


def stop_to_output(tmp: str) -> None:
    from pyprobe.profile import Profiler

    load = subprocess.Popen([str(TARGET), str(LONG_S + 5)], stdout=subprocess.DEVNULL)
    try:
        profiler = Profiler(frequency=99)
        profiler.start()
        time.sleep(LONG_S)
        start = time.perf_counter()
        prof = profiler.stop()
        stopped = time.perf_counter() - start
    finally:
        load.kill()
        load.wait()
    print(f"{LONG_S:.0f} s profile of every process at 99 Hz: {prof.total} samples, "
          f"{len(prof.samples)} distinct stacks; stop (last drain + symbols) {stopped * 1000:.0f} ms")  # fmt: skip
    for suffix in (".folded", ".json", ".pb.gz", ".svg"):
        path = os.path.join(tmp, "long" + suffix)
        start = time.perf_counter()
        try:
            prof.write(path)
        except (NotImplementedError, ImportError) as exc:
            print(f"  {suffix:<7} not written: {exc}")
            continue
        took = time.perf_counter() - start
        print(f"  stop to written {suffix:<7} {(stopped + took) * 1000:7.0f} ms ({os.path.getsize(path)} bytes)")


def main() -> None:
    if os.geteuid() != 0:
        raise SystemExit("bench_profile: run as root")
    if not TARGET.exists():
        raise SystemExit(f"{TARGET} is missing: run ./dev build first")
    with tempfile.TemporaryDirectory() as tmp:
        slowdown(tmp)
        symbolization()
        stop_to_output(tmp)


if __name__ == "__main__":
    main()
