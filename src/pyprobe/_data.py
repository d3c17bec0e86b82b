"""Where the files installed with the package live: precompiled probes and the demo target."""

from __future__ import annotations

from pathlib import Path

import pyprobe

__all__ = ["probe_path", "target_path"]


def _find(kind: str, name: str) -> Path:
    for base in pyprobe.__path__:
        candidate = Path(base) / kind / name
        if candidate.exists():
            return candidate
    raise FileNotFoundError(f"pyprobe's {kind}/{name} is not installed (looked in {', '.join(pyprobe.__path__)})")


def probe_path(name: str) -> Path:
    """The path of a precompiled probe shipped with pyprobe, e.g. ``probe_path("demo")``."""
    return _find("bpf", name if name.endswith(".bpf.o") else f"{name}.bpf.o")


def target_path(name: str) -> Path:
    """The path of a bundled target program, e.g. ``target_path("utest")``."""
    return _find("targets", name)
