"""cffi builder of ``pyprobe._libbpf`` (API mode, linked against libbpf.so.1).

Run by the CMake build: ``python build.py OUT.c`` writes the extension's C
source. Declarations live in ``cdefs/*.h`` (one file per libbpf topic), C
helpers for hot paths in ``csrc/*.c``; both are read in name order.
"""

from __future__ import annotations

import sys
from pathlib import Path

import cffi

HERE = Path(__file__).resolve().parent

PRELUDE = """
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>
#include <bpf/bpf.h>
#include <bpf/btf.h>
#include <bpf/libbpf.h>
#include <bpf/libbpf_version.h>
"""


def make_ffi() -> cffi.FFI:
    ffi = cffi.FFI()
    ffi.cdef("\n".join(p.read_text() for p in sorted((HERE / "cdefs").glob("*.h"))))
    source = PRELUDE + "\n".join(p.read_text() for p in sorted((HERE / "csrc").glob("*.c")))
    ffi.set_source("pyprobe._libbpf", source, libraries=["bpf"])
    return ffi


def main() -> None:
    if len(sys.argv) != 2:
        sys.exit("usage: build.py OUT.c")
    make_ffi().emit_c_code(sys.argv[1])


if __name__ == "__main__":
    main()
