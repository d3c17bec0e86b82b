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


HEAVY = (
    "_cffi_backend", "asyncio", "ctypes", "enum", "logging", "numpy", "re", "subprocess", "threading", "typing",
    "prometheus_client", "opentelemetry", "pyprobe.export",
)  # fmt: skip


def _fresh_modules(code: str) -> set[str]:
    out = subprocess.run(
        [sys.executable, "-c", f"{code}\nimport sys\nprint(' '.join(sys.modules))"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    return set(out.stdout.split())


def test_import_pyprobe_imports_none_of_its_submodules_nor_heavy_modules() -> None:
    """``import pyprobe`` is the package alone: its names are imported on first use (PEP 562)."""
    bare = _fresh_modules("")
    added = _fresh_modules("import pyprobe") - bare
    assert added <= {"pyprobe", "__future__"}, sorted(added)
    assert not [m for m in HEAVY if m in added or any(a.startswith(m + ".") for a in added)]


def test_the_libbpf_binding_alone_imports_no_typing() -> None:
    """``pyprobe._ffi`` (``pyprobe.libbpf_version``) loads the extension and nothing heavy."""
    added = _fresh_modules("import pyprobe._ffi") - _fresh_modules("")
    assert {"pyprobe._ffi", "pyprobe._libbpf"} <= added
    assert not [m for m in HEAVY if m != "_cffi_backend" and m in added], sorted(added)


def test_every_public_name_resolves_on_first_use() -> None:
    names = _fresh_modules(
        "import pyprobe\n"
        "missing = [n for n in pyprobe.__all__ if getattr(pyprobe, n, None) is None]\n"
        "assert not missing, missing\n"
        "assert set(pyprobe.__all__) <= set(dir(pyprobe))\n"
        "from pyprobe import *\n"
        "from pyprobe import HashMap, features, load\n"
        "assert pyprobe.HashMap is HashMap and features.available and load is pyprobe.object.load"
    )  # fmt: skip
    assert "pyprobe.maps" in names
    with pytest.raises(AttributeError, match="'nonexistent'"):
        pyprobe.nonexistent  # type: ignore[attr-defined]  # noqa: B018
    assert pyprobe.globals.GlobalVariables is pyprobe.GlobalVariables  # the submodule named like the builtin


KIND_MODULES = (
    "pyprobe.maps._cgroup", "pyprobe.maps._fdmaps", "pyprobe.maps._iter", "pyprobe.maps._network",
    "pyprobe.maps._socket", "pyprobe.maps._values",
)  # fmt: skip
"""The map kind modules imported on first use of a map type or name of theirs (pyprobe.maps, _base._KIND_MODULES)."""
UNUSED_ON_THE_TRACE_PATH = (
    "socket", "ipaddress", "selectors", "fcntl", "pyprobe._btf_write", "pyprobe.features", "pyprobe.usdt",
    "math", "array", "pyprobe._testrun",
    *KIND_MODULES,
)  # fmt: skip


@pytest.mark.bpf
def test_loading_attaching_and_reading_the_trace_object_imports_only_what_it_uses() -> None:
    """The path of ``pyprobe trace``: open, load, write a map, attach a uprobe at an offset, read the
    ring buffer. It needs none of the network, socket, cgroup and iterator maps, nor feature probes."""
    utest = str(target_path("utest"))
    added = _fresh_modules(
        "import pyprobe\n"
        "from pyprobe._data import probe_file\n"
        "obj = pyprobe.open(probe_file('functrace'))\n"
        "for name, prog in obj.programs.items():\n"
        "    prog.autoload = name in ('functrace_entry', 'functrace_return')\n"
        "obj.load()\n"
        "obj.maps['funcs'][0] = bytes(obj.maps['funcs'].value_size)\n"
        f"link = obj.programs['functrace_entry'].attach_uprobe({utest!r}, None, offset=4096, cookie=0)\n"
        "reader = pyprobe.RingBuffer(obj.maps['events'], event_type='ft_event')\n"
        "assert len(reader.read_batch(16, timeout=0)) == 0\n"
        "reader.close(); link.detach(); obj.close()"
    ) - _fresh_modules("")
    assert {"pyprobe.object", "pyprobe.maps._kinds", "pyprobe.ringbuf"} <= added
    assert not [m for m in UNUSED_ON_THE_TRACE_PATH if m in added], sorted(added)


@pytest.mark.bpf
def test_a_map_kind_module_is_imported_by_the_first_map_of_its_types() -> None:
    """A kind module loads when its map type first appears, and every type it registers is listed in
    ``_base._KIND_MODULES`` under it (a type missing there would wrap as a plain Map until imported)."""
    out = subprocess.run(
        [sys.executable, "-c",
         "import sys, pyprobe\n"
         "from pyprobe.maps import _base\n"
         "before = dict(_base.Map._classes)\n"
         "m = pyprobe.Map.create('lpm_trie', key_size=8, value_size=4, max_entries=4, flags=1)\n"
         "print(type(m).__name__, 'pyprobe.maps._network' in sys.modules, 'pyprobe.maps._socket' in sys.modules)\n"
         "m.close()\n"
         "for module in _base._KIND_MODULES:\n"
         "    __import__(module)\n"
         "listed = {int(t): mod for mod, types in _base._KIND_MODULES.items() for t in types}\n"
         "for t, cls in _base.Map._classes.items():\n"
         "    if t not in before:\n"
         "        assert listed.get(t) == cls.__module__, (t, cls, listed.get(t))\n"
         "assert set(listed) <= set(_base.Map._classes) and not set(listed) & set(before)\n"
         "from pyprobe.maps import SockMap, socket_cookie\n"
         "assert SockMap.__module__ == 'pyprobe.maps._socket' and callable(socket_cookie)\n"
         "print('ok')"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["LpmTrieMap", "True", "False", "ok"]
