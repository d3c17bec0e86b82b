"""The SVG flame graph writer (pyprobe.profile.flamegraph): layout, merging, kinds, escaping, bounds.

Pure Python: no kernel, no browser (tests/test_flamegraph_browser.py drives the graph in Chromium).
"""

from __future__ import annotations

import bisect
import random
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

import pytest

from pyprobe.profile.flamegraph import render_svg, write_svg

NS = "{http://www.w3.org/2000/svg}"
SPAN = 1200 - 2 * 10  # the default width less the margins
CHAR_WIDTH = 7.2


@dataclass
class Box:
    name: str
    title: str
    kind: str
    x: float
    y: float
    width: float
    fill: str
    label: str | None
    samples: int
    first: int  # data-x: the first sample the frame covers
    level: int = 0  # 0 for the root, 1 above it...


def parse(svg: str) -> tuple[ET.Element, list[Box]]:
    root = ET.fromstring(svg.encode("utf-8"))
    boxes = []
    for g in root.iter(f"{NS}g"):
        classes = g.get("class", "").split()
        if "f" not in classes:
            continue
        title = g.findtext(f"{NS}title")
        rect = g.find(f"{NS}rect")
        assert title is not None and rect is not None
        boxes.append(
            Box(
                name=title[: title.rindex(" (")],
                title=title,
                kind=classes[1],
                x=float(rect.get("x", "nan")),
                y=float(rect.get("y", "nan")),
                width=float(rect.get("width", "nan")),
                fill=rect.get("fill", ""),
                label=g.findtext(f"{NS}text"),
                samples=int(g.get("data-n", "-1")),
                first=int(g.get("data-x", "-1")),
            )
        )
    bottom = max((b.y for b in boxes), default=0)
    for b in boxes:
        b.level = round((bottom - b.y) / 16)
    return root, boxes


def by_name(boxes: list[Box]) -> dict[str, Box]:
    named = {b.name: b for b in boxes}
    assert len(named) == len(boxes), "a name appears twice"
    return named


def test_widths_are_proportional_to_samples() -> None:
    _, boxes = parse(render_svg({("p", "run", "heavy"): 300, ("p", "run", "light"): 100, ("p", "idle"): 50}))
    f = by_name(boxes)
    assert set(f) == {"all", "p", "run", "heavy", "light", "idle"}
    assert f["all"].width == pytest.approx(SPAN) and f["p"].width == pytest.approx(SPAN)
    assert f["heavy"].width / f["light"].width == pytest.approx(3, rel=1e-3)
    assert f["run"].width == pytest.approx(SPAN * 400 / 450, abs=0.01)
    assert f["idle"].width == pytest.approx(SPAN * 50 / 450, abs=0.01)
    # callees sit on their caller, adjacent, in name order; the root is at the bottom
    assert f["heavy"].x == pytest.approx(f["run"].x)
    assert f["light"].x == pytest.approx(f["heavy"].x + f["heavy"].width, abs=0.01)
    assert f["idle"].x < f["run"].x
    assert f["heavy"].y == f["light"].y < f["run"].y < f["p"].y < f["all"].y
    assert f["heavy"].y == f["run"].y - 16 and f["run"].y == f["idle"].y
    assert f["heavy"].title == "heavy (300 samples, 66.67%)"
    assert f["all"].title == "all (450 samples, 100.00%)"
    assert (f["heavy"].first, f["light"].first, f["idle"].first) == (50, 350, 0)


def test_stacks_merge_by_name_along_their_paths() -> None:
    stacks = {("a", "b", "c"): 2, ("a", "b", "d"): 1, ("a", "e"): 1, ("x",): 4, ("a", "c"): 5}
    _, boxes = parse(render_svg(stacks))
    counts = sorted((b.name, b.samples) for b in boxes)
    # one "a" for every stack under it; "c" twice: at a;b;c and at a;c, different paths
    assert counts == [("a", 9), ("all", 13), ("b", 3), ("c", 2), ("c", 5), ("d", 1), ("e", 1), ("x", 4)]


def test_each_level_is_sorted_by_name_whatever_the_input_order() -> None:
    names = ["zeta", "alpha", "Mu", "beta", "_start", "[unknown]"]
    rng = random.Random(7)
    stacks = {("p", name): rng.randint(1, 100) for name in names}
    _, boxes = parse(render_svg(stacks))
    level = sorted((b for b in boxes if b.name in names), key=lambda b: b.x)
    assert [b.name for b in level] == sorted(names)


def test_suffixes_pick_the_colour_and_are_not_shown() -> None:
    stacks = {("p", "main", "write", "sys_write_[k]", "vfs_write_[k]"): 10, ("p", "python", "py::f_[j]"): 10}
    root, boxes = parse(render_svg(stacks))
    f = by_name(boxes)
    assert (f["main"].kind, f["sys_write"].kind, f["vfs_write"].kind, f["py::f"].kind) == ("u", "k", "k", "j")
    assert f["sys_write"].label == "sys_write" and f["sys_write"].title.startswith("sys_write (")
    assert not any("_[" in b.title for b in boxes)
    legend = [t.text for t in root.iter(f"{NS}text") if t.get("class") == "legend"]
    assert legend == ["user", "kernel", "JIT"]
    # the same name gets the same colour wherever it appears
    again = by_name(parse(render_svg({("q", "main"): 1}))[1])
    assert again["main"].fill == f["main"].fill
    _, only_user = parse(render_svg({("p",): 1}))
    assert [b.kind for b in only_user] == ["r", "u"]


HOSTILE = [
    "</svg><script>alert(1)</script>",
    "]]><script>alert(2)</script><![CDATA[",
    "a\"b'c&d&amp;<!--",
    "\x00\x07\x1b[31mred\x7f",
    "\udc80\ud800lone surrogates",
    "\ufffe\uffff",
    "x" * 5000,
]


def test_hostile_names_stay_text() -> None:
    stacks = {("p", name): i + 1 for i, name in enumerate(HOSTILE)}
    svg = render_svg(stacks, title="</text><script>t()</script>", subtitle="&nbsp;", count_name='s"><script>')
    data = svg.encode("utf-8")  # lone surrogates would fail here
    root, boxes = parse(svg)
    assert len(list(root.iter(f"{NS}script"))) == 1
    assert [e.tag for e in root.iter() if e.tag.endswith("}foreignObject")] == [f"{NS}foreignObject"]
    names = {b.name for b in boxes} - {"all", "p"}
    assert names == {
        "</svg><script>alert(1)</script>",
        "]]><script>alert(2)</script><![CDATA[",
        "a\"b'c&d&amp;<!--",
        "\\x00\\x07\\x1b[31mred\\x7f",
        "\\udc80\\ud800lone surrogates",
        "\\ufffe\\uffff",
        "x" * 1000 + "...",  # shown names are cut at 1,000 characters
    }
    assert b"<script>alert" not in data and b"<script>t()" not in data
    titles = [t.text for t in root.iter(f"{NS}text") if t.get("class") == "title"]
    assert titles == ["</text><script>t()</script>"]
    assert root.get("data-unit") == 's"><script>'
    long = by_name(boxes)["x" * 1000 + "..."]
    assert long.label is None or len(long.label) * CHAR_WIDTH + 6 <= long.width


def test_labels_are_cut_to_the_frame_width() -> None:
    long = "work::Shapes::heavy(std::vector<int, std::allocator<int> > const&)"
    stacks = {("p", long): 10, ("p", "z" * 40): 1000, ("p", "w"): 15}
    _, boxes = parse(render_svg(stacks))
    f = by_name(boxes)
    box = f[long]  # 10 / 1025 of 1180 px: 11.5 px, one character and no room for a label
    assert box.label is None
    wide = parse(render_svg({("p", long): 65, ("p", "z"): 935}))[1]
    cut = by_name(wide)[long]  # 76.7 px: 9 characters, 7 of the name and ".."
    assert cut.label == long[:7] + ".."
    assert len(cut.label) * CHAR_WIDTH + 6 <= cut.width
    assert f["z" * 40].label == "z" * 40


def test_no_samples() -> None:
    for stacks in ({}, {("p", "main"): 0}):
        root, boxes = parse(render_svg(stacks, count_name="events"))
        assert boxes == []
        assert [t.text for t in root.iter(f"{NS}text") if t.get("class") == "empty"] == ["No events"]


def test_bad_input_is_a_typed_error_naming_the_stack() -> None:
    with pytest.raises(ValueError, match=r"stack \('p', 'f'\) is negative \(-1\)"):
        render_svg({("p", "f"): -1})
    with pytest.raises(TypeError, match=r"stack \('p', 3\).*int, not str"):
        render_svg({("p", 3): 1})  # type: ignore[dict-item]
    with pytest.raises(TypeError, match=r"count of stack \('p',\) is float"):
        render_svg({("p",): 1.5})  # type: ignore[dict-item]
    with pytest.raises(TypeError, match="tuple of frame names, not str"):
        render_svg({"p;f": 1})  # type: ignore[dict-item]
    with pytest.raises(ValueError, match="width"):
        render_svg({("p",): 1}, width=10)
    with pytest.raises(ValueError, match="minwidth"):
        render_svg({("p",): 1}, minwidth=float("nan"))
    with pytest.raises(ValueError, match="max_frames"):
        render_svg({("p",): 1}, max_frames=0)


def test_frames_narrower_than_minwidth_are_dropped_with_their_callees() -> None:
    stacks = {("p", "hot"): 1_000_000, ("p", "cold", "colder"): 50}  # cold: 0.059 px
    assert {b.name for b in parse(render_svg(stacks))[1]} == {"all", "p", "hot"}
    assert {b.name for b in parse(render_svg(stacks, minwidth=0))[1]} == {"all", "p", "hot", "cold", "colder"}
    assert {b.name for b in parse(render_svg(stacks, minwidth=0.05))[1]} == {"all", "p", "hot", "cold", "colder"}


def random_stacks(count: int, seed: int = 13) -> dict[tuple[str, ...], int]:
    """``count`` distinct stacks 3 to 40 deep over 2,000 C++-like names, heavy-tailed like real profiles."""
    rng = random.Random(seed)
    names = [f"ns{i % 50}::Class{i}::method{i}(int, char const*)" for i in range(2000)]
    stacks: dict[tuple[str, ...], int] = {}
    while len(stacks) < count:
        depth = rng.randint(3, 40)
        path = ["proc", "main"] + [names[min(int(rng.paretovariate(1.1)) * (k + 1) + k, 1999)] for k in range(depth)]
        stacks[tuple(path)] = rng.randint(1, 50)
    return stacks


def closed_under_callers(boxes: list[Box]) -> bool:
    """Every frame above the root sits on a kept frame one level down that covers its samples."""
    levels: dict[float, list[tuple[int, int]]] = {}
    for b in boxes:
        levels.setdefault(b.y, []).append((b.first, b.first + b.samples))
    for spans in levels.values():
        spans.sort()
    for b in boxes:
        if b.name == "all":
            continue
        below = levels.get(b.y + 16, [])
        i = bisect.bisect_right(below, (b.first, float("inf"))) - 1
        if i < 0 or below[i][1] < b.first + b.samples:
            return False
    return True


def test_huge_input_is_bounded_in_size_and_time() -> None:
    stacks = random_stacks(100_000)
    start = time.perf_counter()
    svg = render_svg(stacks)
    elapsed = time.perf_counter() - start
    _, boxes = parse(svg)
    assert len(svg) < 8_000_000
    assert len(boxes) <= 20_001
    assert elapsed < 20, f"rendering 100,000 stacks took {elapsed:.1f} s"
    assert all(b.width >= 0.1 for b in boxes)
    assert closed_under_callers(boxes)


def test_max_frames_keeps_the_widest() -> None:
    stacks = random_stacks(2000)
    _, every = parse(render_svg(stacks, minwidth=0))
    _, kept = parse(render_svg(stacks, minwidth=0, max_frames=50))
    assert len(every) > 1000
    assert len(kept) == 51
    narrowest_kept = min(b.samples for b in kept)
    kept_at = {(k.level, k.first) for k in kept}
    assert len(kept_at) == len(kept)
    widest_dropped = max(b.samples for b in every if (b.level, b.first) not in kept_at)
    assert narrowest_kept >= widest_dropped
    assert closed_under_callers(kept)
    # frames of the same width: exactly max_frames kept, callers first
    flat = {("p", f"f{i:03}", "leaf"): 1 for i in range(100)}
    _, kept = parse(render_svg(flat, minwidth=0, max_frames=10))
    assert [b.name for b in kept] == ["all", "p", *(f"f{i:03}" for i in range(9))]


def test_deep_stacks_do_not_recurse() -> None:
    deep = tuple(f"f{i}" for i in range(5000))
    _, boxes = parse(render_svg({deep: 3, deep[:10]: 1}))
    assert len(boxes) == 5001
    assert closed_under_callers(boxes)


def test_write_svg(tmp_path: Path) -> None:
    stacks = {("p", "main", "sys_read_[k]"): 3}
    path = tmp_path / "out.svg"
    path.write_text("old")
    write_svg(stacks, path, title="t", subtitle="s", width=800)
    assert path.read_text(encoding="utf-8") == render_svg(stacks, title="t", subtitle="s", width=800)
    assert [p.name for p in tmp_path.iterdir()] == ["out.svg"]
    with pytest.raises(OSError):
        write_svg(stacks, tmp_path / "missing" / "out.svg")
    with pytest.raises(ValueError, match="negative"):
        write_svg({("p",): -2}, path)
    assert path.read_text(encoding="utf-8").startswith("<?xml")
