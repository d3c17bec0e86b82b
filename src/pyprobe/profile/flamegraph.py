"""Interactive flame graphs as one self-contained SVG file (inline CSS and script, no network).

:func:`render_svg` turns folded stacks (root-first tuples of frame names with a sample count,
what :meth:`pyprobe.profile.Profile.folded` returns) into an SVG that any browser opens:

- one box per frame, as wide as its share of the samples; stacks are merged by name along
  their root-first paths and the frames of each level are sorted by name, as flamegraph.pl does,
  below a root frame ``all``;
- colours by kind: a name ending in ``_[k]`` is a kernel frame, ``_[j]`` a JIT frame (a perf map
  entry), anything else a user frame; the suffix only picks the colour and is not shown;
- a tooltip (the ``<title>`` of each frame) and a details line under the graph with the name,
  the sample count and the percentage of all samples;
- click a frame to zoom into it (it takes the full width, its callers stay greyed below it,
  everything else is hidden); click ``Reset Zoom``, the root frame, or press Escape to go back;
- a search box (focused by Ctrl-F or ``/``) that takes a JavaScript regular expression, highlights
  the frames whose name matches and shows the share of the samples they cover (nested matches
  counted once).

Frame names come from untrusted binaries: every name is XML-escaped, characters that XML 1.0
cannot carry (control characters, lone surrogates) are written as ``\\xNN`` / ``\\uNNNN``
escapes, names reach the script only through the DOM (``textContent``), never as script source,
and a name is shown up to 1,000 characters. The output is bounded whatever the input: frames
narrower than ``minwidth`` pixels are dropped with their callees (flamegraph.pl's ``--minwidth``),
and when more than ``max_frames`` frames remain, only the widest ``max_frames`` are kept, so the
file stays within a few megabytes and its rendering time grows with the input size only.

Nothing here needs a kernel or root.
"""

from __future__ import annotations

import os
import zlib
from collections.abc import Mapping
from pathlib import Path

__all__ = ["render_svg", "write_svg"]

KERNEL_SUFFIX = "_[k]"
JIT_SUFFIX = "_[j]"

_PAD = 10  # horizontal margin, px
_FRAME_HEIGHT = 16  # one level of the graph, px
_FONT_SIZE = 12
_CHAR_WIDTH = 7.2  # 0.6 em at _FONT_SIZE,  # advance of a monospace font (DejaVu Sans Mono, Liberation Mono: 0.6 em)
_HEADER = 56  # title, subtitle, legend and search box above the frames
_FOOTER = 30  # details line and search result below the frames
_NAME_MAX = 1000  # characters of a name shown; a longer one is cut (merging still uses all of it)
_MIN_WIDTH_PX = 200
_MAX_WIDTH_PX = 100_000

# The kind of a frame, the colour class of its box (the hash of its name picks a shade within it).
_USER, _KERNEL, _JIT = 0, 1, 2
_KIND_CLASS = {_USER: "u", _KERNEL: "k", _JIT: "j"}
_KIND_LABEL = {_USER: "user", _KERNEL: "kernel", _JIT: "JIT"}


def _unprintable_table() -> dict[int, str]:
    table: dict[int, str] = {}
    for code in [*range(0x20), 0x7F]:
        table[code] = f"\\x{code:02x}"
    for code in [*range(0xD800, 0xE000), 0xFFFE, 0xFFFF]:
        table[code] = f"\\u{code:04x}"
    return table


_UNPRINTABLE = _unprintable_table()
_XML = {ord("&"): "&amp;", ord("<"): "&lt;", ord(">"): "&gt;", ord('"'): "&quot;", ord("'"): "&#39;"}


def _visible(text: str) -> str:
    """``text`` with the characters XML 1.0 cannot carry (controls, lone surrogates) spelt as escapes."""
    if text.isascii() and text.isprintable():
        return text
    return text.translate(_UNPRINTABLE)


def _xml(text: str) -> str:
    """Visible ``text`` (see :func:`_visible`) safe as XML character data and as an attribute value."""
    if not any(c in text for c in "&<>\"'"):
        return text
    return text.translate(_XML)


def _escape(text: str) -> str:
    return _xml(_visible(text))


def _kind(name: str) -> tuple[int, str]:
    """The kind of a folded frame name and the name shown (without its kind suffix)."""
    if name.endswith(KERNEL_SUFFIX):
        return _KERNEL, name[: -len(KERNEL_SUFFIX)]
    if name.endswith(JIT_SUFFIX):
        return _JIT, name[: -len(JIT_SUFFIX)]
    return _USER, name


def _colour(kind: int, name: str) -> str:
    """A stable colour for a frame: its kind picks the palette, the hash of its name the shade."""
    h = zlib.crc32(name.encode("utf-8", "surrogatepass"))
    v1, v2, v3 = (h & 0xFF) / 255, ((h >> 8) & 0xFF) / 255, ((h >> 16) & 0xFF) / 255
    if kind == _KERNEL:  # blue-green, as flamegraph.pl's "aqua"
        r, g, b = 50 + 60 * v1, 165 + 55 * v2, 165 + 55 * v2
    elif kind == _JIT:  # green
        r, g, b = 50 + 60 * v1, 200 + 55 * v2, 50 + 60 * v3
    else:  # red to yellow, flamegraph.pl's "hot"
        r, g, b = 205 + 50 * v3, 230 * v1, 55 * v2
    return f"rgb({int(r)},{int(g)},{int(b)})"


def _label(name: str, width: float) -> str:
    """``name`` cut to fit a box ``width`` pixels wide (``..`` marks a cut), or "" when too narrow."""
    fit = int((width - 6) / _CHAR_WIDTH)
    if fit < 3:
        return ""
    if len(name) <= fit:
        return name
    return name[: fit - 2] + ".."


_Items = list[tuple[tuple[str, ...], int]]


def _checked(stacks: Mapping[tuple[str, ...], int]) -> tuple[int, _Items]:
    """The total of the counts and the stacks with a count above 0; raises on a malformed stack."""
    total = 0
    items: _Items = []
    for stack, count in stacks.items():
        if not isinstance(stack, tuple):
            raise TypeError(f"flame graph: a stack must be a tuple of frame names, not {type(stack).__name__}")
        if not isinstance(count, int) or isinstance(count, bool):
            raise TypeError(f"flame graph: the count of stack {_short(stack)} is {type(count).__name__}, not int")
        if count < 0:
            raise ValueError(f"flame graph: the count of stack {_short(stack)} is negative ({count})")
        if count:
            total += count
            items.append((stack, count))
    return total, items


def _short(stack: object) -> str:
    text = repr(stack)
    return text if len(text) <= 200 else text[:200] + "..."


def _layout(items: _Items, min_samples: float, max_frames: int) -> list[tuple[int, int, int, str]]:
    """The frames to draw as (depth, x, samples, name), x in samples from the left, depth 1 above ``all``.

    The stacks are merged level by level: the stacks that share a path are split by their next
    frame, the frames of a level are sorted by name, and a frame with fewer than ``min_samples``
    samples is dropped with its callees at once, so a stack costs time only down to the level
    where it becomes too thin to draw. When more than ``max_frames`` frames remain, the widest
    ``max_frames`` are kept (a callee is never wider than its caller, and of the same width it
    ranks after it, so every frame kept has its caller kept).
    """
    frames: list[tuple[int, int, int, str]] = []
    # groups of stacks sharing a path: (stacks, x of the path's frame, depth of their next frame)
    todo: list[tuple[_Items, int, int]] = [(items, 0, 0)]
    while todo:
        group, x, depth = todo.pop()
        split: dict[str, list[object]] = {}  # next frame: [samples, stacks]
        for stack, count in group:
            if len(stack) > depth:
                name = stack[depth]
                part = split.get(name)
                if part is None:
                    if not isinstance(name, str):
                        raise TypeError(
                            f"flame graph: a frame of stack {_short(stack)} is {type(name).__name__}, not str"
                        )
                    part = split[name] = [0, []]
                part[0] += count  # type: ignore[operator]
                part[1].append((stack, count))  # type: ignore[attr-defined]
        later: list[tuple[_Items, int, int]] = []
        for name in sorted(split):
            samples: int = split[name][0]  # type: ignore[assignment]
            if samples >= min_samples:
                frames.append((depth + 1, x, samples, name))
                later.append((split[name][1], x, depth + 1))  # type: ignore[arg-type]
            x += samples
        todo.extend(reversed(later))
    if len(frames) > max_frames:
        # widest first, a caller before its callees of the same width: any first N keep their callers
        ranked = sorted(range(len(frames)), key=lambda i: (-frames[i][2], frames[i][0], frames[i][1]))
        frames = [frames[i] for i in sorted(ranked[:max_frames])]
    return frames


def render_svg(
    stacks: Mapping[tuple[str, ...], int],
    *,
    title: str = "Flame Graph",
    subtitle: str = "",
    count_name: str = "samples",
    width: int = 1200,
    minwidth: float = 0.1,
    max_frames: int = 20_000,
) -> str:
    """Renders folded stacks as a self-contained interactive SVG flame graph and returns its text.

    ``stacks`` maps root-first tuples of frame names to sample counts (a name ending in ``_[k]``
    is a kernel frame, ``_[j]`` a JIT frame; stacks with a count of 0 are left out). ``title`` and
    ``subtitle`` head the graph, ``count_name`` names the unit in tooltips (``1,234 samples``),
    ``width`` is the image width in pixels. Frames narrower than ``minwidth`` pixels are dropped,
    and at most ``max_frames`` frames besides the root are drawn (the widest). Without samples,
    the SVG says so.

    Pure Python, no kernel needed; time and memory grow with the number of frames in ``stacks``.
    Raises TypeError for a stack that is not a tuple of str or a count that is not an int,
    ValueError for a negative count or a ``width``, ``minwidth`` or ``max_frames`` out of range.
    """
    if not isinstance(width, int) or not _MIN_WIDTH_PX <= width <= _MAX_WIDTH_PX:
        raise ValueError(f"flame graph: width must be an int from {_MIN_WIDTH_PX} to {_MAX_WIDTH_PX}, not {width!r}")
    if not minwidth >= 0:
        raise ValueError(f"flame graph: minwidth must be >= 0 pixels, not {minwidth!r}")
    if not isinstance(max_frames, int) or max_frames < 1:
        raise ValueError(f"flame graph: max_frames must be a positive int, not {max_frames!r}")
    total, items = _checked(stacks)
    span = width - 2 * _PAD
    scale = span / total if total else 0.0
    frames = _layout(items, minwidth / scale, max_frames) if total else []
    depth = max((f[0] for f in frames), default=0)
    height = _HEADER + (depth + 1) * _FRAME_HEIGHT + _FOOTER
    unit = _escape(count_name)

    out: list[str] = []
    add = out.append
    add('<?xml version="1.0" encoding="UTF-8" standalone="no"?>\n')
    add(
        f'<svg version="1.1" xmlns="http://www.w3.org/2000/svg" class="flamegraph" width="{width}" '
        f'height="{height}" viewBox="0 0 {width} {height}" data-total="{total}" data-pad="{_PAD}" '
        f'data-cw="{_CHAR_WIDTH}" data-unit="{unit}">\n'
    )
    add(f"<style><![CDATA[{_CSS}]]></style>\n")
    add(f'<rect class="bg" x="0" y="0" width="{width}" height="{height}"/>\n')
    add(f'<text class="title" x="{width / 2}" y="24">{_escape(title)}</text>\n')
    if subtitle:
        add(f'<text class="subtitle" x="{width / 2}" y="42">{_escape(subtitle)}</text>\n')
    add(f'<text class="reset hide" x="{_PAD}" y="24">Reset Zoom</text>\n')
    add(
        f'<foreignObject x="{width - _PAD - 240}" y="6" width="240" height="26">'
        '<input xmlns="http://www.w3.org/1999/xhtml" class="search" type="search" '
        'placeholder="Search (regular expression)" spellcheck="false" autocomplete="off"/>'
        "</foreignObject>\n"
    )
    kinds = sorted({_kind(f[3])[0] for f in frames} | {_USER})
    lx: float = _PAD
    for kind in kinds:
        add(f'<rect class="legend {_KIND_CLASS[kind]}" x="{lx:.1f}" y="38" width="10" height="10"/>')
        add(f'<text class="legend" x="{lx + 14:.1f}" y="47">{_KIND_LABEL[kind]}</text>\n')
        lx += 14 + len(_KIND_LABEL[kind]) * _CHAR_WIDTH + 16
    add(f'<text class="details" x="{_PAD}" y="{height - 10}"> </text>\n')
    add(f'<text class="matched" x="{width - _PAD}" y="{height - 10}"> </text>\n')
    if not total:
        add(f'<text class="empty" x="{width / 2}" y="{_HEADER + _FRAME_HEIGHT}">No {unit}</text>\n')

    add('<g class="frames">\n')
    base = _HEADER + depth * _FRAME_HEIGHT  # y of the root frame

    def frame(fdepth: int, x: int, samples: int, shown: str, escaped: str, kind: str, fill: str) -> None:
        fx = _PAD + x * scale
        fw = samples * scale
        fy = base - fdepth * _FRAME_HEIGHT
        tip = f"{escaped} ({samples:,} {unit}, {100 * samples / total:.2f}%)"
        text = _label(shown, fw)
        if text:
            text = escaped if text is shown else _xml(text)
            label = f'<text x="{fx + 3:.2f}" y="{fy + 12}">{text}</text>'
        else:
            label = ""
        add(
            f'<g class="f {kind}" data-x="{x}" data-n="{samples}"><title>{tip}</title>'
            f'<rect x="{fx:.2f}" y="{fy}" width="{fw:.2f}" height="{_FRAME_HEIGHT - 1}" fill="{fill}"/>'
            f"{label}</g>\n"
        )

    if total:
        frame(0, 0, total, "all", "all", "r", "rgb(200,200,200)")
    # folded name: (shown name, the same XML-escaped, kind class, colour)
    seen: dict[str, tuple[str, str, str, str]] = {}
    for fdepth, x, samples, name in frames:
        style = seen.get(name)
        if style is None:
            kind, shown = _kind(name)
            shown = _visible(shown)
            if len(shown) > _NAME_MAX:
                shown = shown[:_NAME_MAX] + "..."
            style = seen[name] = (shown, _xml(shown), _KIND_CLASS[kind], _colour(kind, shown))
        frame(fdepth, x, samples, *style)
    add("</g>\n")
    add(f'<script type="text/ecmascript"><![CDATA[{_SCRIPT}]]></script>\n')
    add("</svg>\n")
    return "".join(out)


def write_svg(
    stacks: Mapping[tuple[str, ...], int],
    path: str | os.PathLike[str],
    *,
    title: str = "Flame Graph",
    subtitle: str = "",
    count_name: str = "samples",
    width: int = 1200,
    minwidth: float = 0.1,
    max_frames: int = 20_000,
) -> None:
    """Writes :func:`render_svg`'s flame graph of ``stacks`` to ``path`` (UTF-8), replacing the file.

    The file is written beside ``path`` and renamed over it, so a reader never sees half a graph.
    Raises what :func:`render_svg` raises, and OSError when the file cannot be written.
    """
    text = render_svg(
        stacks,
        title=title,
        subtitle=subtitle,
        count_name=count_name,
        width=width,
        minwidth=minwidth,
        max_frames=max_frames,
    )
    target = Path(path)
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    try:
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)


_CSS = """
.bg{fill:#f8f8f4}
text{font-family:"DejaVu Sans Mono","Liberation Mono",Menlo,Consolas,monospace;font-size:12px;fill:#000}
.title{font-size:17px;text-anchor:middle}
.subtitle{fill:#555;text-anchor:middle}
.reset{cursor:pointer;fill:#06c}
.matched{text-anchor:end}
.empty{text-anchor:middle;fill:#555}
.hide{display:none}
.legend.u{fill:rgb(230,110,20)}
.legend.k{fill:rgb(80,190,190)}
.legend.j{fill:rgb(80,225,80)}
.search{box-sizing:border-box;width:240px;height:24px;font:12px monospace;padding:2px 6px;
border:1px solid #aaa;border-radius:3px;background:#fff}
.search.bad{border-color:#d00;background:#fee}
g.f{cursor:pointer}
g.f text{pointer-events:none}
g.f:hover rect{stroke:#000;stroke-width:.5}
g.f.a{opacity:.5}
g.f.m rect{fill:rgb(230,0,230)}
"""

# The script reads every number it needs from the DOM (data-* attributes) and every name from the
# titles (textContent); it is the same for every graph, so no input ever becomes script source.
_SCRIPT = r"""
(function () {
"use strict";
var me = document.currentScript;
var svg = (me && me.ownerSVGElement) || document.documentElement;
var NS = "http://www.w3.org/2000/svg";
var TOTAL = +svg.getAttribute("data-total");
var PAD = +svg.getAttribute("data-pad");
var CW = +svg.getAttribute("data-cw");
var W = +svg.getAttribute("width");
var UNIT = svg.getAttribute("data-unit");
var SPAN = W - 2 * PAD;
var details = svg.querySelector("text.details");
var matched = svg.querySelector("text.matched");
var reset = svg.querySelector("text.reset");
var input = svg.querySelector("input.search");
var frames = [];
var groups = svg.querySelectorAll("g.f");
for (var i = 0; i < groups.length; i++) {
  var g = groups[i];
  var tip = g.querySelector("title").textContent;
  var rect = g.querySelector("rect");
  var n = +g.getAttribute("data-n");
  // the title is "NAME (COUNT UNIT, PERCENT%)", COUNT with thousands separators
  var count = String(n).replace(/\B(?=(\d{3})+(?!\d))/g, ",");
  var f = {g: g, rect: rect, text: g.querySelector("text"), tip: tip,
           name: tip.slice(0, tip.lastIndexOf(" (" + count + " " + UNIT + ", ")),
           x: +g.getAttribute("data-x"), n: n, y: +rect.getAttribute("y"),
           root: g.classList.contains("r")};
  g.fgFrame = f;
  frames.push(f);
}
var zoomed = null;

function label(f, px, w) {
  var chars = Array.from(f.name);
  var fit = Math.floor((w - 6) / CW);
  var s = fit < 3 ? "" : (chars.length <= fit ? f.name : chars.slice(0, fit - 2).join("") + "..");
  if (!f.text) {
    if (!s) return;
    f.text = document.createElementNS(NS, "text");
    f.text.setAttribute("y", f.y + 12);
    f.g.appendChild(f.text);
  }
  f.text.setAttribute("x", (px + 3).toFixed(2));
  f.text.textContent = s;
}

function place(f, px, w) {
  f.rect.setAttribute("x", px.toFixed(2));
  f.rect.setAttribute("width", w.toFixed(2));
  label(f, px, w);
}

function zoom(z) {
  if (z.root) { unzoom(); return; }
  zoomed = z;
  var scale = SPAN / z.n;
  for (var i = 0; i < frames.length; i++) {
    var f = frames[i], cl = f.g.classList;
    cl.remove("a");
    if (f.y > z.y && f.x <= z.x && f.x + f.n >= z.x + z.n) {
      cl.remove("hide"); cl.add("a"); place(f, PAD, SPAN);
    } else if (f.y <= z.y && f.x >= z.x && f.x + f.n <= z.x + z.n) {
      cl.remove("hide"); place(f, PAD + (f.x - z.x) * scale, f.n * scale);
    } else {
      cl.add("hide");
    }
  }
  reset.classList.remove("hide");
}

function unzoom() {
  zoomed = null;
  var scale = SPAN / TOTAL;
  for (var i = 0; i < frames.length; i++) {
    var f = frames[i];
    f.g.classList.remove("hide", "a");
    place(f, PAD + f.x * scale, f.n * scale);
  }
  reset.classList.add("hide");
}

function percent(n) { return (100 * n / TOTAL).toFixed(2) + "%"; }

function search(term) {
  var hits = [];
  input.classList.remove("bad");
  for (var i = 0; i < frames.length; i++) frames[i].g.classList.remove("m");
  if (!term) { matched.textContent = " "; return; }
  var re;
  try { re = new RegExp(term); } catch (e) {
    input.classList.add("bad");
    matched.textContent = "invalid regular expression";
    return;
  }
  for (var j = 0; j < frames.length; j++) {
    var f = frames[j];
    if (!f.root && re.test(f.name)) { f.g.classList.add("m"); hits.push(f); }
  }
  // a match nested in another one covers samples already counted
  hits.sort(function (a, b) { return a.x - b.x || b.n - a.n; });
  var sum = 0, end = 0;
  for (var k = 0; k < hits.length; k++) {
    var h = hits[k], stop = h.x + h.n;
    if (stop > end) { sum += stop - Math.max(h.x, end); end = stop; }
  }
  matched.textContent = "Matched: " + percent(sum) + " (" + hits.length + " frames)";
}

function frameOf(e) {
  var g = e.target && e.target.closest ? e.target.closest("g.f") : null;
  return g ? g.fgFrame : null;
}

svg.addEventListener("click", function (e) {
  if (e.target === reset) { unzoom(); return; }
  var f = frameOf(e);
  if (f) zoom(f);
});
svg.addEventListener("mouseover", function (e) {
  var f = frameOf(e);
  if (f) details.textContent = f.tip;
});
svg.addEventListener("mouseout", function (e) {
  if (frameOf(e)) details.textContent = " ";
});
input.addEventListener("input", function () { search(input.value); });
document.addEventListener("keydown", function (e) {
  if ((e.ctrlKey || e.metaKey) && (e.key === "f" || e.key === "F") ||
      (e.key === "/" && document.activeElement !== input)) {
    e.preventDefault();
    input.focus();
    input.select();
  } else if (e.key === "Escape") {
    if (document.activeElement === input && input.value) { input.value = ""; search(""); }
    else if (zoomed) unzoom();
  }
});
})();
"""
