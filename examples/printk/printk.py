"""printk: a probe's bpf_printk() lines, read with pyprobe.trace_pipe().

Attaches a uprobe that prints its first two arguments to FUNC in BINARY
(default: ``utest_add`` in the demo program bundled with pyprobe) and
follows trace_pipe for ``--duration`` seconds, printing the lines the probe
wrote (trace_pipe holds every BPF program's output: the probe tags its own).

    pyprobe build printk.bpf.c --skeleton printk_skel.py
    sudo python printk.py --duration 3 [-p PID]       # while `pyprobe demo` runs
"""

from __future__ import annotations

import argparse
import sys
import time

from printk_skel import PrintkSkeleton

import pyprobe
from pyprobe._data import target_path

TAG = "printk example: "


def main() -> None:
    parser = argparse.ArgumentParser(description="Follow a uprobe's bpf_printk() output in trace_pipe.")
    parser.add_argument("binary", nargs="?", help="program or library (default: pyprobe's bundled utest)")
    parser.add_argument("function", nargs="?", default="utest_add", help="function (default: %(default)s)")
    parser.add_argument("-p", "--pid", type=int, default=-1, help="trace this process only (default: all)")
    parser.add_argument("--duration", type=float, default=5.0, help="seconds to trace (default: %(default)s)")
    args = parser.parse_args()
    binary = args.binary or str(target_path("utest"))

    with PrintkSkeleton().load() as skel:
        skel.progs.func_entry.attach_uprobe(binary, args.function, pid=args.pid)
        print(f"Tracing {args.function} in {binary}", flush=True)
        deadline = time.monotonic() + args.duration
        while time.monotonic() < deadline:
            # ends after 0.1 s without a line, so the deadline is checked when the buffer is quiet too
            for line in pyprobe.trace_pipe(timeout=0.1):
                if line.message.startswith(TAG):
                    print(f"{line.timestamp:.6f} {line.task}-{line.pid} cpu {line.cpu}: {line.message[len(TAG) :]}")
                if time.monotonic() >= deadline:
                    break


if __name__ == "__main__":
    try:
        main()
    except OSError as exc:  # pyprobe's errors (AttachError, LoadError, ...) are OSErrors with a clear message
        sys.exit(f"printk: {exc}")
