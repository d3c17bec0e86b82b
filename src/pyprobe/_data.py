"""Where the files installed with the package live: precompiled probes, the demo target, the CMake package."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

import pyprobe

if TYPE_CHECKING:
    from pathlib import Path

__all__ = ["cmake_dir", "probe_file", "probe_path", "target_path"]


def _find(kind: str, name: str) -> str:
    for base in pyprobe.__path__:
        candidate = os.path.join(base, kind, name)
        if os.path.exists(candidate):
            return candidate
    raise FileNotFoundError(f"pyprobe's {kind}/{name} is not installed (looked in {', '.join(pyprobe.__path__)})")


def probe_file(name: str) -> str:
    """:func:`probe_path` as a str (without importing pathlib, which the commands' start can do without)."""
    return _find("bpf", name if name.endswith(".bpf.o") else f"{name}.bpf.o")


def probe_path(name: str) -> Path:
    """The path of a precompiled probe shipped with pyprobe, e.g. ``probe_path("demo")``."""
    from pathlib import Path

    return Path(probe_file(name))


def target_path(name: str) -> Path:
    """The path of a bundled target program, e.g. ``target_path("utest")``."""
    from pathlib import Path

    return Path(_find("targets", name))


def cmake_dir() -> str:
    """The directory of pyprobe's CMake package (``pyprobeConfig.cmake``), e.g. for ``-Dpyprobe_DIR=...``.

    ``find_package(pyprobe)`` there defines ``pyprobe_add_probes()``, which
    compiles a project's probes against the headers installed with pyprobe.
    Reads nothing but the file system; raises FileNotFoundError when the
    package was installed without it.
    """
    return os.path.dirname(_find("cmake", "pyprobeConfig.cmake"))
