"""Render SVG flame graphs of 1,000 to 100,000 distinct stacks, against writing the same stacks folded.

The stacks are 3 to 40 frames deep over 2,000 C++-like names, heavy-tailed (a few hot paths, a
long tail of thin ones), 1 to 50 samples each. pyprobe: ``render_svg(stacks)`` (merge, layout,
frames under 0.1 px dropped, at most 20,000 drawn). Baseline: the folded text of the same stacks
(``frame;frame;frame count`` lines, what flamegraph.pl reads), built in the same run. Prints the
best CPU time of ``--repeat`` runs with the spread of the others, the SVG's size and frame count,
and, when Playwright and /usr/bin/chromium are there, the time Chromium takes to open the file.

usage: bench_flamegraph.py [--stacks 1000,10000,100000] [--repeat R]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from _common import ROOT

from pyprobe.profile.flamegraph import render_svg

sys.path.insert(0, str(ROOT / "tests"))
from test_flamegraph import random_stacks  # the test suite's stacks: one generator for both

CHROMIUM = "/usr/bin/chromium"


def folded(stacks: dict[tuple[str, ...], int]) -> str:
    return "".join(f"{';'.join(stack)} {count}\n" for stack, count in stacks.items())


def timed(fn: Callable[[], object], repeat: int) -> tuple[float, float]:
    """(best, worst) CPU seconds of ``repeat`` runs."""
    times = []
    for _ in range(repeat):
        start = time.process_time()
        fn()
        times.append(time.process_time() - start)
    return min(times), max(times)


def browser_open_times(paths: list[Path]) -> list[float] | None:
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        return None
    if not os.access(CHROMIUM, os.X_OK):
        return None
    args = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update"]
    out = []
    with tempfile.TemporaryDirectory() as profile, sync_playwright() as pw:
        context = pw.chromium.launch_persistent_context(
            profile, executable_path=CHROMIUM, headless=True, args=[*args, "--disable-sync", "--no-first-run"]
        )
        page = context.new_page()
        for path in paths:
            best = float("inf")
            for _ in range(3):
                start = time.perf_counter()
                page.goto(path.as_uri(), wait_until="load")
                page.evaluate("document.querySelectorAll('g.f').length")
                best = min(best, time.perf_counter() - start)
            out.append(best)
        context.close()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stacks", default="1000,10000,100000")
    parser.add_argument("--repeat", type=int, default=5)
    opts = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        paths = []
        for count in (int(n) for n in opts.stacks.split(",")):
            stacks = random_stacks(count)
            svg = render_svg(stacks)
            best, worst = timed(lambda: render_svg(stacks), opts.repeat)  # noqa: B023
            base, _ = timed(lambda: folded(stacks), opts.repeat)  # noqa: B023
            path = Path(tmp) / f"{count}.svg"
            path.write_text(svg, encoding="utf-8")
            paths.append(path)
            rows.append((count, svg.count('<g class="f '), len(svg.encode()), best, worst, base))
        opened = browser_open_times(paths)
    header = ("stacks", "frames", "SVG bytes", "render ms", "spread", "folded ms", "ratio")
    print(" ".join(f"{h:>{w}}" for h, w in zip(header, (8, 7, 10, 10, 7, 10, 6), strict=True)))
    for i, (count, frames, size, best, worst, base) in enumerate(rows):
        line = (
            f"{count:>8,} {frames:>7,} {size:>10,} {best * 1e3:>10.1f} {100 * (worst - best) / best:>6.0f}% "
            f"{base * 1e3:>10.1f} {best / base:>6.1f}"
        )
        if opened is not None:
            line += f"   Chromium opens it in {opened[i] * 1e3:.0f} ms"
        print(line)


if __name__ == "__main__":
    main()
