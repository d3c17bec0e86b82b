"""``pyprobe build SRC.bpf.c [-o OUT.bpf.o] [--skeleton OUT.py]``: compile a probe with clang.

Builds against the headers and vmlinux.h that ship inside the package (see
:mod:`pyprobe.compiler`); clang's warnings and errors are printed as clang
printed them. Exit codes: 0 built; clang's own exit status when it rejects
the source; 2 bad usage (no such source or output directory, unknown
--arch); 69 clang is not installed (the message names the package).
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

__all__ = ["EXIT_NO_COMPILER", "add_parser", "run"]

EXIT_NO_COMPILER = 69
"""No clang: the service the command needs is unavailable (sysexits' EX_UNAVAILABLE)."""


def add_parser(sub: Any) -> None:
    p = sub.add_parser(
        "build",
        help="compile a BPF C probe against pyprobe's headers and vmlinux.h",
        description="Compile SRC.bpf.c with clang for the BPF target (-g -O2, DWARF stripped, BTF kept) against "
        "the headers shipped with pyprobe; optionally write its typed skeleton module.",
    )
    p.add_argument("source", metavar="SRC.bpf.c")
    p.add_argument("-o", "--output", metavar="OUT.bpf.o", help="the object (default: SRC with .c replaced by .o)")
    p.add_argument("--skeleton", metavar="OUT.py", help="also write the typed skeleton module here")
    p.add_argument("-I", dest="include_dirs", action="append", default=[], metavar="DIR", help="add an include dir")
    p.add_argument("-D", dest="defines", action="append", default=[], metavar="X[=V]", help="define a macro")
    p.add_argument("--arch", choices=["x86", "arm64"], help="target kernel architecture (default: this machine's)")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    import logging

    from pyprobe.compiler import ClangNotFoundError, CompileError, compile_probe, log

    handler = logging.StreamHandler(sys.stderr)  # clang's warnings, as clang printed them
    handler.setFormatter(logging.Formatter("%(message)s"))
    log.addHandler(handler)
    try:
        out = compile_probe(
            args.source,
            args.output,
            arch=args.arch,
            include_dirs=args.include_dirs,
            defines=args.defines,
            skeleton=args.skeleton,
        )
    except ClangNotFoundError as exc:
        print(f"pyprobe: {exc}", file=sys.stderr)
        return EXIT_NO_COMPILER
    except CompileError as exc:
        sys.stderr.write(exc.output)
        if exc.hint:
            print(f"pyprobe: {exc.hint}", file=sys.stderr)
        return exc.returncode if exc.returncode > 0 else 128 - exc.returncode
    finally:
        log.removeHandler(handler)
    print(f"pyprobe: wrote {out}" + (f" and {args.skeleton}" if args.skeleton else ""), file=sys.stderr)
    return 0
