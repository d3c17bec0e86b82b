"""``pyprobe profile``: a sampling CPU profiler (on-CPU stacks of every CPU through perf events and BPF).

Writes the profile in the format the ``-o`` file's suffix names (``.folded``,
``.svg``, ``.json`` for speedscope, ``.pb.gz`` for pprof); without ``-o``,
prints the hottest functions (self and total samples). Ctrl-C, SIGTERM or
``--duration`` end sampling with the output written.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from typing import Any

from pyprobe.cli._session import Status, ending_signals

__all__ = ["add_parser", "parse_pids", "render_top", "run"]


def parse_pids(text: str) -> list[int]:
    """``1234`` or ``1234,5678`` -> pids; argparse.ArgumentTypeError naming a bad one."""
    pids = []
    for word in text.split(","):
        part = word.strip()
        if not part.isdigit() or int(part) <= 0:
            raise argparse.ArgumentTypeError(f"not a pid: {part!r}")
        pids.append(int(part))
    return pids


def add_parser(sub: Any) -> None:
    p = sub.add_parser(
        "profile", help="sample on-CPU stacks: flame graph, folded stacks, speedscope, pprof",
        description="Sample on-CPU stacks of every CPU at HZ and write a profile (the suffix of -o picks the "
        "format: .folded, .svg, .json (speedscope), .pb.gz (pprof)), or print the hottest functions. "
        "Ctrl-C ends sampling with the output written.",
    )  # fmt: skip
    who = p.add_mutually_exclusive_group()
    who.add_argument("-p", "--pid", type=parse_pids, metavar="PID[,PID...]", help="profile only these processes")
    who.add_argument("-c", "--command", metavar="CMD", help="start CMD and profile it (ends when it exits)")
    who.add_argument("-a", "--all", action="store_true", help="profile every process (the default)")
    p.add_argument("-F", "--frequency", type=int, default=99, metavar="HZ", help="samples per second per CPU "
                   "(default 99)")  # fmt: skip
    p.add_argument("--duration", type=float, metavar="S", help="stop after S seconds")
    stacks = p.add_mutually_exclusive_group()
    stacks.add_argument("--user-only", action="store_true", help="user stacks only")
    stacks.add_argument("--kernel-only", action="store_true", help="kernel stacks only")
    p.add_argument("--call-graph", choices=("fp", "dwarf"), default="fp",
                   help="walk user stacks by frame pointer (fp, the default) or with DWARF CFI (dwarf: for "
                   "binaries built without frame pointers)")  # fmt: skip
    p.add_argument("--interval", type=float, default=1.0, metavar="S",
                   help="drain and symbolize every S seconds (default 1)")  # fmt: skip
    p.add_argument("-o", "--output", metavar="FILE", help="write the profile to FILE (.folded .svg .json .pb.gz)")
    p.add_argument("--top", type=int, default=20, metavar="N", help="rows of the table without -o (default 20)")
    p.add_argument("--include-idle", action="store_true", help="count the idle task too (with --all)")
    p.set_defaults(run=run)


def _check_output(path: str) -> None:
    import importlib.util

    from pyprobe.profile._model import WRITERS, suffix_of

    suffix = suffix_of(path)
    if suffix not in WRITERS:
        raise ValueError(f"unknown profile format for -o {path!r}: the file name must end in one of "
                         f"{', '.join(WRITERS)}")  # fmt: skip
    if suffix == ".svg" and importlib.util.find_spec("pyprobe.profile.flamegraph") is None:
        raise ValueError(f"-o {path!r}: the SVG flame graph writer is not part of this build; use .folded")
    if suffix == ".pb.gz" and importlib.util.find_spec("google.protobuf") is None:
        raise ValueError(f"-o {path!r}: writing pprof needs the protobuf package (pip install 'pyprobe[profile]')")
    parent = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(parent):
        raise FileNotFoundError(f"-o {path!r}: no such directory {parent}")


def render_top(rows: list[Any], total: int) -> str:
    """The table of :meth:`Profile.top` rows: self and total samples with their shares, function, module."""
    out = [f"{'SELF':>8} {'SELF%':>6} {'TOTAL':>8} {'TOTAL%':>6}  FUNCTION (MODULE)"]
    for r in rows:
        module = os.path.basename(r.module) if r.module else "?"
        out.append(f"{r.self:>8} {100 * r.self / max(total, 1):>5.1f}% {r.total:>8} "
                   f"{100 * r.total / max(total, 1):>5.1f}%  {r.name} ({module})")  # fmt: skip
    return "\n".join(out) + "\n"


def run(args: argparse.Namespace) -> int:
    with ending_signals():
        return _run(args)


def _run(args: argparse.Namespace) -> int:
    from pyprobe.profile import Profiler

    if args.output:
        _check_output(args.output)
    if args.top < 1:
        raise ValueError(f"--top must be at least 1, not {args.top}")
    profiler = Profiler(
        pids=args.pid, command=args.command, frequency=args.frequency, duration=args.duration,
        user=not args.kernel_only, kernel=not args.user_only, call_graph=args.call_graph, interval=args.interval,
        include_idle=args.include_idle,
    )  # fmt: skip
    status = Status()
    why = "interrupted"
    try:
        profiler.start()
        target = (f"pid {','.join(map(str, args.pid))}" if args.pid else
                  f"{args.command!r} (pid {profiler.child_pid})" if args.command else "every process")  # fmt: skip
        status.done(f"Sampling {target} at {profiler.frequency} Hz... Hit Ctrl-C to end.")
        while (reason := profiler.finished()) is None:
            time.sleep(0.1)
            status.update(f"{profiler.elapsed:5.1f} s, {profiler.samples} samples")
        why = reason
    except KeyboardInterrupt as exc:  # Ctrl-C, or SIGTERM / SIGHUP through ending_signals
        name = exc.args[0] if exc.args and isinstance(exc.args[0], str) else "SIGINT"
        why = "interrupted" if name == "SIGINT" else f"ended by {name}"
    finally:
        stopped = time.monotonic()
        profile = profiler.stop() if profiler.profile is None and profiler.elapsed else None
    if profile is None:
        return 130
    lost = f", {profile.lost} lost" if profile.lost else ""
    if args.output:
        profile.write(args.output)
        took = time.monotonic() - stopped
        status.done(f"{profile.total} samples{lost} in {profile.duration:.1f} s ({why}); wrote {args.output} "
                    f"in {took:.2f} s")  # fmt: skip
    else:
        status.done(f"{profile.total} samples{lost} in {profile.duration:.1f} s ({why})")
        sys.stdout.write(render_top(profile.top(args.top), profile.total))
    return 0
