"""stack_args: all eight arguments of a user function, the 7th and 8th read from the stack.

Traces ``long args8(long a, ..., long h)`` in the test program ``args8``
(any function of up to eight integer or pointer arguments works): one line
per call with the eight values.

    pyprobe build stack_args.bpf.c --skeleton stack_args_skel.py
    sudo python stack_args.py ARGS8 -c "ARGS8 3 0"     # ARGS8: build/py/tests/targets/args8
"""

from __future__ import annotations

import argparse
import shlex
import subprocess
import sys
import time

from stack_args_skel import StackArgsSkeleton


def main() -> None:
    parser = argparse.ArgumentParser(description="Print the eight arguments of each call of a user function.")
    parser.add_argument("binary", help="the program (or library) that holds the function")
    parser.add_argument("function", nargs="?", default="args8", help="function (default: %(default)s)")
    parser.add_argument("-p", "--pid", type=int, default=-1, help="trace this process only (default: all)")
    parser.add_argument("-c", "--command", help="run this command once attached; stop when it exits")
    parser.add_argument("--duration", type=float, default=10.0, help="seconds to trace without -c")
    args = parser.parse_args()

    with StackArgsSkeleton().load() as skel:
        skel.progs.func_entry.attach_uprobe(args.binary, args.function, pid=args.pid)
        print(f"Tracing {args.function} in {args.binary}", flush=True)
        child = subprocess.Popen(shlex.split(args.command)) if args.command else None
        deadline = time.monotonic() + args.duration

        def running() -> bool:
            return child.poll() is None if child else time.monotonic() < deadline

        with skel.maps.events.reader() as reader:
            while True:
                done = not running()  # read what is left once more after the end
                for e in reader.read_batch(timeout=0.1):
                    print(f"pid {e.pid}: {args.function}({', '.join(str(a) for a in e.args)})")
                if done:
                    break


if __name__ == "__main__":
    try:
        main()
    except OSError as exc:  # pyprobe's errors (AttachError, LoadError, ...) are OSErrors with a clear message
        sys.exit(f"stack_args: {exc}")
