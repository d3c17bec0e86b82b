"""uprobe and uretprobe on a C++ method, attached by its demangled name.

Traces ``long Account::deposit(long)`` in the example's ``account`` program:
the entry probe sees ``this`` and the argument, the return probe the new
balance; each completed call prints one line. pyprobe finds the method by its
demangled name (``Account::deposit(long)``), its mangled symbol
(``_ZN7Account7depositEl``) or, when unambiguous, a bare ``deposit``.

    pyprobe build cpp_method.bpf.c --skeleton cpp_method_skel.py
    sudo python cpp_method.py ACCOUNT -c "ACCOUNT 5 0"     # ACCOUNT: build/py/examples/account
"""

from __future__ import annotations

import argparse
import shlex
import subprocess
import sys
import time

from cpp_method_skel import CppMethodSkeleton


def main() -> None:
    parser = argparse.ArgumentParser(description="Trace calls of a C++ method: this, argument, return value.")
    parser.add_argument("binary", help="the program (or library) that holds the method")
    parser.add_argument("--method", default="Account::deposit(long)", help="demangled name (default: %(default)s)")
    parser.add_argument("-p", "--pid", type=int, default=-1, help="trace this process only (default: all)")
    parser.add_argument("-c", "--command", help="run this command once attached; stop when it exits")
    parser.add_argument("--duration", type=float, default=10.0, help="seconds to trace without -c")
    args = parser.parse_args()

    with CppMethodSkeleton().load() as skel:
        skel.progs.deposit_entry.attach_uprobe(args.binary, args.method, pid=args.pid)
        skel.progs.deposit_return.attach_uretprobe(args.binary, args.method, pid=args.pid)
        print(f"Tracing {args.method} in {args.binary}", flush=True)
        child = subprocess.Popen(shlex.split(args.command)) if args.command else None
        deadline = time.monotonic() + args.duration

        def running() -> bool:
            return child.poll() is None if child else time.monotonic() < deadline

        with skel.maps.events.reader() as reader:
            while True:
                done = not running()  # read what is left once more after the end
                for e in reader.read_batch(timeout=0.1):
                    print(
                        f"pid {e.pid} tid {e.tid}: this={e.self:#x} deposit({e.amount}) = {e.result}"
                        f"  [{e.latency_ns / 1000:.1f} us]"
                    )
                if done:
                    break


if __name__ == "__main__":
    try:
        main()
    except OSError as exc:  # pyprobe's errors (AttachError, LoadError, ...) are OSErrors with a clear message
        sys.exit(f"cpp_method: {exc}")
