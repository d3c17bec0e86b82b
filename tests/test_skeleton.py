"""pyprobe.Skeleton and `pyprobe gen skeleton`: a generated, typed module that opens, loads and attaches."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

import pyprobe
from conftest import import_file, test_object


def generate(tmp_path: Path, obj: str, *extra: str) -> Path:
    out = tmp_path / f"{obj}_skel.py"
    proc = subprocess.run(
        [sys.executable, "-m", "pyprobe", "gen", "skeleton", str(test_object(obj)), "-o", str(out), *extra],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    return out


def test_generated_module_declares_programs_maps_and_globals(tmp_path: Path) -> None:
    source = generate(tmp_path, "maps").read_text()
    assert "class MapsSkeleton(Skeleton):" in source
    for line in ("step: pyprobe.Program", "hash: pyprobe.HashMap[int, Value16]", "lru: pyprobe.LruHashMap[int, int]",
                 "rich_hash: pyprobe.HashMap[Point, Rich]", "pcpu_array: pyprobe.PerCpuArrayMap[Point]",
                 "ring: pyprobe.RingBufMap[bytes]", "perf: pyprobe.PerfEventArrayMap[bytes]",
                 "queue: pyprobe.QueueMap[int]", "outer_array: pyprobe.ArrayOfMaps",
                 "total: int", "label: bytes", "scale: int", "last_point: Point",
                 "comm: builtins.bytes", "bytes: ctypes.Array[ctypes.c_uint8]", "inner: RichInner"):  # fmt: skip
        assert f"    {line}\n" in source, line
    assert "_OBJECT = (" in source  # embedded


@pytest.mark.bpf
def test_generated_skeleton_loads_attaches_and_reads_a_global(tmp_path: Path) -> None:
    module = import_file(generate(tmp_path, "minimal"))
    with module.MinimalSkeleton().open() as skel:
        assert skel.obj.state == "opened"
        skel.rodata.target_pid = os.getpid()
        skel.load()
        links = skel.attach()
        assert [link.program.name for link in links] == ["on_getpid"]
        assert isinstance(skel.links.on_getpid, pyprobe.TracepointLink) and skel.links.add is None
        assert len(skel.links) == 1
        for _ in range(3):
            os.getpid()
        assert skel.bss.getpid_calls == 3
        assert isinstance(skel.maps.counts, pyprobe.HashMap)
        assert dict(skel.maps.counts.items()) == {os.getpid(): 3}
        assert skel.progs.add.test_run(ctx=bytes([2, 0, 0, 0, 3, 0, 0, 0])).retval == 5
        assert skel.bss.runs == 1
    assert skel.obj.state == "closed"
    assert len(skel.links) == 0


@pytest.mark.bpf
def test_referenced_object_and_the_untyped_base_class(tmp_path: Path) -> None:
    source = generate(tmp_path, "minimal", "--reference", "--class-name", "Mini")
    assert f'OBJECT_PATH: ClassVar[str | None] = "{test_object("minimal")}"' in source.read_text()
    assert "_OBJECT" not in source.read_text()
    module = import_file(source)
    with module.Mini() as skel:
        skel.load()
        assert skel.bss.getpid_calls == 0
    with pyprobe.Skeleton(test_object("minimal")) as base:
        with pytest.raises(AttributeError, match="call open"):
            _ = base.bss
        base.load()
        base.bss.runs = 7
        assert base.bss.runs == 7
        with pytest.raises(AttributeError, match="no global 'nope'"):
            _ = base.bss.nope
        with pytest.raises(AttributeError, match="no program 'nope'"):
            _ = base.links.nope


def test_base_class_needs_an_object() -> None:
    with pytest.raises(ValueError, match="has no object"):
        pyprobe.Skeleton().open()


def test_generated_module_passes_mypy_strict_and_catches_misspelt_names(tmp_path: Path) -> None:
    pytest.importorskip("mypy")
    generate(tmp_path, "minimal")
    (tmp_path / "good.py").write_text(
        "import os\n"
        "import pyprobe\n"
        "from minimal_skel import MinimalSkeleton\n\n"
        "def use() -> int:\n"
        "    with MinimalSkeleton().open() as skel:\n"
        "        skel.rodata.target_pid = os.getpid()\n"
        "        skel.load()\n"
        "        links: list[pyprobe.Link] = skel.attach()\n"
        "        counts: pyprobe.HashMap[int, int] = skel.maps.counts\n"
        "        prog: pyprobe.Program = skel.progs.on_getpid\n"
        "        link: pyprobe.Link | None = skel.links.on_getpid\n"
        "        return skel.bss.getpid_calls + len(links) + len(counts) + prog.fd + (link is None)\n"
    )
    (tmp_path / "bad.py").write_text(
        "from minimal_skel import MinimalSkeleton\n\n"
        "def use() -> None:\n"
        "    skel = MinimalSkeleton().load()\n"
        "    skel.rodata.target_pid = 'x'\n"
        "    print(skel.bss.getpid_cals)\n"
    )
    proc = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--no-incremental", "minimal_skel.py", "good.py", "bad.py"],
        cwd=tmp_path, capture_output=True, text=True, check=False,
    )  # fmt: skip
    errors = [line for line in proc.stdout.splitlines() if ": error:" in line]
    assert all(line.startswith("bad.py:") for line in errors), proc.stdout
    assert any("bad.py:5:" in line and "str" in line for line in errors), proc.stdout
    assert any("bad.py:6:" in line and "getpid_cals" in line for line in errors), proc.stdout
