"""``opencount``: which processes call openat(), how often, and the last path each opened."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from dataclasses import asdict

import pyprobe

from opencount.counter import count_opens

__all__ = ["main"]

EXIT_USAGE = 2
EXIT_UNSUPPORTED = 69
EXIT_PERMISSION = 77


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="opencount", description="Count openat() calls per process.")
    parser.add_argument("-d", "--duration", type=float, default=5.0, metavar="S", help="count for S seconds (5)")
    parser.add_argument("-p", "--pid", type=int, default=0, help="count only this process")
    parser.add_argument("-n", "--top", type=int, default=20, metavar="N", help="show the N busiest processes (20)")
    parser.add_argument("--json", action="store_true", help="print a JSON document")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Runs the command; returns its exit code (0, 2 bad usage, 69 refused by the kernel, 77 no privilege)."""
    args = _parser().parse_args(argv)
    if args.duration <= 0 or args.top <= 0 or args.pid < 0:
        print("opencount: --duration and --top must be positive, --pid not negative", file=sys.stderr)
        return EXIT_USAGE

    def attached() -> None:
        print(f"opencount: counting openat() for {args.duration:g} s", file=sys.stderr, flush=True)

    try:
        counts, dropped = count_opens(args.duration, pid=args.pid, on_attached=attached)
    except pyprobe.BpfPermissionError as exc:
        print(f"opencount: {exc}; run as root or grant CAP_BPF and CAP_PERFMON", file=sys.stderr)
        return EXIT_PERMISSION
    except (pyprobe.LoadError, pyprobe.AttachError) as exc:
        print(f"opencount: the kernel refused the probe: {exc}", file=sys.stderr)
        return EXIT_UNSUPPORTED
    except KeyboardInterrupt:
        return 130
    shown = counts[: args.top]
    if args.json:
        doc = {"duration": args.duration, "dropped": dropped, "processes": [asdict(c) for c in shown]}
        print(json.dumps(doc, indent=1))
        return 0
    print(f"{'PID':>7} {'COMM':<16} {'OPENS':>8}  LAST PATH")
    for c in shown:
        print(f"{c.pid:>7} {c.comm:<16} {c.count:>8}  {c.last_path}")
    if dropped:
        print(f"opencount: {dropped} processes not counted (map full)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
