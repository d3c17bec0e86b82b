"""Maps in whole flows: tail calls through a prog array, user stacks, pinning across processes."""

from __future__ import annotations

import ctypes
import json
import os
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

import pyprobe
from conftest import ROOT, target, test_object

pytestmark = pytest.mark.bpf

PACKET = bytes(64)


def test_prog_array_tail_calls() -> None:
    with pyprobe.load(test_object("tailcall")) as obj:
        jump = obj.maps["jump"]
        assert isinstance(jump, pyprobe.ProgArrayMap)
        entry = obj.programs["entry"]
        one, two = obj.programs["target_one"], obj.programs["target_two"]

        def run(slot: int) -> int:
            return entry.test_run(bytes([slot]) + PACKET).retval

        assert run(1) == 100  # empty slot: the tail call falls through
        jump[1] = one
        jump[2] = two.fd
        assert (run(1), run(2), run(3)) == (101, 102, 100)
        assert jump[1] == one.id and 1 in jump and 3 not in jump
        jump[1] = two
        assert run(1) == 102
        del jump[1]
        assert run(1) == 100
        with pytest.raises(ValueError, match="out of range"):
            jump[4] = one
        with pytest.raises(TypeError, match="holds programs"):
            jump[0] = "entry"  # type: ignore[assignment]


def _symbolizer(binary: Path, pid: int) -> dict[str, object]:
    """Function name of each address of `binary` mapped in process `pid` (pyelftools)."""
    from elftools.elf.elffile import ELFFile

    with open(binary, "rb") as f:
        elf = ELFFile(f)
        loads = [(s["p_offset"], s["p_vaddr"], s["p_filesz"]) for s in elf.iter_segments() if s["p_type"] == "PT_LOAD"]
        symtab = elf.get_section_by_name(".symtab")
        funcs = [
            (s["st_value"], s["st_size"], s.name)
            for s in symtab.iter_symbols()
            if s["st_info"]["type"] == "STT_FUNC" and s["st_size"]
        ]
    maps = []
    real = os.path.realpath(binary)
    for line in Path(f"/proc/{pid}/maps").read_text().splitlines():
        parts = line.split()
        if len(parts) >= 6 and os.path.realpath(parts[5]) == real:
            start, end = (int(x, 16) for x in parts[0].split("-"))
            maps.append((start, end, int(parts[2], 16)))
    return {"loads": loads, "funcs": funcs, "maps": maps}


def _name_of(addr: int, info: dict[str, object]) -> str | None:
    for start, end, off in info["maps"]:  # type: ignore[attr-defined]
        if start <= addr < end:
            file_off = addr - start + off
            for p_off, p_vaddr, p_size in info["loads"]:  # type: ignore[attr-defined]
                if p_off <= file_off < p_off + p_size:
                    vaddr = file_off - p_off + p_vaddr
                    for value, size, name in info["funcs"]:  # type: ignore[attr-defined]
                        if value <= vaddr < value + size:
                            return str(name)
    return None


def test_stack_trace_map_resolves_user_stacks(utest: subprocess.Popen[bytes]) -> None:
    binary = target("utest")
    with pyprobe.load(test_object("stacks")) as obj:
        link = obj.programs["on_call"].attach_uprobe(binary, "_Z9utest_addii", pid=utest.pid)
        deadline = time.monotonic() + 5
        hits = obj.maps["stack_hits"]
        while time.monotonic() < deadline and not len(hits):
            time.sleep(0.01)
        link.detach()
        stacks = obj.maps["stacks"]
        assert isinstance(stacks, pyprobe.StackTraceMap)
        ids = list(hits)
        assert ids, "the uprobe never fired"
        info = _symbolizer(binary, utest.pid)
        frames = stacks[ids[0]]
        names = [_name_of(a, info) for a in frames]
        # at function entry the frame is not set up yet: the next frame is the caller's caller
        assert names[0] == "_Z9utest_addii", names
        assert len(frames) >= 2 and all(a > 0 for a in frames)
        assert ids[0] in stacks and list(stacks) == ids
        with pytest.raises(pyprobe.KeyNotFoundError):
            stacks[(ids[0] + 1) % 64 if (ids[0] + 1) % 64 not in ids else 63]


CHILD = textwrap.dedent(
    """
    import json, sys
    import pyprobe
    m = pyprobe.Map.from_pinned(sys.argv[1])
    out = {"type": type(m).__name__, "name": m.name, "key": m.key_type.__name__, "value": m.value_type.__name__}
    m[7] = {"count": 70, "pid": 7}
    out["fetched"] = m[1].to_dict()
    del m[2]
    out["keys"] = sorted(m)
    m.close()
    print(json.dumps(out))
    """
)


@pytest.fixture
def pin_dir() -> Iterator[Path]:
    path = Path("/sys/fs/bpf") / f"pyprobe_test_{os.getpid()}"
    path.mkdir(exist_ok=True)
    yield path
    for p in path.iterdir():
        p.unlink()
    path.rmdir()


def test_pinned_map_used_from_another_process(pin_dir: Path) -> None:
    with pyprobe.load(test_object("maps")) as obj:
        h = obj.maps["hash"]
        h.update_batch({1: {"count": 10, "pid": 1}, 2: {"count": 20}, 3: {"count": 30}})
        h.pin(pin_dir / "hash")
        env = dict(os.environ, PYTHONPATH=str(ROOT / "tests"))
        run = subprocess.run(
            [sys.executable, "-c", CHILD, str(pin_dir / "hash")],
            check=False,
            capture_output=True,
            text=True,
            env=env,
            timeout=60,
        )
        assert run.returncode == 0, run.stderr
        out = json.loads(run.stdout)
        assert out == {
            "type": "HashMap", "name": "hash", "key": "c_uint", "value": "value16",
            "fetched": {"count": 10, "pid": 1, "flags": 0}, "keys": [1, 3, 7],
        }  # fmt: skip
        assert sorted(h) == [1, 3, 7] and h[7].count == 70
        h.unpin()
        assert not (pin_dir / "hash").exists()


def test_created_map_pinned_and_reopened(pin_dir: Path, no_fd_leak: None) -> None:
    m = pyprobe.Map.create("hash", key_type=ctypes.c_uint32, value_type=ctypes.c_uint64, max_entries=8, name="made")
    with m:
        m[1] = 11
        m.pin(pin_dir / "made")
        code = (
            "import ctypes, pyprobe, sys\n"
            "m = pyprobe.Map.from_pinned(sys.argv[1], key_type=ctypes.c_uint32, value_type=ctypes.c_uint64)\n"
            "m[2] = m[1] * 2\n"
            "del m[1]\n"
            "print(sorted(m.items()))\n"
        )
        run = subprocess.run(
            [sys.executable, "-c", code, str(pin_dir / "made")], check=False, capture_output=True, text=True, timeout=60
        )
        assert run.returncode == 0, run.stderr
        assert run.stdout.strip() == "[(2, 22)]"
        assert dict(m.items()) == {2: 22}
        again = pyprobe.Map.from_pinned(pin_dir / "made")  # types come back from the BTF written by create
        with again:
            assert again.id == m.id and again.key_type is ctypes.c_uint32 and again.value_type is ctypes.c_uint64
            assert again[2] == 22
        m.unpin()
    with pytest.raises(pyprobe.MapError, match="No such file"):
        pyprobe.Map.from_pinned(pin_dir / "made")
    with pytest.raises(pyprobe.MapError, match="is a hash map"):
        m2 = pyprobe.Map.create("hash", key_size=4, value_size=4, max_entries=1)
        with m2:
            m2.pin(pin_dir / "h")
            try:
                pyprobe.ArrayMap.from_pinned(pin_dir / "h")
            finally:
                m2.unpin()
