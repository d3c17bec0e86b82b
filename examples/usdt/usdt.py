"""usdt: a USDT probe's arguments, traced from its ELF notes.

Lists the probe's argument specs as the binary's notes give them, attaches
to ``pyprobe_test:tick`` of the test program ``usdt_target`` (three
arguments: a counter, an int, a long) and prints each hit.

    pyprobe build usdt.bpf.c --skeleton usdt_skel.py
    sudo python usdt.py TARGET -c "TARGET 3 0"    # TARGET: build/py/tests/targets/usdt_target
"""

from __future__ import annotations

import argparse
import shlex
import subprocess
import sys
import time

from usdt_skel import UsdtSkeleton

import pyprobe.usdt


def main() -> None:
    parser = argparse.ArgumentParser(description="Trace a USDT probe with three arguments.")
    parser.add_argument("binary", help="the program (or library) with the probe")
    parser.add_argument("--probe", default="pyprobe_test:tick", help="PROVIDER:NAME (default: %(default)s)")
    parser.add_argument("-p", "--pid", type=int, default=-1, help="trace this process only (default: all)")
    parser.add_argument("-c", "--command", help="run this command once attached; stop when it exits")
    parser.add_argument("--duration", type=float, default=10.0, help="seconds to trace without -c")
    args = parser.parse_args()
    provider, _, name = args.probe.partition(":")

    for probe in pyprobe.usdt.probes(args.binary):
        if (probe.provider, probe.name) == (provider, name):
            specs = " ".join(arg.spec for arg in probe.arguments)  # e.g. -8@%rbx: signed, 8 bytes, in rbx
            print(f"{provider}:{name} at {probe.address:#x}, semaphore {probe.semaphore:#x}, arguments: {specs}")

    with UsdtSkeleton().load() as skel:
        skel.progs.handle_tick.attach_usdt(args.binary, provider, name, pid=args.pid)
        print(f"Tracing {args.probe} in {args.binary}", flush=True)
        child = subprocess.Popen(shlex.split(args.command)) if args.command else None
        deadline = time.monotonic() + args.duration

        def running() -> bool:
            return child.poll() is None if child else time.monotonic() < deadline

        with skel.maps.events.reader() as reader:
            while True:
                done = not running()  # read what is left once more after the end
                for e in reader.read_batch(timeout=0.1):
                    print(f"pid {e.pid}: {name}(i={e.i}, small={e.small}, big={e.big})")
                if done:
                    break


if __name__ == "__main__":
    try:
        main()
    except OSError as exc:  # pyprobe's errors (AttachError, LoadError, ...) are OSErrors with a clear message
        sys.exit(f"usdt: {exc}")
