"""Handlers for SEC() names libbpf does not know (``libbpf_register_prog_handler``, libbpf 1.0).

Objects written for other loaders use sections libbpf 1.4 refuses to guess a program type
from: ``SEC("xdp/lo")`` (iproute2, ebpf_exporter), ``SEC("perf_event/type=1,config=0")``, or a
project's own ``SEC("myprobe/...")``. :func:`register_section_handler` maps such a section to a
program type and expected attach type for every object opened while it is registered, and may
give ``program.attach()`` / ``obj.attach()`` a way to attach it::

    handler = pyprobe.register_section_handler(
        "xdp/", "xdp", "xdp", attach=lambda prog, iface: prog.attach_xdp(iface)
    )
    with handler, pyprobe.load("exporter.bpf.o") as obj:
        obj.attach()            # SEC("xdp/lo") attached to lo

libbpf keeps a pointer into its handler table in each program it matched, and moves that table
when a handler is added or removed; pyprobe clears those pointers right after open (the type and
attach type stay set), so closing a handler, or registering another, never leaves a program
pointing at freed memory. Registration and open are serialized by one lock.
"""

from __future__ import annotations

import errno
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from pyprobe._ffi import ffi, lib
from pyprobe._resource import Resource
from pyprobe.enums import AttachType, ProgramType
from pyprobe.errors import BpfError

if TYPE_CHECKING:
    from pyprobe.link import Link
    from pyprobe.object import BpfObject
    from pyprobe.program import Program

__all__ = ["SectionHandler", "register_section_handler"]

AttachFn = Callable[["Program", str], "Link"]

_lock = threading.RLock()
"""Held by every registration, unregistration and bpf_object__open (libbpf's table is not thread-safe)."""
_handlers: list[SectionHandler] = []
"""Registered handlers, in libbpf's matching order (registration order)."""


class SectionHandler(Resource):
    """A registered SEC() handler: ``section`` (``"xdp/"``, ``"myprobe+"``, ``"exact"``), ``program_type``,
    ``attach_type`` and the optional ``attach`` function; :meth:`close` (or ``with``) unregisters it.

    Objects opened while it is registered keep the type it gave their
    programs after it is closed; only objects opened later no longer match.
    """

    def __init__(
        self, section: str, program_type: ProgramType, attach_type: AttachType, attach: AttachFn | None
    ) -> None:
        self.section = section
        self.program_type = program_type
        self.attach_type = attach_type
        self.attach = attach
        with _lock:
            handler_id = int(
                lib.libbpf_register_prog_handler(section.encode(), int(program_type), int(attach_type), ffi.NULL)
            )
            if handler_id < 0:
                raise BpfError(-handler_id, f"libbpf refused the handler for SEC(\"{section}\")",
                               context="register section handler")  # fmt: skip
            self.handler_id = handler_id
            _handlers.append(self)

        def release() -> None:
            with _lock:
                lib.libbpf_unregister_prog_handler(handler_id)
                for i, handler in enumerate(_handlers):
                    if handler.handler_id == handler_id:
                        del _handlers[i]
                        break

        self._own(release, f'section handler SEC("{section}")')

    def match(self, section: str) -> str | None:
        """The target part of ``section`` (after the prefix and its slash) when this handler matches it, else None.

        libbpf's rules: ``"abc/"`` matches ``abc/ANYTHING``; ``"abc+"`` matches
        ``abc`` and ``abc/ANYTHING``; ``"abc"`` matches ``abc`` only.
        """
        sec = self.section
        if sec.endswith("/"):
            return section[len(sec) :] if section.startswith(sec) and len(section) > len(sec) else None
        if sec.endswith("+"):
            stem = sec[:-1]
            if section == stem:
                return ""
            return section[len(stem) + 1 :] if section.startswith(stem + "/") else None
        return "" if section == sec else None

    def __repr__(self) -> str:
        state = "closed" if self.closed else f"id={self.handler_id}"
        return (
            f"<SectionHandler SEC({self.section!r}) -> {self.program_type.name.lower()}"
            f"/{self.attach_type.name.lower()} {state}>"
        )


def register_section_handler(
    section: str,
    program_type: ProgramType | str | int,
    attach_type: AttachType | str | int | None = None,
    *,
    attach: AttachFn | None = None,
) -> SectionHandler:
    """Makes libbpf give programs in ``section`` the ``program_type`` and expected ``attach_type``.

    ``section`` is ``"prefix/"`` (matches ``SEC("prefix/ANYTHING")``),
    ``"prefix+"`` (also ``SEC("prefix")``) or an exact name. ``attach``,
    if given, is called as ``attach(program, target)`` by
    ``program.attach()`` and ``obj.attach()`` (``target``: what follows the
    prefix, e.g. ``lo`` for ``SEC("xdp/lo")``) and returns the link.
    Objects must be opened after the registration. Returns the
    :class:`SectionHandler` that owns the registration; its ``close()``
    unregisters it. Raises ValueError for an empty section or unknown type
    names, :class:`BpfError` when libbpf refuses (e.g. EINVAL).
    """
    if not isinstance(section, str) or not section.strip("/+"):
        raise ValueError(f"section must be a non-empty SEC() name or prefix, not {section!r}")
    if attach is not None and not callable(attach):
        raise TypeError(f"attach must be callable(program, target) -> Link, not {type(attach).__name__}")
    ptype = ProgramType(int(ProgramType.parse(program_type)))
    atype = AttachType(int(AttachType.parse(attach_type))) if attach_type is not None else AttachType(0)
    return SectionHandler(section, ptype, atype, attach)


def find(section: str) -> tuple[SectionHandler, str] | None:
    """The first registered handler that matches ``section`` (as libbpf matches them) and the target."""
    with _lock:
        for handler in _handlers:
            target = handler.match(section)
            if target is not None and not handler.closed:
                return handler, target
    return None


def opening() -> Any:
    """The lock ``pyprobe.open`` holds around libbpf's open (which reads the handler table)."""
    return _lock


def settle(obj: BpfObject) -> None:
    """Clears libbpf's pointer into its handler table in each program of ``obj`` a handler matched.

    ``bpf_program__set_type`` forgets the program's handler when the type
    changes: set to UNSPEC and back, it keeps the type and expected attach
    type the handler gave and no longer points into the table libbpf moves
    on every registration.
    """
    for prog in obj.programs.values():
        if find(prog.section) is None:
            continue
        ptype = int(prog._call(lib.bpf_program__type))
        if ptype == 0:
            continue
        prog._call(lib.bpf_program__set_type, 0)
        prog._call(lib.bpf_program__set_type, ptype)


def auto_attach(program: Program, section: str) -> Link | None:
    """The link a handler's ``attach`` function makes for ``program``; None without a matching handler or function."""
    found = find(section)
    if found is None:
        return None
    handler, target = found
    attach = handler.attach
    if attach is None:
        return None
    link = attach(program, target)
    from pyprobe.link import Link

    if not isinstance(link, Link):
        raise BpfError(
            errno.EINVAL, f"the attach function of the handler for SEC(\"{handler.section}\") returned "
            f"{type(link).__name__}, not a Link", context=f"attach program '{program.name}'",
        )  # fmt: skip
    return link
