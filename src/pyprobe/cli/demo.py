"""``pyprobe demo``: trace the bundled C++ target's utest_add and utest_sub."""

from __future__ import annotations

import argparse
import struct
import subprocess
import sys
import time
from typing import Any

import pyprobe
from pyprobe._data import probe_path, target_path

FUNCTIONS = [("utest_add", "_Z9utest_addii", "+"), ("utest_sub", "_Z9utest_subii", "-")]
CALL = struct.Struct("<qqqQQ")  # struct demo_call in bpf/probes/demo.h


def add_parser(sub: Any) -> None:
    p = sub.add_parser("demo", help="trace the bundled target's functions (the default command)")
    p.add_argument("--duration", type=float, default=3.0, help="seconds to trace (default 3)")
    p.add_argument("--interval", type=float, default=1.0, help="seconds between reports (default 1)")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    target = target_path("utest")
    child = subprocess.Popen([str(target), "-1", "20000"], stdout=subprocess.DEVNULL)
    try:
        with pyprobe.load(probe_path("demo")) as obj:
            for slot, (_, symbol, _) in enumerate(FUNCTIONS):
                obj.programs["demo_entry"].attach_uprobe(target, symbol, pid=child.pid, cookie=slot)
                obj.programs["demo_return"].attach_uprobe(target, symbol, pid=child.pid, cookie=slot, retprobe=True)
            print(f"tracing {', '.join(f for f, _, _ in FUNCTIONS)} in {target} (pid {child.pid})", flush=True)
            calls = obj.maps["calls"]
            deadline = time.monotonic() + args.duration
            while (left := deadline - time.monotonic()) > 0:
                time.sleep(min(args.interval, left))
                for slot, (name, _, op) in enumerate(FUNCTIONS):
                    a, b, ret, entries, returns = CALL.unpack(calls.get_bytes(struct.pack("<I", slot)))
                    print(f"{name}({a}, {b}) = {ret}    [{a} {op} {b}; {entries} calls, {returns} returns]")
                sys.stdout.flush()
    finally:
        child.terminate()
        child.wait()
    return 0
