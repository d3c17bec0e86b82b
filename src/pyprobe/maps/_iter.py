"""Python faces of user ring buffers (Linux 6.1), struct_ops maps (5.6) and arenas (6.9)."""

from __future__ import annotations

import errno
import importlib
from typing import TYPE_CHECKING, Any, TypeVar, overload

from pyprobe._ffi import ffi, lib
from pyprobe.enums import MapType
from pyprobe.errors import AttachError, BpfError, MapError, check_ptr
from pyprobe.maps._base import Map
from pyprobe.maps._kinds import _EventMap

if TYPE_CHECKING:
    from pyprobe.attach.struct_ops import StructOpsLink
    from pyprobe.user_ringbuf import UserRingBuffer

__all__ = ["ArenaMap", "StructOpsMap", "UserRingBufMap"]

E = TypeVar("E")
T = TypeVar("T")


class UserRingBufMap(_EventMap[E]):
    """BPF_MAP_TYPE_USER_RINGBUF (Linux 6.1): user space writes records through :meth:`writer`, a BPF
    program drains them with ``bpf_user_ringbuf_drain``; ``UserRingBufMap[E]`` carries ``E`` records."""

    @overload
    def writer(self, *, record_type: None = None) -> UserRingBuffer[E]: ...
    @overload
    def writer(self, *, record_type: type[T]) -> UserRingBuffer[T]: ...
    @overload
    def writer(self, *, record_type: str) -> UserRingBuffer[Any]: ...
    def writer(self, *, record_type: type[Any] | str | None = None) -> UserRingBuffer[Any]:
        """A :class:`~pyprobe.UserRingBuffer` writing into this map (see there for what it owns, blocks on and raises).

        ``record_type`` (a ctypes type, a BTF type name, or ``bytes`` for any
        size) fixes the size of every record; without one, the map's record
        type (``set_types(value_type=...)`` or ``PYPROBE_EVENT_TYPE``), if any.
        """
        module = importlib.import_module("pyprobe.user_ringbuf")
        writer: UserRingBuffer[Any] = module.UserRingBuffer(self, record_type=record_type)
        return writer


class StructOpsMap(Map):
    """BPF_MAP_TYPE_STRUCT_OPS (Linux 5.6): a kernel ops table (``tcp_congestion_ops``...) of BPF programs.

    Declared in ``SEC(".struct_ops.link")`` (Linux 6.4: registered through a
    link) or ``SEC(".struct_ops")`` (registered by a map update); loading
    the object creates it, :meth:`attach` registers it with the kernel.
    """

    def attach(self) -> StructOpsLink:
        """Registers the ops table with the kernel (``bpf_map__attach_struct_ops``); the link's close unregisters it.

        The link belongs to the map's object (closed with it). Raises
        :class:`~pyprobe.UnsupportedError` where the kernel has no struct_ops
        (or no struct_ops links for a ``.struct_ops.link`` map), AttachError
        otherwise (EEXIST: an ops table of that name is registered already,
        e.g. a congestion control of that name).
        """
        module = importlib.import_module("pyprobe.attach.struct_ops")
        context = f"attach struct_ops map '{self.name}'"
        obj = self._object
        if obj is None:
            raise BpfError(errno.EINVAL, "a struct_ops map registers through the object that declares it",
                           context=context, hint="load the object and attach obj.maps[NAME]")  # fmt: skip
        with self._guard:
            self._loaded_fd(context)
            ptr = lib.bpf_map__attach_struct_ops(self._ptr)
            err = ffi.errno
        if ptr == ffi.NULL:
            if err in (errno.EPERM, errno.EOPNOTSUPP, errno.ENOTSUP, 524):
                from pyprobe import features

                features.require("struct_ops", context)
            check_ptr(ptr, context, AttachError)
        link: StructOpsLink = module.StructOpsLink(ptr, None, description=f"struct_ops map '{self.name}'",
                                                   owner=obj, map_name=self.name)  # fmt: skip
        return link


class ArenaMap(Map):
    """BPF_MAP_TYPE_ARENA (Linux 6.9; libbpf 1.4 maps it at load): memory shared by BPF programs and
    user space, ``max_entries`` pages. :meth:`read` and :meth:`write` reach it by offset (a page the BPF
    side has not allocated reads as zeros: the kernel allocates it on touch); no raw view of it is
    handed out, so no access can outlive the object's mapping."""

    def _region(self, offset: int, size: int, doing: str) -> Any:
        if (
            isinstance(offset, bool)
            or not isinstance(offset, int)
            or isinstance(size, bool)
            or not isinstance(size, int)
        ):
            raise TypeError(f"{doing}: offset and size are ints")
        if self._object is None:
            raise MapError(
                errno.EOPNOTSUPP, "only the object that declares an arena maps it into this process", context=doing,
                hint="use obj.maps[NAME] of the loaded object",
            )  # fmt: skip
        base = self._call(lib.bpf_map__initial_value, ffi.new("size_t *"))
        if base == ffi.NULL:
            raise MapError(errno.ENODEV, "the arena is not mapped (load the object first)", context=doing)
        total = self.size
        if offset < 0 or size < 0 or offset + size > total:
            raise ValueError(f"{doing}: {size} bytes at offset {offset} are outside the arena's {total} bytes")
        return ffi.cast("char *", base) + offset

    @property
    def size(self) -> int:
        """The arena's size in bytes (``max_entries`` pages)."""
        return self.max_entries * _page_size()

    def read(self, offset: int, size: int) -> bytes:
        """``size`` bytes of the arena at ``offset`` (a copy)."""
        doing = f"read arena '{self.name}'"
        with self._guard:
            return bytes(ffi.buffer(self._region(offset, size, doing), size))

    def write(self, offset: int, data: bytes | bytearray | memoryview) -> None:
        """Copies ``data`` into the arena at ``offset``."""
        doing = f"write arena '{self.name}'"
        raw = bytes(data)
        with self._guard:
            ffi.memmove(self._region(offset, len(raw), doing), raw, len(raw))


def _page_size() -> int:
    import mmap

    return mmap.PAGESIZE


Map._classes.update(
    {
        MapType.USER_RINGBUF: UserRingBufMap,
        MapType.STRUCT_OPS: StructOpsMap,
        MapType.ARENA: ArenaMap,
    }
)
