"""pyprobe's CMake package: find_package(pyprobe) and pyprobe_add_probes() build another project's probes.

The example project examples/tool (opencount) is built into a wheel by
scikit-build-core, which finds the package through pyprobe's ``cmake.prefix``
entry point, and the tool then counts this process's openat() calls. CI also
builds it with build isolation against the pyprobe wheel (tests/package/tool.sh).
"""

from __future__ import annotations

import importlib.metadata
import importlib.resources
import importlib.util
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import pyprobe

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "tool"
CMAKE = shutil.which("cmake") or "cmake"


GENERATORS = ["Unix Makefiles", *(["Ninja"] if shutil.which("ninja") else [])]


def _configure(
    source: Path, build: Path, *options: str, env: dict[str, str] | None = None, generator: str | None = None
) -> subprocess.CompletedProcess[str]:
    generator = generator or GENERATORS[-1]
    return subprocess.run(
        [
            CMAKE,
            "-S",
            str(source),
            "-B",
            str(build),
            "-G",
            generator,
            f"-Dpyprobe_DIR={pyprobe.cmake_dir()}",
            *options,
        ],
        capture_output=True,
        text=True,
        check=False,
        env=env,
    )


def _words(text: str) -> str:
    return " ".join(text.split())  # CMake wraps its messages


def test_cmake_dir_holds_the_config_and_its_version() -> None:
    directory = Path(pyprobe.cmake_dir())
    assert (directory / "pyprobeConfig.cmake").is_file()
    version = (directory / "pyprobeConfigVersion.cmake").read_text()
    assert f'set(PACKAGE_VERSION "{pyprobe.__version__}")' in version
    out = subprocess.run(
        [sys.executable, "-m", "pyprobe", "cmake-dir"], capture_output=True, text=True, check=True, cwd="/"
    )
    assert out.stdout == f"{directory}\n"


def test_scikit_build_core_entry_point_names_the_cmake_dir() -> None:
    points = [ep for ep in importlib.metadata.entry_points(group="cmake.prefix") if ep.name == "pyprobe"]
    assert len(points) == 1, points
    module = points[0].load()
    assert Path(str(importlib.resources.files(module))) == Path(pyprobe.cmake_dir())


def test_unknown_arch_is_a_clear_error(tmp_path: Path) -> None:
    out = _configure(EXAMPLE, tmp_path / "build", "-DPYPROBE_BPF_ARCH=mips")
    assert out.returncode != 0
    message = _words(out.stderr)
    assert "pyprobe: no vmlinux.h for the BPF architecture 'mips'" in message, out.stderr
    assert "x86" in message and "arm64" in message and "Set PYPROBE_BPF_ARCH" in message


def test_missing_clang_names_the_package_to_install(tmp_path: Path) -> None:
    empty = tmp_path / "bin"
    empty.mkdir()
    env = {**os.environ, "PATH": str(empty)}
    program = shutil.which("ninja" if GENERATORS[-1] == "Ninja" else "make")  # found before PATH goes
    options = ("-DCMAKE_FIND_USE_CMAKE_SYSTEM_PATH=OFF", f"-DCMAKE_MAKE_PROGRAM={program}")
    out = _configure(EXAMPLE, tmp_path / "build", *options, env=env)
    assert out.returncode != 0
    message = _words(out.stderr)
    assert "pyprobe: clang not found" in message, out.stderr
    assert "apt-get install clang llvm" in message and "PYPROBE_CLANG" in message


def test_bad_arguments_are_named(tmp_path: Path) -> None:
    project = tmp_path / "proj"
    project.mkdir()
    (project / "CMakeLists.txt").write_text(
        "cmake_minimum_required(VERSION 3.20)\nproject(t LANGUAGES NONE)\nfind_package(pyprobe REQUIRED)\n"
        "pyprobe_add_probes(probes SOURCES missing.bpf.c PACKAGE_DIR pkg)\n"
    )
    out = _configure(project, tmp_path / "build")
    assert out.returncode != 0
    assert "pyprobe_add_probes(probes): no such source:" in _words(out.stderr), out.stderr
    (project / "CMakeLists.txt").write_text(
        "cmake_minimum_required(VERSION 3.20)\nproject(t LANGUAGES NONE)\nfind_package(pyprobe REQUIRED)\n"
        "pyprobe_add_probes(probes SOURCES missing.bpf.c)\n"
    )
    out = _configure(project, tmp_path / "build2")
    assert "pyprobe_add_probes(probes): PACKAGE_DIR is missing" in _words(out.stderr), out.stderr


@pytest.mark.parametrize("generator", GENERATORS)
def test_probes_rebuild_when_a_header_changes(tmp_path: Path, generator: str) -> None:
    """INCLUDE_DIRS, DEFINES and clang's depfile: editing an included header rebuilds object and skeleton."""
    project = tmp_path / "proj"
    (project / "inc").mkdir(parents=True)
    (project / "CMakeLists.txt").write_text(
        "cmake_minimum_required(VERSION 3.20)\nproject(t LANGUAGES NONE)\nfind_package(pyprobe 0.1 REQUIRED)\n"
        "pyprobe_add_probes(probes SOURCES answer.bpf.c PACKAGE_DIR pkg INCLUDE_DIRS inc DEFINES ANSWER=40)\n"
    )
    (project / "answer.bpf.c").write_text(
        '#include <pyprobe/common.h>\n#include "extra.h"\n'
        'char LICENSE[] SEC("license") = "GPL";\n'
        "const volatile int answer = ANSWER + EXTRA;\n"
        'SEC("syscall") int run(void *ctx) { return answer; }\n'
    )
    header = project / "inc" / "extra.h"
    header.write_text("#define EXTRA 2\n")
    build = tmp_path / "build"
    out = _configure(project, build, generator=generator)
    assert out.returncode == 0, out.stderr
    assert f"pyprobe {pyprobe.__version__}:" in out.stdout

    def built() -> int:
        done = subprocess.run([CMAKE, "--build", str(build)], capture_output=True, text=True, check=False)
        assert done.returncode == 0, done.stdout + done.stderr
        with pyprobe.open(build / "probes" / "answer.bpf.o") as obj:
            value = obj.rodata.answer
        assert isinstance(value, int)
        return value

    assert built() == 42
    depends = (build / "probes" / "answer.bpf.o.d").read_text().replace("\\\n", " ").split()
    include = Path(pyprobe.include_dir())
    for name in ("pyprobe/common.h", "bpf/bpf_helpers.h", "vmlinux/x86/vmlinux.h"):
        (found,) = [Path(d) for d in depends if d.endswith(name)]
        assert found == include / name  # the installed package's headers, never the tree's or the system's
    assert str(project / "inc" / "extra.h") in depends
    skeleton = build / "probes" / "answer_skel.py"
    assert "class AnswerSkeleton(Skeleton)" in skeleton.read_text()
    first = skeleton.stat().st_mtime_ns
    header.write_text("#define EXTRA 3\n")
    assert built() == 43
    assert skeleton.stat().st_mtime_ns != first

    install = subprocess.run(
        [CMAKE, "--install", str(build), "--prefix", str(tmp_path / "prefix")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert install.returncode == 0, install.stderr
    assert sorted(p.name for p in (tmp_path / "prefix" / "pkg").iterdir()) == ["answer.bpf.o", "answer_skel.py"]


@pytest.mark.bpf
def test_example_tool_builds_its_wheel_and_counts_opens(tmp_path: Path) -> None:
    """scikit-build-core (no options: the entry point) builds opencount's wheel; the installed tool counts opens."""
    wheels = tmp_path / "wheels"
    built = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-build-isolation", "--no-deps", str(EXAMPLE),
         "-w", str(wheels)],
        capture_output=True, text=True, check=False, cwd=tmp_path,
    )  # fmt: skip
    assert built.returncode == 0, built.stderr
    (wheel,) = wheels.glob("opencount-*-py3-none-linux_*.whl")
    site = tmp_path / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(site), str(wheel)],
        capture_output=True, check=True, cwd=tmp_path,
    )  # fmt: skip
    assert (site / "opencount" / "opencount.bpf.o").is_file()
    assert "class OpencountSkeleton(Skeleton)" in (site / "opencount" / "opencount_skel.py").read_text()

    marker = tmp_path / "opened-by-the-test"
    marker.write_text("")
    env = {**os.environ, "PYTHONPATH": str(site)}
    tool = subprocess.Popen(
        [sys.executable, "-m", "opencount", "--duration", "1.5", "--top", "1000000", "--json"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=tmp_path,
    )  # fmt: skip
    assert tool.stderr is not None
    line = tool.stderr.readline()
    assert "counting openat()" in line, line + tool.stderr.read()
    for _ in range(50):
        with open(marker):
            pass
    stdout, stderr = tool.communicate(timeout=30)
    assert tool.returncode == 0, stderr
    doc = json.loads(stdout)
    mine = [p for p in doc["processes"] if p["pid"] == os.getpid()]
    assert mine, f"opencount did not see pid {os.getpid()} among {len(doc['processes'])} processes"
    assert mine[0]["count"] >= 50
    assert mine[0]["last_path"] == str(marker)
    assert importlib.util.find_spec("opencount") is None  # built and run outside this environment
