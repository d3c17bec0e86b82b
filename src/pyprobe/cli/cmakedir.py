"""``pyprobe cmake-dir``: print the directory of pyprobe's CMake package.

Another project's build finds pyprobe with it
(``cmake -Dpyprobe_DIR=$(pyprobe cmake-dir)``), then ``find_package(pyprobe)``
and ``pyprobe_add_probes()`` compile its probes and generate their skeletons.
Under scikit-build-core no option is needed: pyprobe's ``cmake.prefix`` entry
point puts the directory on ``CMAKE_PREFIX_PATH``.
"""

from __future__ import annotations

import argparse
from typing import Any

__all__ = ["add_parser", "run"]


def add_parser(sub: Any) -> None:
    p = sub.add_parser(
        "cmake-dir",
        help="print the directory of pyprobe's CMake package (for -Dpyprobe_DIR=...)",
        description="Print the directory holding pyprobeConfig.cmake, for cmake -Dpyprobe_DIR=$(pyprobe cmake-dir).",
    )
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Prints the directory; raises FileNotFoundError (exit 2) when pyprobe was installed without it."""
    from pyprobe._data import cmake_dir

    print(cmake_dir())
    return 0
