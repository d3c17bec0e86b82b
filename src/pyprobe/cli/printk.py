"""``pyprobe printk``: follow trace_pipe (bpf_printk output) until Ctrl-C."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

__all__ = ["add_parser", "run"]


def add_parser(sub: Any) -> None:
    p = sub.add_parser("printk", help="follow bpf_printk output (trace_pipe)")
    p.add_argument("--json", action="store_true", help="one JSON object per line")
    p.add_argument("--timeout", type=float, metavar="S", help="stop after S seconds without a line")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    count = 0
    try:
        from pyprobe.tracefs import trace_pipe

        for line in trace_pipe(timeout=args.timeout):
            count += 1
            if args.json:
                doc = {"task": line.task, "pid": line.pid, "cpu": line.cpu, "time": line.timestamp,
                       "message": line.message}  # fmt: skip
                sys.stdout.write(json.dumps(doc) + "\n")
            else:
                sys.stdout.write(f"{line.timestamp:14.6f} {line.task:<16.16} {line.pid:>7} [{line.cpu:03d}] "
                                 f"{line.message}\n")  # fmt: skip
            sys.stdout.flush()
    except KeyboardInterrupt:
        pass
    print(f"\n{count} lines", file=sys.stderr)
    return 0
