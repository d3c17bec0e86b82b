"""pyprobe's small records: fields, equality, hashing, immutability; and what ``import pyprobe`` leaves out."""

from __future__ import annotations

import copy
import pickle
import subprocess
import sys

import pytest

import pyprobe
from conftest import target
from pyprobe import btf, features, symbols, system, usdt
from pyprobe._log import LoadCapture
from pyprobe.cli.probespec import ArgType, Param, ProbeSpec


def test_import_pyprobe_and_the_trace_command_skip_dataclasses_and_pyelftools() -> None:
    code = (
        "import sys, pyprobe, pyprobe.cli.main, pyprobe.cli.trace\n"
        f"pyprobe.symbols.resolve({str(target('utest'))!r}, 'utest_add')\n"
        f"pyprobe.usdt.probes({str(target('usdt_target'))!r})\n"
        "print(sorted(m for m in ('dataclasses', 'inspect', 'elftools') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_immutable_records_compare_hash_and_refuse_assignment() -> None:
    info = symbols.elf_info(str(target("utest")))
    sym = symbols.resolve(target("utest"), "utest_add")
    records = [
        info,
        sym,
        btf.TypeRecord(3, 1, "int", size=4, extra={"linkage": 1}),
        btf.Member("a", 1, 0),
        features.FEATURES["uprobe_multi"],
        pyprobe.TestRunResult(1, b"x", 5),
        usdt.UsdtArgument("-4@%edx", 4, True, "%edx"),
        system.MapInfo(1, "m", pyprobe.MapType.HASH, 4, 8, 16, 0, 0),
        ProbeSpec("bin:f", "call", "bin", function="f", params=(Param("a", ArgType("signed", 4, "int")),)),
    ]
    for rec in records:
        twin = copy.copy(rec)
        assert twin == rec and hash(twin) == hash(rec) and pickle.loads(pickle.dumps(rec)) == rec
        assert repr(rec).startswith(type(rec).__name__ + "(")
        with pytest.raises(AttributeError):
            rec.name = "changed"  # type: ignore[misc]
    assert info.index[0]["_Z9utest_addii"] == [sym]
    assert (sym.name, sym.demangled, sym.bare, sym.address) == (
        "_Z9utest_addii",
        "utest_add(int, int)",
        "utest_add",
        sym.address,
    )


def test_type_record_defaults_and_extra_outside_equality() -> None:
    a = btf.TypeRecord(3, 1, "int", size=4, extra={"linkage": 1})
    b = btf.TypeRecord(3, 1, "int", size=4)
    assert a == b and hash(a) == hash(b) and b.extra == {} and a.extra == {"linkage": 1}
    assert (b.ref, b.members, b.signed, b.vars) == (0, (), False, ())
    assert a != btf.TypeRecord(3, 1, "int", size=8)


def test_mutable_records() -> None:
    cap = LoadCapture()
    cap.logs["p"] = "log"
    assert cap == LoadCapture({"p": "log"}) and cap.failed == [] and cap.messages == []
    with pytest.raises(TypeError):
        hash(cap)
    assert LoadCapture().failed is not LoadCapture().failed
