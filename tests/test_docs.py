"""Every code block of the README and docs/ is checked: Python with mypy --strict, probes compiled, loaders run.

Fence conventions (the first word of the info string is the language, so
GitHub still highlights these blocks):

- ```python            type-checked with ``mypy --strict``, as a module of its own.
- ```python run        also run, as root, against the real kernel, in a directory
                       holding what the page's C blocks compile to; ``expect=TEXT``
                       (no spaces) after ``run`` must appear in what it prints.
- ```c file=NAME.bpf.c a probe: written out and compiled with
                       ``pyprobe build NAME.bpf.c -o NAME.bpf.o --skeleton NAME_skel.py``.
- ```c file=NAME.h     a header the page's probes include, written out as is.

Names a block assumes from the reader's own project (a skeleton module
generated from a probe the page does not show, say) come from
``tests/docs_stubs/``, the same way mypy would see the generated module.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from conftest import BUILD, ROOT

STUBS = Path(__file__).resolve().parent / "docs_stubs"
RUN_TIMEOUT = 60.0

# Blocks not checked yet, each with the reason: (page, a line of the block) -> why.
SKIP: dict[tuple[str, str], str] = {}


@dataclass
class Block:
    """One fenced code block of a page."""

    page: str  # path relative to the repository
    line: int  # line number of the first line of code (1-based)
    lang: str
    attrs: list[str]
    code: str
    options: dict[str, str] = field(default_factory=dict)

    @property
    def where(self) -> str:
        return f"{self.page}:{self.line}"

    @property
    def module(self) -> str:
        """The module name the block is checked as (unique, an identifier)."""
        stem = re.sub(r"[^0-9A-Za-z]+", "_", self.page.removesuffix(".md")).strip("_").lower()
        return f"doc_{stem}_{self.line}"

    def skip_reason(self) -> str | None:
        for (page, text), reason in SKIP.items():
            if page == self.page and text in self.code:
                return reason
        return None


_FENCE = re.compile(r"^( {0,3})(```+|~~~+)(.*)$")


def parse(path: Path) -> list[Block]:
    """The fenced code blocks of a Markdown file of the repository."""
    return parse_text(path.read_text(), path.relative_to(ROOT).as_posix())


def parse_text(text: str, page: str) -> list[Block]:
    """The fenced code blocks of Markdown ``text``, named as from ``page``."""
    blocks: list[Block] = []
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        m = _FENCE.match(lines[i])
        if not m:
            i += 1
            continue
        indent, fence, info = len(m.group(1)), m.group(2), m.group(3).strip()
        words = info.split()
        lang = words[0].lower() if words else ""
        attrs = words[1:]
        body: list[str] = []
        j = i + 1
        while j < len(lines):
            close = _FENCE.match(lines[j])
            if close and close.group(2).startswith(fence[0] * len(fence)) and not close.group(3).strip():
                break
            line = lines[j]
            body.append(line[indent:] if line[:indent].strip() == "" else line.lstrip())
            j += 1
        options = dict(a.split("=", 1) for a in attrs if "=" in a)
        blocks.append(Block(page, i + 2, lang, [a for a in attrs if "=" not in a], "\n".join(body) + "\n", options))
        i = j + 1
    return blocks


def pages() -> list[Path]:
    found = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
    examples = ROOT / "examples"
    if examples.is_dir():
        found += sorted(examples.glob("**/README.md"))
    return [p for p in found if p.is_file()]


ALL_BLOCKS = [b for p in pages() for b in parse(p)]
PYTHON = [b for b in ALL_BLOCKS if b.lang in ("python", "py", "python3")]
RUN = [b for b in PYTHON if "run" in b.attrs]
SOURCES = [b for b in ALL_BLOCKS if b.lang in ("c", "h") and "file" in b.options]


def page_sources(page: str) -> list[Block]:
    return [b for b in SOURCES if b.page == page]


def write_sources(page: str, where: Path) -> list[Path]:
    """Writes a page's C blocks into ``where``; returns the probes (``.bpf.c``) among them."""
    probes = []
    for block in page_sources(page):
        name = block.options["file"]
        assert re.fullmatch(r"[A-Za-z0-9_.-]+", name), f"{block.where}: bad file name {name!r}"
        (where / name).write_text(block.code)
        if name.endswith(".bpf.c"):
            probes.append(where / name)
    return probes


def pyprobe_command() -> list[str]:
    return [sys.executable, "-m", "pyprobe"]


def build_probe(source: Path) -> subprocess.CompletedProcess[str]:
    """``pyprobe build NAME.bpf.c -o NAME.bpf.o --skeleton NAME_skel.py``, as the guide says."""
    stem = source.name.removesuffix(".bpf.c")
    cmd = [*pyprobe_command(), "build", source.name, "-o", f"{stem}.bpf.o", "--skeleton", f"{stem}_skel.py"]
    return subprocess.run(cmd, cwd=source.parent, capture_output=True, text=True, timeout=300, check=False)


def compile_page(page: str, where: Path) -> list[str]:
    """Compiles a page's probes into ``where``; returns the failures, each naming the block."""
    failures = []
    for probe in write_sources(page, where):
        proc = build_probe(probe)
        if proc.returncode != 0:
            block = next(b for b in page_sources(page) if b.options["file"] == probe.name)
            failures.append(f"{block.where} ({probe.name}): pyprobe build exited {proc.returncode}:\n{proc.stderr}")
    return failures


def test_the_pages_have_checked_blocks() -> None:
    assert PYTHON, "no ```python block found in README.md or docs/"
    guide = [b for b in RUN if b.page == "docs/writing-probes.md"]
    assert guide, "docs/writing-probes.md has no ```python run block (its loader must run)"
    assert any(b.options["file"].endswith(".bpf.c") for b in page_sources("docs/writing-probes.md"))

    # every skeleton a block imports is generated from one of its page's probes, or stubbed
    for block in PYTHON:
        generated = {b.options["file"].removesuffix(".bpf.c") + "_skel" for b in page_sources(block.page)}
        for module in re.findall(r"^\s*(?:from|import)\s+(\w+_skel)\b", block.code, re.MULTILINE):
            stubbed = (STUBS / f"{module}.pyi").is_file()
            assert module in generated or (stubbed and "run" not in block.attrs), (
                f"{block.where}: imports {module}, which no ```c file=... block of {block.page} generates"
                + ("" if "run" in block.attrs else f" and tests/docs_stubs/{module}.pyi does not declare")
            )


@pytest.mark.parametrize("block", SOURCES, ids=[b.where for b in SOURCES])
def test_probe_compiles(block: Block, tmp_path: Path) -> None:
    if not block.options["file"].endswith(".bpf.c"):
        pytest.skip("a header: compiled with the probes that include it")
    write_sources(block.page, tmp_path)
    proc = build_probe(tmp_path / block.options["file"])
    assert proc.returncode == 0, f"{block.where}: pyprobe build failed:\n{proc.stderr}"
    stem = block.options["file"].removesuffix(".bpf.c")
    assert (tmp_path / f"{stem}.bpf.o").stat().st_size > 0
    assert f"class {_camel(stem)}Skeleton(" in (tmp_path / f"{stem}_skel.py").read_text()


def _camel(name: str) -> str:
    return "".join(w[:1].upper() + w[1:] for w in re.split(r"[^0-9A-Za-z]+", name) if w)


_MYPY_LINE = re.compile(r"^(?P<file>[^:]+\.pyi?):(?P<line>\d+): (?P<kind>error|note): (?P<msg>.*)$")


def mypy_errors(blocks: list[Block], where: Path) -> list[str]:
    """``mypy --strict`` over ``blocks`` (one module each, written into ``where``), in one run.

    Returns mypy's messages, each located as PAGE:LINE of the Markdown (a
    stub's as its path); an empty list when mypy accepts them all.
    """
    by_module = {b.module: b for b in blocks}
    for block in blocks:
        (where / f"{block.module}.py").write_text(block.code)
    cache = BUILD / "mypy-docs-cache"
    env = {**os.environ, "MYPYPATH": str(STUBS)}
    proc = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--cache-dir", str(cache), "--no-error-summary",
         "--show-error-codes", "--hide-error-context", *(f"{m}.py" for m in by_module)],
        cwd=where, env=env, capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    errors = []
    for line in proc.stdout.splitlines():
        m = _MYPY_LINE.match(line)
        if m is None:
            continue
        block = by_module.get(Path(m["file"]).stem)
        if block is not None:
            located = f"{block.page}:{block.line + int(m['line']) - 1}"
        else:  # a stub
            located = f"{os.path.relpath(m['file'], ROOT)}:{m['line']}"
        errors.append(f"{located}: {m['kind']}: {m['msg']}")
    if proc.returncode != 0 and not errors:
        errors.append(f"mypy exited {proc.returncode}: {proc.stdout}{proc.stderr}")
    return errors


def test_python_blocks_pass_mypy_strict(tmp_path: Path) -> None:
    pytest.importorskip("mypy")
    checked = [b for b in PYTHON if b.skip_reason() is None]
    failures = []
    for page in sorted({b.page for b in checked}):
        failures += compile_page(page, tmp_path)  # generated skeletons are what mypy checks against
    assert not failures, "\n".join(failures)
    errors = mypy_errors(checked, tmp_path)
    assert not errors, "mypy --strict rejects Python blocks of the docs:\n" + "\n".join(errors)


def test_a_wrong_block_is_reported_at_its_page_and_line(tmp_path: Path) -> None:
    pytest.importorskip("mypy")
    page = (
        "# A page\n\n"
        "```python\n"
        "import pyprobe\n"
        "\n"
        "obj = pyprobe.open('x.bpf.o')\n"
        "obj.maps.typed('counts', pyprobe.HashMap[int, int])['k'] = 1\n"
        "```\n"
        "\n"
        "```python run\n"
        "from my_skel import MySkeleton\n"
        "\n"
        "MySkeleton().rodata.target_pid = 'all'\n"
        "```\n"
    )
    blocks = [b for b in parse_text(page, "docs/example.md") if b.lang == "python"]
    assert [(b.line, b.attrs) for b in blocks] == [(4, []), (11, ["run"])]
    errors = sorted(mypy_errors(blocks, tmp_path), key=lambda e: int(e.split(":")[1]))
    assert len(errors) == 2, errors
    assert errors[0].startswith("docs/example.md:7: error:") and '"str"' in errors[0], errors
    assert errors[1].startswith("docs/example.md:13: error:") and '"str"' in errors[1], errors


@pytest.fixture(scope="module")
def compiled(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str, Path], None]:
    """Copies into a directory what a page's probes compile to (compiled once per page)."""
    done: dict[str, Path] = {}

    def into(page: str, where: Path) -> None:
        if page not in done:
            built = tmp_path_factory.mktemp("compiled")
            failures = compile_page(page, built)
            assert not failures, "\n".join(failures)
            done[page] = built
        shutil.copytree(done[page], where, dirs_exist_ok=True)

    return into


@pytest.mark.bpf
@pytest.mark.parametrize("block", RUN, ids=[b.where for b in RUN])
def test_run_block(block: Block, tmp_path: Path, compiled: Callable[[str, Path], None]) -> None:
    reason = block.skip_reason()
    if reason:
        pytest.skip(reason)
    compiled(block.page, tmp_path)
    script = tmp_path / f"{block.module}.py"
    script.write_text(block.code)
    try:
        proc = subprocess.run(
            [sys.executable, "-X", "dev", script.name], cwd=tmp_path, capture_output=True, text=True,
            timeout=RUN_TIMEOUT,
            check=False, env={**os.environ, "PYTHONPATH": str(tmp_path)},
        )  # fmt: skip
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"{block.where}: still running after {RUN_TIMEOUT:.0f} s; output so far:\n{exc.stdout!r}")
    assert proc.returncode == 0, f"{block.where}: exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}"
    expect = block.options.get("expect")
    if expect is not None:
        assert expect in proc.stdout, f"{block.where}: {expect!r} not in its output:\n{proc.stdout}"
    assert proc.stdout.strip(), f"{block.where}: printed nothing; a run block shows its result"
    # run under -X dev: a resource the example leaves to the garbage collector is a bug in the example
    assert "ResourceWarning" not in proc.stderr, f"{block.where}: leaves a resource unclosed:\n{proc.stderr}"


UNCLOSED_READER = re.compile(r"\.reader\([^()]*\)\s*\.\s*(?:events|aevents|poll|read_batch|consume)\b")
"""A reader made and used in one expression: nothing closes it, and the garbage collector warns."""


def test_python_blocks_close_the_readers_they_open() -> None:
    unclosed = [b.where for b in PYTHON if UNCLOSED_READER.search(b.code)]
    assert not unclosed, f"readers used inline and never closed (use `with MAP.reader() as reader:`): {unclosed}"
