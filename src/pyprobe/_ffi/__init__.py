"""The raw libbpf binding: the only layer that touches ``lib``.

Importing it checks that the libbpf found at run time is the one the
extension was built against, and installs libbpf's print callback.
"""

from __future__ import annotations

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (6 ms): Any is only an annotation here
if TYPE_CHECKING:
    from typing import Any

try:
    from pyprobe._libbpf import ffi as _ffi
    from pyprobe._libbpf import lib as _lib
except ImportError as exc:  # pragma: no cover - depends on the installation
    raise ImportError(
        f"pyprobe's libbpf extension could not be loaded ({exc}); "
        "reinstall pyprobe, or install libbpf 1.4 (libbpf1) if it was built against the system libbpf"
    ) from exc

ffi: Any = _ffi
lib: Any = _lib

BUILT_VERSION = (int(lib.pyprobe_built_major), int(lib.pyprobe_built_minor))
RUNTIME_VERSION = (int(lib.libbpf_major_version()), int(lib.libbpf_minor_version()))

if RUNTIME_VERSION != BUILT_VERSION:
    raise ImportError(
        "pyprobe was built against libbpf {}.{} but the libbpf loaded at run time is {}.{} ({}); "
        "rebuild pyprobe against the installed libbpf or install the libbpf it was built with".format(
            *BUILT_VERSION, *RUNTIME_VERSION, ffi.string(lib.libbpf_version_string()).decode()
        )
    )


def libbpf_version() -> str:
    """The version string of the libbpf in use, e.g. ``"v1.4"``."""
    return str(ffi.string(lib.libbpf_version_string()).decode())


def cstr(value: Any) -> str:
    """A C string as str (empty for NULL)."""
    if value == ffi.NULL:
        return ""
    return str(ffi.string(value).decode("utf-8", "replace"))


__all__ = ["BUILT_VERSION", "RUNTIME_VERSION", "cstr", "ffi", "lib", "libbpf_version"]
