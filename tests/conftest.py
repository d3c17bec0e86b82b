"""Shared fixtures: build artifacts, BPF availability, tracefs/bpffs mounts, fd accounting."""

from __future__ import annotations

import importlib.util
import os
import platform
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parent.parent
BUILD = Path(os.environ.get("PYPROBE_BUILD_DIR", ROOT / "build" / "py"))
REQUIRE_BPF = os.environ.get("PYPROBE_REQUIRE_BPF") == "1"


def test_object(name: str) -> Path:
    """Path of a BPF object built from tests/bpf/NAME.bpf.c."""
    path = BUILD / "tests" / "bpf" / f"{name}.bpf.o"
    if not path.exists():
        pytest.fail(f"{path} is missing: build the project first (see README.md)")
    return path


test_object.__test__ = False  # type: ignore[attr-defined]


def target(name: str) -> Path:
    """Path of a target program built from tests/targets/."""
    path = BUILD / "tests" / "targets" / name
    if not path.exists():
        pytest.fail(f"{path} is missing: build the project first (see README.md)")
    return path


def import_file(path: Path) -> ModuleType:
    """Imports the Python file at ``path`` as the module named by its stem (a generated skeleton)."""
    spec = importlib.util.spec_from_file_location(path.stem, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[path.stem] = module
    spec.loader.exec_module(module)
    return module


def _mount(fstype: str, where: str) -> None:
    if os.path.ismount(where) or not os.path.isdir(where) or os.geteuid() != 0:
        return
    subprocess.run(["mount", "-t", fstype, fstype, where], check=False, capture_output=True)


def _bpf_unavailable() -> str | None:
    """Why BPF cannot be used here, or None when it can."""
    if os.geteuid() != 0:
        return "not root"
    if not os.path.exists("/sys/kernel/btf/vmlinux"):
        return "the kernel has no BTF (/sys/kernel/btf/vmlinux)"
    try:
        import pyprobe

        with pyprobe.load(test_object("minimal")):
            pass
    except Exception as exc:  # the reason is what the report needs
        return f"cannot load a BPF object: {exc}"
    return None


_REASON: list[str | None] = []


def bpf_unavailable() -> str | None:
    if not _REASON:
        _REASON.append(_bpf_unavailable())
    return _REASON[0]


def pytest_configure(config: pytest.Config) -> None:
    _mount("tracefs", "/sys/kernel/tracing")
    _mount("bpf", "/sys/fs/bpf")
    _mount("securityfs", "/sys/kernel/security")  # lets pyprobe.features name the lockdown mode


# Markers of tests that need a kernel feature: a test runs where the feature probe finds it, is
# skipped where its absence is explained (an older kernel, a config option off, lockdown) and
# fails where the feature should be there but is not.
FEATURE_MARKERS = ("kprobe", "fentry", "fmod_ret", "freplace", "lsm", "uprobe_multi")


def need_feature(name: str) -> None:
    """Skips where the kernel lacks feature ``name`` for a known reason; fails where it should have it."""
    from pyprobe import features

    status = features.probe(name)
    if status.available:
        return
    if status.explained:
        pytest.skip(f"kernel lacks {name}: {status.reason}")
    pytest.fail(f"kernel feature {name} should be available but is not: {status.reason}", pytrace=False)


def _feature_gate(item: pytest.Item) -> None:
    for name in FEATURE_MARKERS:
        if item.get_closest_marker(name) is not None:
            need_feature(name)


def pytest_report_header(config: pytest.Config) -> list[str]:
    import pyprobe

    caps = "?"
    try:
        with open("/proc/self/status") as f:
            caps = next(line.split()[1] for line in f if line.startswith("CapEff:"))
    except OSError:
        pass
    try:
        lockdown = Path("/sys/kernel/security/lockdown").read_text().strip()
    except OSError:
        lockdown = "unknown"
    return [
        f"kernel: {platform.release()}, libbpf {pyprobe.libbpf_version()}, euid {os.geteuid()}, CapEff {caps}",
        f"lockdown: {lockdown}, PYPROBE_REQUIRE_BPF={int(REQUIRE_BPF)}, build dir {BUILD}",
        *_feature_lines(),
    ]


def _feature_lines() -> list[str]:
    """What pyprobe.features finds on this kernel: one line of features, one per missing feature."""
    if os.geteuid() != 0:
        return ["features: not probed (not root)"]
    from pyprobe import features

    statuses = [features.probe(name) for name in features.FEATURES]
    lines = ["features: " + " ".join(s.feature.name for s in statuses if s.available)]
    lines += [f"  missing {s.feature.name}: {s.reason} [{s.cause}]" for s in statuses if not s.available]
    return lines


def pytest_runtest_setup(item: pytest.Item) -> None:
    if item.get_closest_marker("bpf") is None:
        return
    reason = bpf_unavailable()
    if reason is None:
        _feature_gate(item)
        return
    if REQUIRE_BPF:
        pytest.fail(f"BPF is required (PYPROBE_REQUIRE_BPF=1) but unavailable: {reason}", pytrace=False)
    pytest.skip(f"needs BPF: {reason}")


def open_fds() -> set[int]:
    """The fds this process has open now."""
    return {int(n) for n in os.listdir("/proc/self/fd")}


def fd_targets(fds: set[int]) -> dict[int, str]:
    out = {}
    for fd in fds:
        try:
            out[fd] = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            out[fd] = "?"
    return out


@pytest.fixture
def no_fd_leak() -> Iterator[None]:
    """Fails the test when it leaves more fds open than it found."""
    before = open_fds()
    yield
    leaked = open_fds() - before
    assert not leaked, f"leaked fds: {fd_targets(leaked)}"


@pytest.fixture
def utest() -> Iterator[subprocess.Popen[bytes]]:
    """The C++ target running its loop slowly until the test ends."""
    proc = subprocess.Popen([str(target("utest")), "-1", "1000"], stdout=subprocess.DEVNULL)
    yield proc
    proc.kill()
    proc.wait()


def start(name: str, *args: str) -> subprocess.Popen[bytes]:
    """Starts target program NAME with ARGS; its first output line (``NAME pid N``) is read, so it runs."""
    proc = subprocess.Popen([str(target(name)), *args], stdout=subprocess.PIPE)
    assert proc.stdout is not None
    proc.stdout.readline()
    return proc


def stop(proc: subprocess.Popen[bytes]) -> None:
    proc.kill()
    proc.wait()
    if proc.stdout is not None:
        proc.stdout.close()
