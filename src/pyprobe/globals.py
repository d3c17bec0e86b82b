"""Global variables of a BPF object (``.bss``, ``.data``, ``.rodata``) by attribute, typed from BTF.

Before load the attributes read and write the initial image libbpf will
load. After load, ``bss`` and ``data`` read and write the kernel's memory
directly through the map libbpf mmap'ed, so a BPF program sees a change at
once and Python sees the program's writes; ``rodata`` is frozen at load and
raises on assignment after it. Reads return copies (a struct read is a
snapshot: assign the whole struct back to change it).
"""

from __future__ import annotations

import errno
from typing import TYPE_CHECKING, Any

from pyprobe._ffi import ffi, lib
from pyprobe.errors import BpfError, check_int
from pyprobe.maps._codec import Codec

if TYPE_CHECKING:
    from pyprobe.object import BpfObject

__all__ = ["GlobalVariables"]


class GlobalVariables:
    """The variables of one data section of a :class:`~pyprobe.BpfObject`; they keep the object alive."""

    __slots__ = ("_codecs", "_map", "_object", "_remapped", "_section")

    def __init__(self, obj: BpfObject, section: str, map_ptr: Any, variables: dict[str, tuple[int, Any]]) -> None:
        object.__setattr__(self, "_object", obj)
        object.__setattr__(self, "_section", section)
        object.__setattr__(self, "_map", map_ptr)
        object.__setattr__(self, "_remapped", False)
        codecs = {
            name: (offset, Codec(ctype, _sizeof(ctype), f"global '{name}' in {section}"))
            for name, (offset, ctype) in variables.items()
        }
        object.__setattr__(self, "_codecs", codecs)

    def _variable(self, name: str) -> tuple[int, Codec]:
        try:
            return self._codecs[name]  # type: ignore[no-any-return]
        except KeyError:
            known = ", ".join(self._codecs) or "none"
            raise AttributeError(
                f"object '{self._object.name}' has no global {name!r} in {self._section} (it has: {known})"
            ) from None

    def _memory(self, doing: str) -> Any:
        """The section's memory and size, for use inside ``with self._object._guard:`` (it may be unmapped after)."""
        if self._map is None:
            raise BpfError(errno.ENOENT, f"the object has no {self._section} section", context=doing)
        if self._object._loaded and not self._remapped:
            writable = 0 if self._section.startswith(".rodata") else 1
            check_int(lib.pyprobe_map_remap(self._map, writable), f"map {self._section} of the loaded object", BpfError)
            object.__setattr__(self, "_remapped", True)
        size = ffi.new("size_t *")
        ptr = lib.bpf_map__initial_value(self._map, size)
        if ptr == ffi.NULL:
            raise BpfError(errno.EFAULT, f"{self._section} is not mapped", context=doing)
        return ffi.cast("char *", ptr), int(size[0])

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        offset, codec = self._variable(name)
        with self._object._guard:  # close() in another thread unmaps the memory only after the copy
            ptr, size = self._memory(f"read global '{name}'")
            if offset + codec.size > size:
                raise BpfError(errno.EFAULT, f"global '{name}' lies outside {self._section}", context="read global")
            raw = ffi.buffer(ptr + offset, codec.size)[:]
        return codec.decode(raw)

    def __setattr__(self, name: str, value: Any) -> None:
        offset, codec = self._variable(name)
        raw = codec.encode(value)  # TypeError / ValueError before touching memory
        doing = f"set global '{name}' in {self._section}"
        if self._section.startswith(".rodata") and self._object.state == "loaded":
            raise BpfError(
                errno.EPERM, "read-only data is frozen at load: set it between open() and load()", context=doing
            )
        with self._object._guard:
            ptr, size = self._memory(doing)
            if offset + len(raw) > size:
                raise BpfError(errno.EFAULT, f"global '{name}' lies outside {self._section}", context=doing)
            ffi.memmove(ptr + offset, raw, len(raw))

    def __contains__(self, name: object) -> bool:
        return name in self._codecs

    def __dir__(self) -> list[str]:
        return sorted(self._codecs)

    def to_dict(self) -> dict[str, Any]:
        """Every variable's current value."""
        return {name: getattr(self, name) for name in self._codecs}

    def __repr__(self) -> str:
        return f"<GlobalVariables {self._section} of {self._object.name!r}: {', '.join(self._codecs)}>"


def _sizeof(ctype: Any) -> int:
    import ctypes

    return ctypes.sizeof(ctype)
