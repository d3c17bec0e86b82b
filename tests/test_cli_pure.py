"""Pieces of the command that need no kernel: histograms, trace_pipe lines, exit codes."""

from __future__ import annotations

import subprocess
import sys

from pyprobe.cli import _hist
from pyprobe.cli.main import EXIT_USAGE, main


def test_percentiles_are_slot_upper_bounds() -> None:
    slots = [0] * 64
    slots[10] = 90  # 1024..2047 ns
    slots[20] = 10  # ~1 ms
    assert _hist.percentile(slots, 50) == 2047
    assert _hist.percentile(slots, 90) == 2047
    assert _hist.percentile(slots, 99) == (1 << 21) - 1
    assert _hist.percentile([0] * 64, 50) == 0


def test_render_trims_to_used_slots_and_scales_bars() -> None:
    slots = [0] * 64
    slots[3], slots[5] = 4, 2
    text = _hist.render(slots, width=8)
    rows = text.splitlines()
    assert len(rows) == 1 + 3  # header and slots 3..5
    assert rows[1].split() == ["8", "->", "15", ":", "4", "|********|"]
    assert rows[3].endswith("|****    |")
    assert _hist.render([0] * 64) == "(no calls)\n"
    assert _hist.summary(slots, 6, 60).startswith("count 6, avg 10ns, p50 <= 15ns")


def test_commands_import_only_what_they_run() -> None:
    code = (
        "import sys; from pyprobe.cli.main import build_parser; build_parser('printk'); "
        "print(sorted(m for m in sys.modules if m.startswith('pyprobe.cli.')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    loaded = eval(out.stdout)
    assert "pyprobe.cli.printk" in loaded
    assert not {"pyprobe.cli.trace", "pyprobe.cli.funclatency", "pyprobe.cli.gen", "pyprobe.cli.listing"} & set(loaded)


def test_help_lists_every_command() -> None:
    out = subprocess.run([sys.executable, "-m", "pyprobe", "--help"], capture_output=True, text=True, check=False)
    assert out.returncode == 0
    for command in ("demo", "trace", "funclatency", "run", "list", "gen", "printk"):
        assert command in out.stdout


def test_bad_probe_is_a_usage_error(capsys: object) -> None:
    assert main(["trace", "no-colon-here"]) == EXIT_USAGE


def test_unknown_binary_is_a_usage_error_with_one_line() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "pyprobe", "trace", "/nonexistent/app:main"], capture_output=True, text=True, check=False
    )
    assert out.returncode == EXIT_USAGE
    assert out.stderr.strip().count("\n") == 0
    assert "/nonexistent/app" in out.stderr


def test_argparse_errors_exit_2() -> None:
    out = subprocess.run([sys.executable, "-m", "pyprobe", "trace"], capture_output=True, text=True, check=False)
    assert out.returncode == 2 and "PROBE" in out.stderr


_TRACE_FORMS = [
    ["trace", "/bin/ls:main"],
    ["trace", "/bin/ls:main", "r:/bin/ls:exit", "-p", "42"],
    ["trace", "--json", "-p", "7", "/bin/ls:long f(int a)", "--duration", "1.5"],
    ["trace", "/bin/ls:f", "--pid", "1_000", "--command", "sleep 1", "--json", "--duration", "inf"],
    ["trace", "-c", "", "x:f", "-p", "3", "-p", "4"],
]
_ARGPARSE_FORMS = [
    ["trace"], ["trace", "-h"], ["trace", "--help"], ["trace", "-p", "1"], ["trace", "a:f", "-p"],
    ["trace", "a:f", "-p", "-1"], ["trace", "a:f", "-p", "x"], ["trace", "a:f", "--pid=3"], ["trace", "a:f", "-p3"],
    ["trace", "a:f", "--pi", "3"], ["trace", "a:f", "--js"], ["trace", "a:f", "--duration", "-1"],
    ["trace", "a:f", "--", "b:g"], ["trace", "a:f", "--json", "b:g"], ["trace", "a:f", "-x"],
    ["trace", "a:f", "-c", "-v"],
    ["funclatency", "a:f"], ["list", "symbols", "a"],
]  # fmt: skip


def test_the_common_trace_forms_read_as_argparse_reads_them() -> None:
    from pyprobe.cli.main import build_parser, quick_trace_args

    fields = ("probes", "pid", "command", "json", "duration")
    for words in _TRACE_FORMS:
        quick = quick_trace_args(words)
        full = build_parser("trace").parse_args(words)
        assert quick is not None, words
        assert {f: getattr(quick, f) for f in fields} == {f: getattr(full, f) for f in fields}, words
        assert quick.run is full.run
    for words in _ARGPARSE_FORMS:  # help, errors and the rarer spellings: argparse reads and reports them
        assert quick_trace_args(words) is None, words


def test_trace_starts_without_argparse_or_logging() -> None:
    code = (
        "import sys; from pyprobe.cli.main import main; code = main(['trace', '/nonexistent/app:main']); "
        "print(code, sorted(m for m in ('argparse', 'logging', 'shutil', 'gettext') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split(" ", 1) == [str(EXIT_USAGE), "[]\n"], out
