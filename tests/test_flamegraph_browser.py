"""The SVG flame graph in a real browser: zoom, reset, search, tooltips, hostile names, a real profile.

Playwright's Python package drives Debian's chromium (/usr/bin/chromium, no browser download),
headless, with a fresh profile and without background network traffic; the graph is opened from
a file and must not request anything else.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from conftest import REQUIRE_BPF, target
from pyprobe.profile.flamegraph import write_svg
from test_flamegraph import random_stacks

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
SPAN = 1180  # the default width (1200) less the margins


def _missing(what: str) -> None:
    if REQUIRE_BPF:
        pytest.fail(f"{what} (the test extras and .ci/apt-setup.sh install it)", pytrace=False)
    pytest.skip(what)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _missing("Playwright is not installed (pip install playwright)")
    if not os.access(CHROMIUM, os.X_OK):
        _missing(f"{CHROMIUM} is missing (apt-get install chromium)")
    with tempfile.TemporaryDirectory(prefix="pyprobe-flame-") as profile, sync_playwright() as pw:
        context = pw.chromium.launch_persistent_context(
            profile,
            executable_path=CHROMIUM,
            headless=True,
            args=CHROMIUM_ARGS,
            viewport={"width": 1280, "height": 720},
        )
        context.set_default_timeout(120_000)  # an emulated CPU (tests/vm) is slow to start Chromium
        try:
            yield context
        finally:
            context.close()


class Graph:
    """A flame graph open in a page, with the page's errors and requests recorded."""

    def __init__(self, context: Any, path: Path) -> None:
        self.page = context.new_page()
        self.errors: list[str] = []
        self.requests: list[str] = []
        self.page.on("pageerror", lambda exc: self.errors.append(str(exc)))
        self.page.on("console", lambda msg: msg.type == "error" and self.errors.append(msg.text))
        self.page.on("request", lambda req: self.requests.append(req.url))
        self.page.goto(path.as_uri())
        self.url = path.as_uri()

    def frame(self, name: str) -> Any:
        """The <g> of the frame called ``name`` (its title is "NAME (N samples, P%)")."""
        found = self.page.evaluate(
            """name => Array.from(document.querySelectorAll("g.f title"), t => t.textContent)
                          .flatMap((t, i) => t.slice(0, t.lastIndexOf(" (")) === name ? [i] : [])""",
            name,
        )
        assert len(found) == 1, f"{len(found)} frames called {name}"
        return self.page.locator("g.f").nth(found[0])

    def widest(self, prefix: str) -> Any:
        """The <g> of the widest frame whose name starts with ``prefix``."""
        found = self.page.evaluate(
            """prefix => { let best = -1, width = -1;
                 document.querySelectorAll("g.f").forEach((g, i) => {
                   const w = +g.querySelector("rect").getAttribute("width");
                   if (g.querySelector("title").textContent.startsWith(prefix) && w > width) { best = i; width = w; }
                 });
                 return best; }""",
            prefix,
        )
        if found < 0:
            titles = self.page.locator("g.f title").all_text_contents()
            raise AssertionError(f"no frame called {prefix}... among {len(titles)}: {titles[:12]}")
        return self.page.locator("g.f").nth(found)

    def box(self, frame: str | Any) -> dict[str, Any]:
        """Geometry, classes and visibility of a frame (its name or its <g>), as the browser has it now."""
        g = self.frame(frame) if isinstance(frame, str) else frame
        box: dict[str, Any] = g.evaluate(
            """g => { const r = g.querySelector("rect"), t = g.querySelector("text");
                      return {x: +r.getAttribute("x"), width: +r.getAttribute("width"),
                              visible: g.getBoundingClientRect().width > 0 && getComputedStyle(g).display != "none",
                              classes: g.getAttribute("class"), label: t ? t.textContent : "",
                              fill: getComputedStyle(r).fill, opacity: getComputedStyle(g).opacity}; }"""
        )
        return box

    def text(self, cls: str) -> str:
        return str(self.page.locator(f"text.{cls}").text_content()).strip()

    def close(self) -> None:
        self.page.close()
        assert self.errors == []
        assert self.requests == [self.url], "the graph fetched something"


STACKS = {
    ("prog", "main", "work::run()", "work::Shapes::heavy()"): 300,
    ("prog", "main", "work::run()", "work::Shapes::light()"): 100,
    ("prog", "main", "write", "sys_write_[k]"): 40,
    ("prog", "main", "idle"): 50,
    ("prog", "main", "a_rather_long_function_name_that_does_not_fit()"): 10,
}
TOTAL = 500


@pytest.fixture
def graph(browser: Any, tmp_path: Path) -> Iterator[Graph]:
    path = tmp_path / "flame.svg"
    write_svg(STACKS, path, title="proftarget")
    g = Graph(browser, path)
    yield g
    g.close()


def test_click_zooms_and_reset_restores(graph: Graph) -> None:
    before = {name: graph.box(name) for name in ("work::run()", "work::Shapes::heavy()", "idle", "write", "main")}
    assert before["work::run()"]["width"] == pytest.approx(SPAN * 400 / TOTAL, abs=0.01)
    assert graph.page.locator("text.reset").is_hidden()

    graph.frame("work::run()").click()
    run = graph.box("work::run()")
    assert run["width"] == pytest.approx(SPAN) and run["x"] == pytest.approx(10)
    assert run["visible"] and run["label"] == "work::run()"
    heavy, light = graph.box("work::Shapes::heavy()"), graph.box("work::Shapes::light()")
    assert heavy["width"] == pytest.approx(SPAN * 3 / 4, abs=0.01)
    assert light["x"] == pytest.approx(10 + SPAN * 3 / 4, abs=0.01)
    assert light["label"] == "work::Shapes::light()"
    for sibling in ("idle", "write", "sys_write", "a_rather_long_function_name_that_does_not_fit()"):
        assert not graph.box(sibling)["visible"], sibling
    main = graph.box("main")  # a caller: full width, greyed
    assert main["visible"] and main["width"] == pytest.approx(SPAN) and float(main["opacity"]) < 1
    assert graph.page.locator("text.reset").is_visible()

    # a frame too narrow for its name gets it back when zoomed in
    graph.page.locator("text.reset").click()
    narrow = graph.box("a_rather_long_function_name_that_does_not_fit()")
    assert narrow["label"] == ""
    graph.frame("a_rather_long_function_name_that_does_not_fit()").locator("rect").click(force=True)
    assert graph.box("a_rather_long_function_name_that_does_not_fit()")["label"] == (
        "a_rather_long_function_name_that_does_not_fit()"
    )

    graph.page.keyboard.press("Escape")
    for name, box in before.items():
        after = graph.box(name)
        assert (after["x"], after["width"], after["visible"], after["label"]) == (
            box["x"],
            box["width"],
            box["visible"],
            box["label"],
        ), name
    assert graph.page.locator("text.reset").is_hidden()

    # Reset Zoom, and a click on the root, both restore
    graph.frame("write").click()
    assert graph.box("write")["width"] == pytest.approx(SPAN)
    graph.page.locator("text.reset").click()
    assert graph.box("work::run()") == before["work::run()"]
    graph.frame("idle").click()
    graph.frame("all").click()
    assert graph.box("idle") == before["idle"]


def test_search_highlights_matches_and_shows_their_share(graph: Graph) -> None:
    page = graph.page
    page.locator("svg").click(position={"x": 600, "y": 4})
    page.keyboard.press("Control+f")
    assert page.evaluate("document.activeElement.classList.contains('search')")
    page.keyboard.type("Shapes::(heavy|light)|^sys_")
    highlighted = "rgb(230, 0, 230)"
    for name in ("work::Shapes::heavy()", "work::Shapes::light()", "sys_write"):
        assert graph.box(name)["fill"] == highlighted, name
    for name in ("work::run()", "write", "idle", "main", "all"):
        assert graph.box(name)["fill"] != highlighted, name
    assert graph.text("matched") == f"Matched: {100 * 440 / TOTAL:.2f}% (3 frames)"

    # nested matches count once: run() covers heavy() and light()
    page.locator("input.search").fill("work::")
    assert graph.text("matched") == f"Matched: {100 * 400 / TOTAL:.2f}% (3 frames)"

    page.locator("input.search").fill("(unclosed")
    assert graph.text("matched") == "invalid regular expression"
    assert "bad" in str(page.locator("input.search").get_attribute("class"))
    assert graph.box("work::Shapes::heavy()")["fill"] != highlighted

    page.locator("input.search").fill("idle")
    assert graph.box("idle")["fill"] == highlighted
    page.keyboard.press("Escape")
    assert page.locator("input.search").evaluate("e => e.value") == ""
    assert graph.box("idle")["fill"] != highlighted
    assert graph.text("matched") == ""

    # "/" focuses the search box too
    page.locator("svg").click(position={"x": 600, "y": 4})
    page.keyboard.press("/")
    assert page.evaluate("document.activeElement.classList.contains('search')")


def test_tooltips_have_the_count_and_the_percentage(graph: Graph) -> None:
    assert graph.frame("work::Shapes::heavy()").locator("title").text_content() == (
        "work::Shapes::heavy() (300 samples, 60.00%)"
    )
    assert graph.frame("sys_write").locator("title").text_content() == "sys_write (40 samples, 8.00%)"
    graph.frame("work::Shapes::light()").hover()
    assert graph.text("details") == "work::Shapes::light() (100 samples, 20.00%)"
    graph.frame("all").hover()
    assert graph.text("details") == "all (500 samples, 100.00%)"
    graph.page.mouse.move(600, 2)
    assert graph.text("details") == ""
    # kernel frames are coloured apart from user frames
    assert "k" in graph.box("sys_write")["classes"].split()
    assert "u" in graph.box("write")["classes"].split()


def test_hostile_names_are_shown_never_run(browser: Any, tmp_path: Path) -> None:
    names = [
        "</svg><script>window.pwned=1</script>",
        "<img src=x onerror=window.pwned=2>",
        "]]><script>window.pwned=3</script>",
        '");window.pwned=4;("',
        "x\x00\x1b\udc80",
    ]
    path = tmp_path / "hostile.svg"
    write_svg({("p", name): 10 + i for i, name in enumerate(names)}, path, title="<script>window.pwned=5</script>")
    graph = Graph(browser, path)
    try:
        page = graph.page
        assert page.evaluate("window.pwned") is None
        assert page.locator("script").count() == 1
        assert page.locator("img").count() == 0
        titles = page.locator("g.f title").all_text_contents()
        shown = {t[: t.rindex(" (")] for t in titles}
        assert shown == {"all", "p", *names[:4], "x\\x00\\x1b\\udc80"}
        # search with the name itself as a (literal) pattern and zoom still work
        page.locator("input.search").fill("pwned=4")
        assert page.locator("g.f.m").count() == 1
        page.locator("g.f.m rect").click()
        assert page.locator("g.f.m rect").get_attribute("width") == f"{SPAN:.2f}"
        assert page.evaluate("window.pwned") is None
    finally:
        graph.close()


def test_large_graph_opens_and_zooms(browser: Any, tmp_path: Path) -> None:
    path = tmp_path / "large.svg"
    write_svg(random_stacks(100_000), path)
    graph = Graph(browser, path)
    try:
        page = graph.page
        frames = page.locator("g.f").count()
        assert 1000 < frames <= 20_001
        page.locator("g.f").nth(3).locator("rect").click(force=True)
        assert page.locator("text.reset").is_visible()
        page.locator("input.search").fill("method1[0-9]\\(")
        assert graph.text("matched").startswith("Matched: ")
    finally:
        graph.close()


@pytest.mark.bpf
def test_profile_of_the_bundled_target(browser: Any, tmp_path: Path) -> None:
    """``pyprobe profile -o x.svg`` of the bundled target (3:1 between two methods) works in the browser."""
    path = tmp_path / "proftarget.svg"
    command = [sys.executable, "-m", "pyprobe", "profile", "-F", "999", "-o", str(path)]
    command += ["-c", f"{target('proftarget_fp')} 3"]
    proc = subprocess.run(command, check=False, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    counted = re.search(r"(\d+) samples in", proc.stderr)
    assert counted is not None, proc.stderr
    total = int(counted.group(1))
    graph = Graph(browser, path)
    try:
        page = graph.page
        titles: list[str] = page.locator("g.f title").all_text_contents()
        assert titles[0] == f"all ({total:,} samples, 100.00%)"
        run, heavy, light = (graph.widest(p) for p in ("work::run(", "work::Shapes::heavy(", "work::Shapes::light("))
        before = graph.box(run)
        run.click()
        assert graph.box(run)["width"] == pytest.approx(SPAN)
        assert float(graph.box(graph.widest("main"))["opacity"]) < 1  # the caller, greyed
        assert page.locator("text.reset").is_visible()
        zoomed_heavy, zoomed_light = graph.box(heavy), graph.box(light)
        assert zoomed_heavy["visible"] and zoomed_light["visible"]
        assert zoomed_heavy["label"].startswith("work::Shapes::heavy(")
        assert zoomed_light["label"].startswith("work::Shapes::light(")
        assert 2.0 < zoomed_heavy["width"] / zoomed_light["width"] < 4.5
        assert zoomed_heavy["width"] + zoomed_light["width"] == pytest.approx(SPAN, rel=0.1)
        page.locator("text.reset").click()
        assert graph.box(run) == before

        page.keyboard.press("Control+f")
        page.keyboard.type("^work::Shapes::")
        share = float(graph.text("matched").split()[1].rstrip("%"))
        # heavy() and light() never nest, so the share is the sum of their frames' percentages
        from_titles = sum(float(t.rsplit(", ", 1)[1].rstrip("%)")) for t in titles if t.startswith("work::Shapes::"))
        assert share == pytest.approx(from_titles, abs=0.05)
        assert share > 50
    finally:
        graph.close()
