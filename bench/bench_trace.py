"""`pyprobe trace` against bpftrace doing the same trace in the same run.

Measures (1) the time from starting the tracer to the first event printed,
for a target started every 2 ms, and with ``-p PID`` on a process calling
the function every millisecond, (2) the time that tracing adds to each call
of the traced function (entry and return probes; each call printed with its
arguments, return value and latency), and (3) the peak RSS of `pyprobe trace`. bpftrace is Debian's
package (``apt-get install bpftrace``); without it only pyprobe's figures
print. The time to the first event is the best of RUNS starts (min, with the
median and the spread), the two tracers alternating so that both see the same
load; ``PYPROBE_TIMELINE=1 pyprobe trace ...`` shows where pyprobe's start-up
goes (imports, ELF read, load, attach, first event).
"""

from __future__ import annotations

import os
import selectors
import shutil
import statistics
import subprocess
import sys
import time

from _common import ROOT, helper

PYPROBE = [str(ROOT / ".venv" / "bin" / "pyprobe")] if (ROOT / ".venv" / "bin" / "pyprobe").exists() else [
    sys.executable, "-m", "pyprobe",
]  # fmt: skip
CALLS = 20000
RUNS = 7


def tracer_commands(binary: str, pid: int | None = None) -> dict[str, list[str]]:
    """The two tracers' commands; with ``pid``, each traces only that process (``-p PID``)."""
    only = ["-p", str(pid)] if pid is not None else []
    cmds = {"pyprobe": [*PYPROBE, "trace", f"{binary}:long bc_work(long a, long b)", *only]}
    bpftrace = shutil.which("bpftrace")
    if bpftrace:
        prog = (
            f"uprobe:{binary}:bc_work {{ @ts[tid] = nsecs; @a[tid] = arg0; @b[tid] = arg1; }} "
            f'uretprobe:{binary}:bc_work /@ts[tid]/ {{ printf("%d %d %s bc_work(a=%ld, b=%ld) = %ld [%d ns]\\n", '
            f"pid, tid, comm, @a[tid], @b[tid], retval, nsecs - @ts[tid]); delete(@ts[tid]); }}"
        )
        cmds["bpftrace"] = [bpftrace, *only, "-e", prog]
    return cmds


def floor_command(binary: str, pid: int) -> list[str]:
    """trace_floor.py's command for the same trace: the offset and the raw config record made here, beforehand."""
    import struct

    import pyprobe
    from pyprobe._data import probe_file
    from pyprobe.cli.probespec import parse_probe
    from pyprobe.cli.trace import Tracer

    with Tracer([parse_probe(f"{binary}:long bc_work(long a, long b)")], pid=pid) as tracer:
        config = tracer._obj.maps["funcs"].get_bytes(struct.pack("<I", 0))
    offset = pyprobe.symbols.resolve(binary, "bc_work").offset
    python = str(ROOT / ".venv" / "bin" / "python") if (ROOT / ".venv" / "bin" / "python").exists() else sys.executable
    floor = str(ROOT / "bench" / "trace_floor.py")
    return [python, floor, str(probe_file("functrace")), binary, str(offset), str(pid), config.hex()]


def is_event(line: str) -> bool:
    return "bc_work(a=" in line


def start_and_wait_first_event(
    cmd: list[str], binary: str | None = None, timeout: float = 30.0
) -> tuple[subprocess.Popen[str], float]:
    """Starts ``cmd``; returns the tracer and the seconds to its first event.

    With ``binary``, runs that target once every 2 ms meanwhile; without, the
    traced process is already running (``-p PID``, calling every millisecond).
    """
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, bufsize=1)
    assert proc.stdout is not None
    os.set_blocking(proc.stdout.fileno(), False)
    sel = selectors.DefaultSelector()
    sel.register(proc.stdout, selectors.EVENT_READ)
    buf = ""
    try:
        while time.perf_counter() - start < timeout:
            if binary is not None:
                subprocess.run([binary, "1"], stdout=subprocess.DEVNULL, check=True)
            if sel.select(timeout=0.002 if binary is not None else 0.5):
                buf += proc.stdout.read() or ""
                if any(is_event(line) for line in buf.splitlines()):
                    return proc, time.perf_counter() - start
    finally:
        sel.close()
    proc.kill()
    raise SystemExit(f"{cmd[0]}: no event within {timeout} s")


def drain_and_stop(proc: subprocess.Popen[str]) -> int:
    """Stops the tracer with SIGINT (Ctrl-C); returns its peak RSS in KiB."""
    proc.send_signal(2)
    assert proc.stdout is not None
    os.set_blocking(proc.stdout.fileno(), True)
    proc.stdout.read()
    _, _, usage = os.wait4(proc.pid, 0)
    proc.returncode = 0
    return usage.ru_maxrss


def per_call_ns(binary: str) -> float:
    out = subprocess.run([binary, str(CALLS)], capture_output=True, text=True, check=True)
    return float(out.stdout)


def main() -> None:
    if os.geteuid() != 0:
        raise SystemExit("bench_trace: run as root")
    binary = str(helper("calls"))
    base = statistics.median(per_call_ns(binary) for _ in range(5))
    print(f"untraced call of bc_work: {base:.1f} ns")
    cmds = tracer_commands(binary)
    firsts: dict[str, list[float]] = {name: [] for name in cmds}
    overheads: dict[str, list[float]] = {name: [] for name in cmds}
    rss: dict[str, list[int]] = {name: [] for name in cmds}
    for _ in range(RUNS):
        for name, cmd in cmds.items():  # alternate: a burst of load elsewhere hits both
            proc, first = start_and_wait_first_event(cmd, binary)
            traced = statistics.median(per_call_ns(binary) for _ in range(3))
            rss[name].append(drain_and_stop(proc))
            firsts[name].append(first)
            overheads[name].append(traced - base)
    # `trace BINARY:FUNC -p PID` on a process calling the function every millisecond.
    target = subprocess.Popen([binary, "--every", "1000"], stdout=subprocess.DEVNULL)
    try:
        pid_cmds = {**tracer_commands(binary, target.pid), "floor": floor_command(binary, target.pid)}
        pid_firsts: dict[str, list[float]] = {name: [] for name in pid_cmds}
        for _ in range(RUNS):
            for name, cmd in pid_cmds.items():
                proc, first = start_and_wait_first_event(cmd)
                drain_and_stop(proc)
                pid_firsts[name].append(first)
    finally:
        target.kill()
        target.wait()
    print("(floor: the same trace made through the raw cffi binding alone, see trace_floor.py)")
    for name, f in pid_firsts.items():
        print(f"{name:>9}: -p PID, first event after {min(f) * 1e3:.0f} ms (best of {RUNS}; median "
              f"{statistics.median(f) * 1e3:.0f}, {min(f) * 1e3:.0f}-{max(f) * 1e3:.0f})")  # fmt: skip
    if "bpftrace" in pid_firsts:
        p_f, b_f = pid_firsts["pyprobe"], pid_firsts["bpftrace"]
        print(f"ratios pyprobe/bpftrace with -p PID: time to first event {min(p_f) / min(b_f):.2f}x best, "
              f"{statistics.median(p_f) / statistics.median(b_f):.2f}x median (goal <= 0.5)")  # fmt: skip
        fl = pid_firsts["floor"]
        print(f"ratios floor/bpftrace with -p PID: {min(fl) / min(b_f):.2f}x best, "
              f"{statistics.median(fl) / statistics.median(b_f):.2f}x median; pyprobe's own layers: "
              f"{(min(p_f) - min(fl)) * 1e3:.0f} ms best")  # fmt: skip
    results: dict[str, dict[str, float]] = {}
    for name in cmds:
        f = firsts[name]
        results[name] = {
            "first": min(f), "overhead": statistics.median(overheads[name]), "rss": max(rss[name]) / 1024,
        }  # fmt: skip
        r = results[name]
        print(f"{name:>9}: first event after {r['first'] * 1e3:.0f} ms (best of {RUNS}; median "
              f"{statistics.median(f) * 1e3:.0f}, {min(f) * 1e3:.0f}-{max(f) * 1e3:.0f}), "
              f"+{r['overhead']:.0f} ns per call ({CALLS} calls, entry+return), RSS {r['rss']:.1f} MiB")  # fmt: skip
    if "bpftrace" in results:
        p, b = results["pyprobe"], results["bpftrace"]
        med = statistics.median(firsts["pyprobe"]) / statistics.median(firsts["bpftrace"])
        print(f"ratios pyprobe/bpftrace: time to first event {p['first'] / b['first']:.2f}x best, {med:.2f}x median "
              f"(goal <= 0.5), "
              f"per-call overhead {p['overhead'] / b['overhead']:.2f}x (goal <= 1.10), "
              f"peak RSS {p['rss'] / b['rss']:.2f}x; pyprobe RSS goal < 40 MiB")  # fmt: skip


if __name__ == "__main__":
    main()
