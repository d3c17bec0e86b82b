"""struct_ops (Linux 5.6): the link that keeps a BPF ops table registered (``StructOpsMap.attach()``)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pyprobe._ffi import lib
from pyprobe._resource import ClosedError, Resource
from pyprobe.link import Link

if TYPE_CHECKING:
    from pyprobe.attach._base import ProgramCore
    from pyprobe.object import BpfObject

__all__ = ["StructOpsLink"]


class StructOpsLink(Link):
    """A registered struct_ops map (a ``tcp_congestion_ops`` in BPF...): ``map_name``; ``close()`` unregisters it.

    For a ``SEC(".struct_ops.link")`` map it is a kernel link (Linux 6.4,
    pinnable); for a ``SEC(".struct_ops")`` map libbpf's stand-in whose
    close deletes the map's element, which unregisters the table. It
    belongs to the map's object (closed with it) and holds the object open
    while a call on it runs. ``program`` is None: the table has several.
    """

    def __init__(
        self, ptr: Any, program: ProgramCore | None, *, description: str = "", owner: BpfObject | None = None,
        map_name: str | None = None,
    ) -> None:  # fmt: skip
        if owner is None:  # a link opened from a pin
            super().__init__(ptr, program, description=description)
        else:
            self._ptr = ptr
            self._also = ()
            self.program = None
            self.description = description
            self._own(lambda: lib.bpf_link__destroy(ptr), description, owner._guard)
            try:
                owner._adopt_link(self)
            except ClosedError:
                Resource.close(self)
                raise
        self._owner = owner
        self.map_name = map_name

    def close(self) -> None:
        """Unregisters the ops table. Calling it again does nothing."""
        if self.closed:
            return
        Resource.close(self)
        if self._owner is not None:
            self._owner._forget_link(self)
