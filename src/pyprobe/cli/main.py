"""Entry point of the ``pyprobe`` command: argument parsing and exit codes.

Exit codes: 0 success, 1 other failure, 2 bad usage (arguments, PROBE
syntax, unknown binary or function), 69 the kernel refused (load, attach,
missing feature) or clang is not installed (build, cflags), 77 missing
permission, 130 interrupted before starting. ``pyprobe build`` exits with
clang's own status when clang rejects the source.
"""

from __future__ import annotations

from pyprobe.cli import _timeline

_timeline.mark("interpreter started, import pyprobe")  # what follows is the cost of the imports below

import argparse  # noqa: E402
import errno  # noqa: E402
import importlib  # noqa: E402
import sys  # noqa: E402
from collections.abc import Sequence  # noqa: E402

import pyprobe  # noqa: E402
from pyprobe.cli.probespec import ProbeSyntaxError  # noqa: E402

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2
EXIT_UNSUPPORTED = 69
EXIT_PERMISSION = 77

PERMISSION_HINT = "run as root or grant CAP_BPF and CAP_PERFMON"
_BAD_TARGET = (errno.ENOENT, errno.EISDIR, errno.ENOEXEC, errno.ESRCH)


SYMBOL_HINT = "see the functions with `pyprobe list symbols BINARY`"

COMMANDS = {
    "demo": ("demo", "trace the bundled target's functions (the default command)"),
    "trace": ("trace", "print each call of functions: arguments, return value, latency"),
    "funclatency": ("funclatency", "log2 histogram of function latency"),
    "profile": ("profile", "sample on-CPU stacks: flame graph, folded stacks, speedscope, pprof"),
    "run": ("runobj", "load an object, auto-attach, stream ring buffer events and bpf_printk"),
    "list": ("listing", "list symbols, USDT probes, loaded programs or maps"),
    "gen": ("gen", "generate code for an object (a typed skeleton module)"),
    "build": ("build", "compile a BPF C probe against pyprobe's headers and vmlinux.h"),
    "cflags": ("cflags", "print the clang flags for building probes with your own Makefile"),
    "printk": ("printk", "follow bpf_printk output (trace_pipe)"),
    "export": ("export", "serve ebpf_exporter-format configs as Prometheus metrics"),
    "cmake-dir": ("cmakedir", "print the directory of pyprobe's CMake package (for -Dpyprobe_DIR=...)"),
}
"""command -> (module in pyprobe.cli, help). Only the module of the command run is imported."""


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The argument parser; with ``command``, only that command's module is imported (its full options)."""
    parser = argparse.ArgumentParser(prog="pyprobe", description="Load, attach and watch eBPF probes.")
    parser.add_argument("--version", action="version", version=f"pyprobe {pyprobe.__version__}")
    sub = parser.add_subparsers(dest="subcommand", metavar="COMMAND")
    for name, (module, help_text) in COMMANDS.items():
        if command is None or name == command:
            importlib.import_module(f"pyprobe.cli.{module}").add_parser(sub)
        else:
            sub.add_parser(name, help=help_text)
    return parser


def _error(message: object, code: int, hint: str = "") -> int:
    text = str(message)
    if hint and hint not in text:
        text = f"{text}; {hint}"
    print(f"pyprobe: {text}", file=sys.stderr)
    return code


def main(argv: Sequence[str] | None = None) -> int:  # noqa: PLR0911 (one exit code per error kind)
    words = list(sys.argv[1:] if argv is None else argv)
    if not words or (words[0].startswith("-") and words[0] not in ("-h", "--help", "--version")):
        words = ["demo", *words]  # the demo is the default command, with its own options
    parser = build_parser(words[0] if words[0] in COMMANDS else None)
    args = parser.parse_args(words)
    _timeline.mark(f"imports and arguments ({words[0]})")
    try:
        return int(args.run(args))
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        sys.stderr.close()  # the reader went away (| head): not an error
        return EXIT_OK
    except (ProbeSyntaxError, ValueError, FileNotFoundError, ProcessLookupError) as exc:
        return _error(exc, EXIT_USAGE)
    except (pyprobe.SymbolNotFoundError, pyprobe.AmbiguousSymbolError) as exc:
        return _error(exc, EXIT_USAGE, "" if "pyprobe list" in str(exc) else SYMBOL_HINT)
    except pyprobe.BpfPermissionError as exc:
        return _error(exc, EXIT_PERMISSION, PERMISSION_HINT)
    except pyprobe.UnsupportedError as exc:
        return _error(exc, EXIT_UNSUPPORTED)
    except pyprobe.BpfError as exc:
        if exc.errno in (errno.EPERM, errno.EACCES):
            return _error(exc, EXIT_PERMISSION, PERMISSION_HINT)
        if isinstance(exc, pyprobe.AttachError) and exc.errno in _BAD_TARGET:
            return _error(exc, EXIT_USAGE)  # no such binary, process or probe: what was asked for is wrong
        if isinstance(exc, (pyprobe.LoadError, pyprobe.AttachError)):
            return _error(exc, EXIT_UNSUPPORTED, "the kernel refused it")
        return _error(exc, EXIT_FAILURE)
    except PermissionError as exc:
        return _error(exc, EXIT_PERMISSION, PERMISSION_HINT)
