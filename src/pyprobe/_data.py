"""Where the files installed with the package live: precompiled probes and the demo target."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

import pyprobe

if TYPE_CHECKING:
    from pathlib import Path

__all__ = ["probe_file", "probe_path", "target_path"]


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
