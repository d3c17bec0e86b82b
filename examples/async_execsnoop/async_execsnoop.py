"""async_execsnoop: exec() events consumed by an asyncio task.

``reader.aevents()`` is an async iterator over the ring buffer: the event
loop watches the reader's epoll fd (``reader.fileno()``) and no thread is
started. A second task prints a progress line every second on the same loop
while the consumer waits, to show that the wait does not block it.

    pyprobe build async_execsnoop.bpf.c --skeleton async_execsnoop_skel.py
    sudo python async_execsnoop.py --duration 10 [--count N] [--ppid PID]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys

from async_execsnoop_skel import AsyncExecsnoopSkeleton


async def trace(skel: AsyncExecsnoopSkeleton, count: int | None, duration: float) -> int:
    """Prints exec events until ``count`` came or ``duration`` seconds passed; returns how many came."""
    seen = 0

    async def consume() -> None:
        nonlocal seen
        with skel.maps.events.reader() as reader:
            async for e in reader.aevents():
                seen += 1
                comm, filename = e.comm.decode(errors="replace"), e.filename.decode(errors="replace")
                print(f"{e.pid:>7} {e.ppid:>7} {comm:<16} {filename}")
                if seen == count:
                    return

    async def progress() -> None:
        while True:
            await asyncio.sleep(1.0)
            print(f"[{seen} exec() so far]", flush=True)

    ticker = asyncio.create_task(progress())
    try:
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(consume(), duration)
    finally:
        ticker.cancel()
    return seen


def main() -> None:
    parser = argparse.ArgumentParser(description="Trace exec() with an asyncio consumer.")
    parser.add_argument("--duration", type=float, default=10.0, help="seconds to trace (default: %(default)s)")
    parser.add_argument("--count", type=int, help="stop after this many events")
    parser.add_argument("--ppid", type=int, default=0, help="only children of this process")
    args = parser.parse_args()

    with AsyncExecsnoopSkeleton().open() as skel:
        skel.rodata.target_ppid = args.ppid
        skel.attach()  # loads, then attaches from SEC("tracepoint/sched/sched_process_exec")
        print(f"Tracing exec() for {args.duration:g} s", flush=True)
        print(f"{'PID':>7} {'PPID':>7} {'COMM':<16} FILENAME", flush=True)
        seen = asyncio.run(trace(skel, args.count, args.duration))
    print(f"events: {seen}")


if __name__ == "__main__":
    try:
        main()
    except OSError as exc:  # pyprobe's errors (AttachError, LoadError, ...) are OSErrors with a clear message
        sys.exit(f"async_execsnoop: {exc}")
