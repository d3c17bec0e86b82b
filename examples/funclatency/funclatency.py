"""funclatency: a log2 histogram of how long a user function takes.

Attaches a uprobe and a uretprobe to FUNC in BINARY (default: ``utest_add``
in the demo program bundled with pyprobe), runs ``-c CMD`` to its end or
waits ``--duration`` seconds, then reads the histogram from an array map.

    pyprobe build funclatency.bpf.c --skeleton funclatency_skel.py
    sudo python funclatency.py --duration 3            # while `pyprobe demo` runs
    sudo python funclatency.py BINARY FUNC -c "BINARY ARGS..."
"""

from __future__ import annotations

import argparse
import shlex
import subprocess
import sys
import time

from funclatency_skel import FunclatencySkeleton

from pyprobe._data import target_path


def print_histogram(counts: list[int]) -> None:
    """One line per slot from the first to the last non-empty one: [2^i, 2^(i+1)) ns, count, bar."""
    used = [i for i, n in enumerate(counts) if n]
    if not used:
        print("no calls")
        return
    top = max(counts)
    print(f"{'nsecs':>24} : count    distribution")
    for i in range(used[0], used[-1] + 1):
        bar = "*" * round(40 * counts[i] / top)
        print(f"{1 << i:>11} -> {(1 << (i + 1)) - 1:<11}: {counts[i]:<8} |{bar:<40}|")
    print(f"calls: {sum(counts)}")


def main() -> None:
    parser = argparse.ArgumentParser(description="Histogram of a user function's latency.")
    parser.add_argument("binary", nargs="?", help="program or library (default: pyprobe's bundled utest)")
    parser.add_argument("function", nargs="?", default="utest_add", help="function (default: %(default)s)")
    parser.add_argument("-p", "--pid", type=int, default=-1, help="trace this process only (default: all)")
    parser.add_argument("-c", "--command", help="run this command once attached; stop when it exits")
    parser.add_argument("--duration", type=float, default=5.0, help="seconds to trace without -c")
    args = parser.parse_args()
    binary = args.binary or str(target_path("utest"))

    with FunclatencySkeleton().load() as skel:
        skel.progs.func_entry.attach_uprobe(binary, args.function, pid=args.pid)
        skel.progs.func_return.attach_uretprobe(binary, args.function, pid=args.pid)
        print(f"Tracing {args.function} in {binary}", flush=True)
        if args.command:
            subprocess.run(shlex.split(args.command), check=False)
        else:
            time.sleep(args.duration)
        counts = [n for _, n in sorted(skel.maps.hist.items())]
    print_histogram(counts)


if __name__ == "__main__":
    try:
        main()
    except OSError as exc:  # pyprobe's errors (AttachError, LoadError, ...) are OSErrors with a clear message
        sys.exit(f"funclatency: {exc}")
