"""``--call-graph dwarf`` against the frame-pointer walk, on the same samples in the same run.

For each workload (the bundled proftarget_nofp, and Debian's own binaries,
built without frame pointers: ``python3`` running a busy loop, ``gzip -9``
compressing random bytes, ``sort`` on a large file), samples the process at
HZ with DwarfSampler(fp_stacks=True): every sample carries both the DWARF
unwind (user space, from .eh_frame) and the kernel's frame-pointer walk of the
same moment. Prints the user stack depth in both modes, how many DWARF stacks
reach their outermost frame (_start or clone), and the costs:

- unwind: the C unwinder alone per sample (the captured batches replayed,
  best of REPLAYS), with its row cache warm and with no cache, and the
  user-space unwinding step per sample as it ran (with the Python around it);
- BPF: the program's run time per sample (kernel.bpf_stats_enabled) when it
  copies registers + STACK bytes, against a program that walks frame pointers
  only (the same object with the copy off and fp_stacks on);
- libdw: the same captured records unwound by elfutils' libdwfl the way perf's
  unwind-libdw.c does (bench/libdw/unwind_libdw.c, one Dwfl for the run, its
  caches warm; built here when libdw-dev is installed, else skipped);
- the slowdown of proftarget_nofp at 99 Hz with no profiler, the frame-pointer
  mode and the DWARF mode, runs alternating (best of RUNS; the machine is shared).
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Any

from _common import BUILD

from pyprobe import system
from pyprobe.profile._unwind import F_OUTERMOST, Unwinder
from pyprobe.profile.dwarf import DwarfSampler

HZ = 499
SECONDS = 3.0
REPLAYS = 5
RUNS = 5
TARGET = BUILD / "tests" / "targets" / "proftarget_nofp"


class Capturing(DwarfSampler):
    """Keeps a copy of every batch it unwinds, to replay through the C unwinder alone."""

    def __init__(self, **kw: Any) -> None:
        super().__init__(**kw)
        self.captured: list[tuple[bytes, list[int], int]] = []

    def _unwind(self, raw: bytes, offsets: Any, n: int) -> None:
        self.captured.append((bytes(raw), list(offsets), n))
        super()._unwind(raw, offsets, n)


def replay_ns(s: Capturing, *, cache: bool = True) -> float:
    """Best per-sample time of the C unwinder over the captured batches (with its row cache, or none)."""
    from pyprobe._ffi import ffi

    unwinder = s._unwinder
    if not cache:
        unwinder = Unwinder(max_frames=unwinder.max_frames, cache_entries=0)
        unwinder.procs = s._unwinder.procs
    batches = []
    for raw, offsets, n in s.captured:
        pids = [int.from_bytes(raw[o : o + 4], "little") for o in offsets[:-1]]
        batches.append((ffi.from_buffer("uint8_t[]", raw), ffi.new("uint32_t[]", offsets), n, pids))
    total = sum(b[2] for b in batches)
    best = float("inf")
    for _ in range(REPLAYS):
        t0 = time.perf_counter_ns()
        for buf, offs, n, pids in batches:
            unwinder.unwind(buf, offs, n, pids)
        best = min(best, time.perf_counter_ns() - t0)
    return best / max(total, 1)


def build_libdw(tmp: str) -> str | None:
    """bench/libdw/unwind_libdw.c built against libdw, or None without libdw-dev."""
    if not os.path.exists("/usr/include/elfutils/libdwfl.h"):
        return None
    out = os.path.join(tmp, "unwind_libdw")
    src = os.path.join(os.path.dirname(os.path.abspath(__file__)), "libdw", "unwind_libdw.c")
    proc = subprocess.run(["cc", "-O2", "-o", out, src, "-ldw", "-lelf"], capture_output=True, text=True, check=False)
    return out if proc.returncode == 0 else None


def libdw_ns(exe: str, s: Capturing, pid: int, tmp: str) -> tuple[float, float]:
    """(ns per sample, frames per sample) of libdwfl on the captured records of the live process ``pid``."""
    path = os.path.join(tmp, "records.bin")
    with open(path, "wb") as f:
        for raw, offsets, n in s.captured:
            for i in range(n):
                rec = raw[offsets[i] : offsets[i + 1]]
                f.write(len(rec).to_bytes(4, "little") + rec)
    proc = subprocess.run([exe, str(pid), path, str(REPLAYS)], capture_output=True, text=True, check=False)
    if proc.returncode != 0:  # the workload ended before libdw read its maps
        return float("nan"), float("nan")
    n, frames, ns = (float(x) for x in proc.stdout.split())
    return ns, frames / max(n, 1)


def bpf_stats(on: bool) -> str:
    path = "/proc/sys/kernel/bpf_stats_enabled"
    with open(path) as f:
        old = f.read().strip()
    with open(path, "w") as f:
        f.write("1" if on else "0")
    return old


def prog_cost(s: DwarfSampler) -> float:
    pid = s._obj.programs["profile_dwarf"].id
    info = next(p for p in system.programs() if p.id == pid)
    return info.run_time_ns / info.run_count if info.run_count else 0.0


def workloads(tmp: str) -> dict[str, list[str]]:
    rand = os.path.join(tmp, "random.bin")
    with open(rand, "wb") as f:
        f.write(os.urandom(96 << 20))
    lines = os.path.join(tmp, "lines.txt")
    with open(lines, "w") as f:
        rng = os.urandom(24 << 20)
        f.writelines(f"{rng[i : i + 4].hex()} {i}\n" for i in range(0, len(rng) - 4, 3))
    busy = "def f(n):\n return f(n-1) if n else sum(i*i for i in range(2000))\nwhile True: f(30)"
    return {
        "proftarget_nofp": [str(TARGET), "60"],
        "python3 busy loop": ["python3", "-c", busy],
        "gzip -9 random": ["gzip", "-9", "-c", rand],
        "sort big file": ["sort", "-S", "512M", lines],
    }


def depth_stats(s: Capturing, seconds: float, pid: int, libdw: str | None, tmp: str) -> dict[str, float]:
    s.start()
    time.sleep(seconds)
    pairs = s.drain_with_fp()
    dwarf, fp, outer, n = [], [], 0, 0
    for raw, fps in pairs:
        if raw.pid != pid or not raw.user:
            continue
        dwarf += [len(raw.user)] * raw.count
        fp += [len(fps)] * raw.count
        n += raw.count
    st = s.stats
    outer = sum(c for f, c in st.stopped.items() if f & F_OUTERMOST)
    d = {
        "samples": n,
        "dwarf_mean": statistics.fmean(dwarf) if dwarf else 0,
        "dwarf_median": statistics.median(dwarf) if dwarf else 0,
        "dwarf_max": max(dwarf, default=0),
        "fp_mean": statistics.fmean(fp) if fp else 0,
        "fp_median": statistics.median(fp) if fp else 0,
        "fp_short": sum(1 for x in fp if x <= 2) / max(len(fp), 1),
        "outermost": outer / max(st.user_records, 1),
        "pass_ns": st.unwind_ns / max(st.user_records, 1),
        "c_ns": replay_ns(s),
        "c_nocache_ns": replay_ns(s, cache=False),
        "frames": st.frames / max(st.user_records, 1),
    }
    d["libdw_ns"], d["libdw_frames"] = libdw_ns(libdw, s, pid, tmp) if libdw else (0.0, 0.0)
    return d


def slowdown() -> None:
    """proftarget_nofp's rounds per CPU second under each mode at 99 Hz (alternating runs)."""

    def run(mode: str) -> float:
        p = subprocess.Popen([str(TARGET), "3"], stdout=subprocess.PIPE, text=True)
        assert p.stdout is not None
        p.stdout.readline()
        s = None
        if mode == "fp":
            s = DwarfSampler(pids=[p.pid], frequency=99, user=False, fp_stacks=True)
        elif mode == "dwarf":
            s = DwarfSampler(pids=[p.pid], frequency=99)
        if s:
            s.start()
        out = p.stdout.read()
        _, _, usage = os.wait4(p.pid, 0)
        p.returncode = 0
        p.stdout.close()
        if s:
            s.drain()
            s.close()
        # per CPU second of the target: the samples' cost is charged to it, other load on the machine is not
        rounds = next(int(line.split()[-1]) for line in out.splitlines() if line.startswith("proftarget rounds"))
        return rounds / (usage.ru_utime + usage.ru_stime)

    rates: dict[str, list[float]] = {"none": [], "fp": [], "dwarf": []}
    for _ in range(RUNS):
        for mode, got in rates.items():
            got.append(run(mode))
    base = max(rates["none"])
    for mode, r in rates.items():
        print(
            f"  {mode:6s} {max(r):9.0f} rounds/CPU s (best of {RUNS}, spread {min(r) / max(r) * 100:5.1f}%)"
            f"  slowdown {100 * (1 - max(r) / base):+5.2f}%"
        )


def main() -> None:
    if not TARGET.exists():
        sys.exit(f"{TARGET} is missing: run ./dev build first")
    old = bpf_stats(True)
    try:
        with tempfile.TemporaryDirectory(prefix="bench_unwind_") as tmp:
            libdw = build_libdw(tmp)
            print(f"user stack depth, DWARF vs frame pointers on the same samples ({HZ} Hz, {SECONDS:.0f} s each)")
            print(
                f"  {'workload':20s} {'samples':>7s} {'dwarf mean/med/max':>19s} {'fp mean/med':>12s}"
                f" {'fp<=2':>6s} {'outermost':>9s} {'C ns/smp':>9s} {'no cache':>9s} {'pass ns/smp':>11s}"
                f" {'libdw ns/smp':>12s} {'(frames)':>8s} {'(ours)':>6s}"
            )
            for name, cmd in workloads(tmp).items():
                p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                time.sleep(0.3)
                try:
                    s = Capturing(pids=[p.pid], frequency=HZ, fp_stacks=True)
                    with s:
                        d = depth_stats(s, SECONDS, p.pid, libdw, tmp)
                finally:
                    p.kill()
                    p.wait()
                print(
                    f"  {name:20s} {d['samples']:7d}"
                    f" {d['dwarf_mean']:7.1f}/{d['dwarf_median']:4.0f}/{d['dwarf_max']:4d}"
                    f"    {d['fp_mean']:5.1f}/{d['fp_median']:4.0f} {100 * d['fp_short']:5.0f}%"
                    f" {100 * d['outermost']:8.0f}% {d['c_ns']:9.0f} {d['c_nocache_ns']:9.0f} {d['pass_ns']:11.0f}"
                    f" {d['libdw_ns']:12.0f} {d['libdw_frames']:8.1f} {d['frames']:6.1f}"
                )
            print(f"BPF program run time per sample (proftarget_nofp, {HZ} Hz)")
            p = subprocess.Popen([str(TARGET), "60"], stdout=subprocess.DEVNULL)
            try:
                costs = {}
                for label, kw in (
                    ("frame pointers only", {"user": False, "fp_stacks": True}),
                    ("dwarf, 16 KiB copy", {}),
                    ("dwarf, 8 KiB copy", {"stack_bytes": 8192}),
                ):
                    with DwarfSampler(pids=[p.pid], frequency=HZ, **kw) as s:
                        s.start()
                        time.sleep(2.0)
                        costs[label] = prog_cost(s)
                        s.drain()
                base = costs["frame pointers only"]
                for label, ns in costs.items():
                    print(f"  {label:22s} {ns:8.0f} ns  ({ns / base:4.1f}x frame pointers)")
            finally:
                p.kill()
                p.wait()
    finally:
        bpf_stats(old == "1")
    print("proftarget_nofp throughput at 99 Hz")
    slowdown()


if __name__ == "__main__":
    main()
