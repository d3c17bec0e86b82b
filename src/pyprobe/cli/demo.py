"""``pyprobe demo``: start the bundled C++ target and trace utest_add and utest_sub live.

It uses the same precompiled functrace probe as ``pyprobe trace``: each call
prints with its arguments and return value, and the summary checks that every
return value was a + b (utest_add) or a - b (utest_sub).
"""

from __future__ import annotations

import argparse
import operator
import sys
import time
from collections.abc import Callable
from typing import Any

from pyprobe._data import target_path
from pyprobe.cli._session import Session, Status, ending_signals
from pyprobe.cli.probespec import parse_probe
from pyprobe.cli.trace import Call, Printer, Tracer, trace_loop

__all__ = ["add_parser", "run"]

OPS: dict[str, tuple[str, Callable[[int, int], int]]] = {
    "utest_add": ("+", operator.add),
    "utest_sub": ("-", operator.sub),
}


def add_parser(sub: Any) -> None:
    p = sub.add_parser("demo", help="trace the bundled target's functions (the default command)")
    p.add_argument("--duration", type=float, default=3.0, help="seconds to trace (default 3)")
    p.add_argument("--interval", type=float, default=0.1, help="seconds between the target's calls (default 0.1)")
    p.add_argument("--json", action="store_true", help="one JSON object per line")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    with ending_signals():
        return _run(args)


def _run(args: argparse.Namespace) -> int:
    target = target_path("utest")
    session = Session(None, f"{target} -1 {int(args.interval * 1e6)}", args.duration)
    status = Status()
    checked = {name: [0, 0] for name in OPS}  # calls, right results

    def on_calls(calls: list[Call]) -> None:
        for c in calls:
            op = OPS.get(c.function.display)
            if op is not None and c.has_args and c.has_return:
                a, b = (int(str(v)) for _, v in c.arg_values(json_values=True))
                checked[c.function.display][0] += 1
                checked[c.function.display][1] += int(c.ret_value(json_values=True) == op[1](a, b))
        printer.write(calls)

    try:
        specs = [parse_probe(f"{target}:int {name}(int a, int b)") for name in OPS]
        with Tracer(specs, pid=session.attach_pid, status=status) as tracer:
            printer = Printer(sys.stdout, as_json=args.json, t0_ns=time.monotonic_ns())
            status.done(f"pyprobe demo: tracing utest_add and utest_sub in {target} (pid {session.pid}) "
                        f"for {args.duration:g} s; Ctrl-C to end")  # fmt: skip
            printer.header()
            session.start()
            trace_loop(tracer, session, on_calls)
            lost = tracer.lost()
        lines = [f"{tracer.seen} calls traced, {lost} lost"]
        for name, (calls, right) in checked.items():
            lines.append(f"  {name}: {calls} calls, {right} returned a {OPS[name][0]} b")
        print("\n" + "\n".join(lines), file=sys.stderr if args.json else sys.stdout)
    finally:
        session.close()
    return 0 if all(calls == right for calls, right in checked.values()) else 1
