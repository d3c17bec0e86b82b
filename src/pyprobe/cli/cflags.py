"""``pyprobe cflags [--arch A]``: the clang flags that build a probe against pyprobe's headers.

For a Makefile of one's own, as ``pkg-config --cflags`` would print them:
``-target bpf``, ``-D__TARGET_ARCH_<arch>``, the include dirs (vmlinux.h of
the arch, pyprobe's headers, the host's system dirs and pyprobe's fallback
headers); add ``-g -O2`` and strip the DWARF with ``llvm-strip -g``.
Exit codes: 0, 2 unknown arch, 69 clang is not installed (it is asked for
the host's system include dirs).
"""

from __future__ import annotations

import argparse
import shlex
import sys
from typing import Any

__all__ = ["add_parser", "run"]


def add_parser(sub: Any) -> None:
    p = sub.add_parser("cflags", help="print the clang flags for building probes with your own Makefile")
    p.add_argument("--arch", choices=["x86", "arm64"], help="target kernel architecture (default: this machine's)")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from pyprobe.cli.build import EXIT_NO_COMPILER
    from pyprobe.compiler import ClangNotFoundError, cflags

    try:
        flags = cflags(args.arch)
    except ClangNotFoundError as exc:
        print(f"pyprobe: {exc}", file=sys.stderr)
        return EXIT_NO_COMPILER
    print(shlex.join(flags))
    return 0
