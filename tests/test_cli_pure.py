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
