"""The installed package carries its precompiled probes and targets, and they work."""

from __future__ import annotations

import os
import struct
import subprocess
import sys
from pathlib import Path

import pytest

import pyprobe
from pyprobe._data import probe_path, target_path


def test_package_carries_probes_and_target() -> None:
    installed = Path(pyprobe.__file__).parent
    assert probe_path("selftest").is_file()
    assert probe_path("demo.bpf.o").is_file()
    assert probe_path("demo").parent == installed / "bpf"
    utest = target_path("utest")
    assert os.access(utest, os.X_OK)
    with pytest.raises(FileNotFoundError, match="nope"):
        probe_path("nope")


@pytest.mark.bpf
def test_packaged_probe_loads_and_runs() -> None:
    with pyprobe.load(probe_path("selftest")) as obj:
        assert obj.programs["selftest"].test_run(ctx=struct.pack("<qq", 20, 22)).retval == 42


def test_import_in_a_fresh_interpreter_is_quiet() -> None:
    out = subprocess.run(
        [sys.executable, "-W", "error", "-c", "import pyprobe"], capture_output=True, text=True, check=False
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout == "" and out.stderr == ""


@pytest.mark.bpf
def test_every_shipped_probe_loads() -> None:
    """Each precompiled probe loads on the running kernel (CO-RE relocations included)."""
    probes = sorted((Path(pyprobe.__file__).parent / "bpf").glob("*.bpf.o"))
    assert {p.name for p in probes} >= {"demo.bpf.o", "selftest.bpf.o", "functrace.bpf.o", "funclatency.bpf.o"}
    for path in probes:
        with pyprobe.load(path) as obj:
            assert obj.state == "loaded"
            assert all(prog.fd >= 0 for prog in obj.programs.values()), path.name
