"""opensnoop: which processes open which files (the syscalls:sys_enter_openat tracepoint).

Prints one line per openat() call as it comes from the ring buffer, then the
number of calls per process from a hash map. ``-p PID`` sets the probe's
``target_pid`` (a ``const volatile`` global, in ``skel.rodata``) before load.

    pyprobe build opensnoop.bpf.c --skeleton opensnoop_skel.py
    sudo python opensnoop.py --duration 5 [-p PID]
"""

from __future__ import annotations

import argparse
import sys
import time

from opensnoop_skel import OpensnoopSkeleton


def main() -> None:
    parser = argparse.ArgumentParser(description="Trace openat() calls: pid, command, path; then counts per pid.")
    parser.add_argument("-p", "--pid", type=int, default=0, help="trace this process only (default: all)")
    parser.add_argument("--duration", type=float, default=5.0, help="seconds to trace (default: %(default)s)")
    args = parser.parse_args()

    with OpensnoopSkeleton().open() as skel:
        skel.rodata.target_pid = args.pid  # before load: the verifier sees the constant
        skel.load()
        skel.attach()  # SEC("tracepoint/syscalls/sys_enter_openat") names its target
        print(f"Tracing openat() for {args.duration:g} s", flush=True)
        print(f"{'PID':>7} {'UID':>5} {'FLAGS':>7} {'COMM':<16} PATH")
        deadline = time.monotonic() + args.duration
        with skel.maps.events.reader() as reader:
            while (left := deadline - time.monotonic()) > 0:
                for e in reader.read_batch(timeout=min(left, 0.1)):
                    comm, path = e.comm.decode(errors="replace"), e.path.decode(errors="replace")
                    print(f"{e.pid:>7} {e.uid:>5} {e.flags:>07o} {comm:<16} {path}")

        print("\nopenat() calls per process:")
        for pid, calls in sorted(skel.maps.counts.items()):
            print(f"{pid:>7} {calls}")


if __name__ == "__main__":
    try:
        main()
    except OSError as exc:  # pyprobe's errors (AttachError, LoadError, ...) are OSErrors with a clear message
        sys.exit(f"opensnoop: {exc}")
