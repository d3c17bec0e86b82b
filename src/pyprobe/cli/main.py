"""Entry point of the ``pyprobe`` command: argument parsing and exit codes."""

from __future__ import annotations

import argparse
import errno
import sys
from collections.abc import Sequence

import pyprobe
from pyprobe.cli import demo

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2
EXIT_PERMISSION = 77
EXIT_UNSUPPORTED = 69


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="pyprobe", description="Load, attach and watch eBPF probes.")
    parser.add_argument("--version", action="version", version=f"pyprobe {pyprobe.__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    demo.add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        args = parser.parse_args(["demo", *(argv or sys.argv[1:])])
    try:
        return int(args.run(args))
    except KeyboardInterrupt:
        return 130
    except pyprobe.BpfPermissionError as exc:
        print(f"pyprobe: {exc}", file=sys.stderr)
        return EXIT_PERMISSION
    except pyprobe.UnsupportedError as exc:
        print(f"pyprobe: {exc}", file=sys.stderr)
        return EXIT_UNSUPPORTED
    except pyprobe.BpfError as exc:
        print(f"pyprobe: {exc}", file=sys.stderr)
        if exc.errno == errno.EPERM:
            return EXIT_PERMISSION
        return EXIT_FAILURE
