#!/usr/bin/env python3
"""Regenerates docs/img/flamegraph.png: the flame graph of the bundled target, as Chromium shows it.

Profiles tests/targets/proftarget.cc (proftarget_fp, from the build) with ``pyprobe profile``
(root), or takes an SVG written before (``--svg``), opens it in Debian's chromium through
Playwright (headless, no browser download) and saves a PNG screenshot of the graph.

usage: sudo .venv/bin/python tools/flamegraph_png.py [--svg FILE] [--seconds S] [-F HZ] [--search RE] [-o PNG]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BUILD = Path(os.environ.get("PYPROBE_BUILD_DIR", ROOT / "build" / "py"))
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def profile_target(svg: Path, seconds: float, frequency: int) -> None:
    """Profiles the bundled target for ``seconds`` at ``frequency`` Hz with ``pyprobe profile -o svg``."""
    target = BUILD / "tests" / "targets" / "proftarget_fp"
    if not target.exists():
        raise SystemExit(f"{target} is missing: run ./dev build first")
    command = [sys.executable, "-m", "pyprobe", "profile", "-F", str(frequency), "-o", str(svg)]
    subprocess.run([*command, "-c", f"{target} {seconds:g}"], check=True, stdout=subprocess.DEVNULL)


def screenshot(svg: Path, png: Path, *, search: str = "") -> None:
    """Saves a PNG of the flame graph in ``svg`` as headless Chromium renders it.

    ``search`` (a regular expression) is typed into the graph's search box first, to show the
    highlighted frames and the matched share in the picture.
    """
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory(prefix="pyprobe-flame-") as profile, sync_playwright() as pw:
        context = pw.chromium.launch_persistent_context(
            profile,
            executable_path=CHROMIUM,
            headless=True,
            args=CHROMIUM_ARGS,
            viewport={"width": 1200, "height": 800},
        )
        try:
            page = context.new_page()
            page.goto(svg.resolve().as_uri())
            if search:
                page.locator("input.search").fill(search)
            page.mouse.move(0, 0)
            page.locator("svg").screenshot(path=str(png), animations="disabled")
        finally:
            context.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--svg", type=Path, help="an SVG flame graph to show (default: profile the bundled target)")
    parser.add_argument("--seconds", type=float, default=5.0, help="how long the target runs (default 5)")
    parser.add_argument("-F", "--frequency", type=int, default=999, help="samples per second (default 999)")
    parser.add_argument("--search", default="", help="a regular expression to highlight in the picture")
    parser.add_argument("-o", "--output", type=Path, default=ROOT / "docs" / "img" / "flamegraph.png")
    opts = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        svg = opts.svg
        if svg is None:
            svg = Path(tmp) / "flamegraph.svg"
            profile_target(svg, opts.seconds, opts.frequency)
        opts.output.parent.mkdir(parents=True, exist_ok=True)
        screenshot(svg, opts.output, search=opts.search)
    print(f"{opts.output}: {opts.output.stat().st_size:,} bytes")


if __name__ == "__main__":
    main()
