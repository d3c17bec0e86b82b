"""pyprobe.system: the loaded programs and maps of the whole system, as the kernel reports them."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

import pyprobe
from conftest import test_object

pytestmark = pytest.mark.bpf


def test_programs_include_a_loaded_object_with_its_id_tag_and_type() -> None:
    before = time.time()
    with pyprobe.load(test_object("minimal")) as obj:
        prog = obj.programs["on_getpid"]
        found = {p.id: p for p in pyprobe.system.programs()}
        info = found[prog.id]
        assert (info.name, info.tag) == ("on_getpid", prog.tag)
        assert info.type == pyprobe.ProgramType.TRACEPOINT and info.type_name == "tracepoint"
        assert info.xlated_bytes > 0 and info.verified_insns > 0 and info.map_count >= 1
        assert info.uid == os.geteuid()
        assert before - 5 <= info.loaded_at <= time.time() + 5
        ids = [p.id for p in found.values()]
        assert ids == sorted(ids)


def test_maps_include_a_loaded_object_with_sizes_and_type() -> None:
    with pyprobe.load(test_object("minimal")) as obj:
        counts = obj.maps["counts"]
        info = {m.id: m for m in pyprobe.system.maps()}[counts.id]
        assert (info.name, info.type, info.type_name) == ("counts", pyprobe.MapType.HASH, "hash")
        assert (info.key_size, info.value_size, info.max_entries) == (4, 8, 64)
        assert info.btf_id > 0


def test_another_process_objects_are_listed() -> None:
    code = (
        "import sys, pyprobe; obj = pyprobe.load(sys.argv[1]); "
        "print(obj.maps['counts'].id, flush=True); sys.stdin.read()"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", code, str(test_object("minimal"))], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        map_id = int(proc.stdout.readline())
        assert map_id in {m.id for m in pyprobe.system.maps()}
    finally:
        proc.communicate("")


def test_without_privileges_the_walk_is_a_permission_error() -> None:
    code = (
        "import os, pyprobe\n"
        "pyprobe.system, pyprobe.BpfPermissionError  # names resolve on first use: before the privileges go\n"
        "os.setgid(65534); os.setuid(65534)\n"
        "try:\n    pyprobe.system.programs()\n"
        "except pyprobe.BpfPermissionError as exc:\n    print('denied', exc)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert out.stdout.startswith("denied"), out.stdout + out.stderr
    assert "CAP_BPF" in out.stdout
