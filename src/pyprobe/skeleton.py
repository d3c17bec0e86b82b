"""Skeletons: one BPF object's programs, maps and globals as typed attributes.

``pyprobe gen skeleton probe.bpf.o -o probe_skel.py`` writes a subclass of
:class:`Skeleton` whose attributes name the object's programs, maps (with
their typed map classes) and global variables, so that editors complete them
and ``mypy --strict`` checks their use::

    from probe_skel import ProbeSkeleton

    with ProbeSkeleton().open() as skel:
        skel.rodata.target_pid = 1234          # const volatile: before load
        skel.load()
        skel.attach()                          # auto-attach from SEC names
        print(skel.bss.hits, skel.maps.counts.items())

The generated module also holds a class for each struct or union the
object's maps, events and globals use (``struct open_event`` ->
``OpenEvent``, a :class:`~pyprobe.btf.BtfStruct` subclass with typed
members), and declares the maps with them (``events:
pyprobe.RingBufMap[OpenEvent]``): ``skel.maps.NAME`` hands the map these
classes (:meth:`Map.set_types`) the first time it is used, so keys, values
and events decode as instances of them; struct globals read as them too.
:func:`finish_struct` completes each class when the module is imported and
checks its layout against the one BTF gave.

The base class works without generation too: ``Skeleton("probe.bpf.o")``
gives the same attributes at run time (type checkers know only the names a
generated subclass declares, so a misspelt name is a type error there).
"""

from __future__ import annotations

import ctypes
import errno
import os
from collections.abc import Iterator
from types import TracebackType
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

from pyprobe.btf import BtfError, BtfStruct, BtfUnion, _bitfield, _forward
from pyprobe.globals import GlobalVariables
from pyprobe.link import Link
from pyprobe.maps import Map
from pyprobe.object import BpfObject, Source
from pyprobe.object import open as open_object
from pyprobe.program import Program

__all__ = ["Globals", "Links", "Maps", "Programs", "Skeleton", "finish_struct"]

S = TypeVar("S", bound="Skeleton")


class _Namespace:
    """Attribute access to one kind of item of an object; subclasses declare the names with their types."""

    __slots__ = ("_skel_object",)
    _skel_object: BpfObject

    def __init__(self, obj: BpfObject) -> None:
        object.__setattr__(self, "_skel_object", obj)

    def _item(self, name: str) -> Any:
        raise NotImplementedError

    def _names(self) -> list[str]:
        raise NotImplementedError

    if not TYPE_CHECKING:  # type checkers see only the names a generated subclass declares

        def __getattr__(self, name: str) -> Any:
            if name.startswith("__"):
                raise AttributeError(name)
            try:
                return self._item(name)
            except KeyError as exc:
                raise AttributeError(exc.args[0] if exc.args else name) from None

    def __dir__(self) -> list[str]:
        return self._names()

    def __repr__(self) -> str:
        return f"<{type(self).__name__}: {', '.join(self._names())}>"


class Programs(_Namespace):
    """The object's programs by attribute (``skel.progs.handle_tick``): :class:`~pyprobe.Program`."""

    __slots__ = ()

    def _item(self, name: str) -> Program:
        return self._skel_object.programs[name]

    def _names(self) -> list[str]:
        return list(self._skel_object.programs)


class Maps(_Namespace):
    """The object's user maps by attribute (``skel.maps.events``), each of its typed map class.

    ``TYPES`` (set by generated subclasses) maps a map name to its key and
    value classes (None: as BTF makes them); the first access to such a map
    passes them to :meth:`Map.set_types`, which raises ValueError naming the
    map when a class's size differs from the map's.
    """

    __slots__ = ("_skel_typed",)
    _skel_typed: set[str]

    TYPES: ClassVar[dict[str, tuple[type[Any] | None, type[Any] | None]]] = {}

    def __init__(self, obj: BpfObject) -> None:
        super().__init__(obj)
        object.__setattr__(self, "_skel_typed", set())

    def _item(self, name: str) -> Map:
        found = self._skel_object.maps[name]
        if name not in self._skel_typed:
            key_type, value_type = self.TYPES.get(name, (None, None))
            if key_type is not None or value_type is not None:
                found.set_types(key_type=key_type, value_type=value_type)
            self._skel_typed.add(name)
        return found

    def _names(self) -> list[str]:
        return list(self._skel_object.maps)


class Globals:
    """The global variables of one section (``.bss``, ``.data``, ``.rodata``) by attribute.

    Reads and writes go to :class:`~pyprobe.GlobalVariables` (see there for
    when each section is writable); an unknown name raises AttributeError
    listing the section's variables. ``TYPES`` (set by generated subclasses)
    maps the name of a struct variable to its generated class: reads return
    an instance of it (a copy), and an instance of it may be assigned.
    """

    __slots__ = ("_skel_vars",)
    _skel_vars: GlobalVariables

    TYPES: ClassVar[dict[str, type[Any]]] = {}

    def __init__(self, variables: GlobalVariables) -> None:
        object.__setattr__(self, "_skel_vars", variables)

    if not TYPE_CHECKING:  # type checkers see only the names (and types) a generated subclass declares

        def __getattr__(self, name: str) -> Any:
            if name.startswith("__"):
                raise AttributeError(name)
            value = getattr(self._skel_vars, name)
            cls = self.TYPES.get(name)
            if cls is not None and not isinstance(value, cls):
                return cls.from_buffer_copy(bytes(value))
            return value

        def __setattr__(self, name: str, value: Any) -> None:
            cls = self.TYPES.get(name)
            if cls is not None and isinstance(value, cls):
                value = bytes(value)
            setattr(self._skel_vars, name, value)

    def __dir__(self) -> list[str]:
        return dir(self._skel_vars)

    def to_dict(self) -> dict[str, Any]:
        """Every variable's current value."""
        return self._skel_vars.to_dict()

    def __repr__(self) -> str:
        return repr(self._skel_vars)


class Links:
    """The links :meth:`Skeleton.attach` made, by program name (None for a program it did not attach).

    Iterating gives every link; ``len()`` counts them.
    """

    __slots__ = ("_skel_links", "_skel_programs")
    _skel_links: dict[str, Link]
    _skel_programs: list[str]

    def __init__(self, programs: list[str]) -> None:
        object.__setattr__(self, "_skel_programs", programs)
        object.__setattr__(self, "_skel_links", {})

    def _add(self, link: Link) -> None:
        if link.program is not None:
            self._skel_links[link.program.name] = link

    def _clear(self) -> None:
        self._skel_links.clear()

    if not TYPE_CHECKING:  # type checkers see only the names a generated subclass declares

        def __getattr__(self, name: str) -> Link | None:
            if name.startswith("__"):
                raise AttributeError(name)
            if name not in self._skel_programs:
                raise AttributeError(f"no program {name!r} (it has: {', '.join(self._skel_programs) or 'none'})")
            return self._skel_links.get(name)

    def __iter__(self) -> Iterator[Link]:
        return iter(list(self._skel_links.values()))

    def __len__(self) -> int:
        return len(self._skel_links)

    def __dir__(self) -> list[str]:
        return list(self._skel_programs)

    def __repr__(self) -> str:
        return f"<Links: {', '.join(self._skel_links) or 'none'}>"


class Skeleton:
    """One BPF object with its programs, maps and globals as attributes.

    ``Skeleton(source)`` takes a path or the object's bytes; generated
    subclasses know their object (``OBJECT_PATH`` or embedded bytes) and take
    no argument. Nothing happens until :meth:`open` (parse the ELF, no
    privilege needed) and :meth:`load` (create maps, verify programs; opens
    first when needed). Then ``progs``, ``maps``, ``bss``, ``data``,
    ``rodata`` and ``links`` are namespaces over the object.

    The skeleton owns the :class:`~pyprobe.BpfObject` (``obj``) and through
    it every link: :meth:`close` (or leaving a ``with`` block) detaches and
    frees everything. Errors are those of :func:`pyprobe.open`,
    :meth:`BpfObject.load` and :meth:`BpfObject.attach`; using a namespace
    before :meth:`open` raises AttributeError saying so.
    """

    OBJECT_NAME: ClassVar[str | None] = None
    """The object's name (a generated skeleton sets it; None: from the file name)."""
    OBJECT_PATH: ClassVar[str | None] = None
    """Where a generated skeleton finds its object, when it does not embed it."""

    PROGS: ClassVar[type[Programs]] = Programs
    MAPS: ClassVar[type[Maps]] = Maps
    GLOBALS: ClassVar[dict[str, type[Globals]]] = {}
    LINKS: ClassVar[type[Links]] = Links

    progs: Programs
    maps: Maps
    bss: Globals
    data: Globals
    rodata: Globals
    links: Links

    def __init__(self, source: Source | None = None, *, btf_path: str | os.PathLike[str] | None = None) -> None:
        self._source = source
        self._btf_path = btf_path
        self._obj: BpfObject | None = None

    @classmethod
    def object_source(cls) -> Source:
        """The object a skeleton opens when given none: embedded bytes or ``OBJECT_PATH``.

        Raises ValueError when the class has neither (the base class).
        """
        if cls.OBJECT_PATH is None:
            raise ValueError(f"{cls.__name__} has no object: pass a path or bytes, or generate a skeleton")
        return cls.OBJECT_PATH

    @property
    def obj(self) -> BpfObject:
        """The underlying object (after :meth:`open`); raises AttributeError before."""
        if self._obj is None:
            raise AttributeError(f"{type(self).__name__} is not open: call open() or load() first")
        return self._obj

    if not TYPE_CHECKING:

        def __getattr__(self, name: str) -> Any:
            if name in ("progs", "maps", "bss", "data", "rodata", "links"):
                raise AttributeError(f"{type(self).__name__}.{name}: call open() or load() first")
            raise AttributeError(f"{type(self).__name__} has no attribute {name!r}")

    def open(self: S) -> S:
        """Opens the object (no kernel call, no privilege needed); returns ``self``.

        Set ``rodata`` globals, map sizes (``maps.NAME.max_entries``) and
        ``progs.NAME.autoload`` between open and :meth:`load`. Opening twice
        raises ValueError.
        """
        if self._obj is not None:
            raise ValueError(f"{type(self).__name__} is already open")
        source = self._source if self._source is not None else self.object_source()
        kwargs: dict[str, Any] = {}
        if isinstance(source, (bytes, bytearray, memoryview)) and self.OBJECT_NAME:
            kwargs["name"] = self.OBJECT_NAME
        obj = open_object(source, btf_path=self._btf_path, **kwargs)
        self._obj = obj
        self.progs = self.PROGS(obj)
        self.maps = self.MAPS(obj)
        for attr in ("bss", "data", "rodata"):
            cls = self.GLOBALS.get(attr, Globals)
            setattr(self, attr, cls(getattr(obj, attr)))
        self.links = self.LINKS(list(obj.programs))
        return self

    def load(self: S) -> S:
        """Loads the object into the kernel (opening it first if needed); returns ``self``.

        Blocks while the verifier runs. Raises :class:`~pyprobe.LoadError`
        with the verifier log, :class:`~pyprobe.BpfPermissionError`.
        """
        if self._obj is None:
            self.open()
        self.obj.load()
        return self

    def attach(self) -> list[Link]:
        """Auto-attaches every program whose SEC names a full target (see :meth:`BpfObject.attach`).

        Returns the new links, also reachable as ``links.PROGRAM``. Loads
        first if needed. Raises :class:`~pyprobe.AttachError`.
        """
        if self._obj is None or self._obj.state == "opened":
            self.load()
        made = self.obj.attach()
        for link in made:
            self.links._add(link)
        return made

    def detach(self) -> None:
        """Detaches every link :meth:`attach` made (the object stays loaded)."""
        if self._obj is None:
            return
        for link in self.links:
            link.detach()
        self.links._clear()

    def close(self) -> None:
        """Detaches every link and frees the object (idempotent)."""
        if self._obj is not None:
            self._obj.close()
            self.links._clear()

    def __enter__(self: S) -> S:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        state = self._obj.state if self._obj is not None else "not open"
        return f"<{type(self).__name__} {state}>"


def finish_struct(
    cls: type[BtfStruct] | type[BtfUnion],
    size: int,
    offsets: tuple[int, ...],
    *,
    bitfields: tuple[tuple[str, int, int, bool], ...] = (),
    forwards: tuple[tuple[str, str], ...] = (),
) -> None:
    """Completes a struct or union class of a generated module, when the module is imported.

    Checks that ctypes lays ``cls`` out as BTF did: ``size`` bytes, entry
    ``i`` of ``_fields_`` at byte ``offsets[i]``; raises
    :class:`~pyprobe.BtfError` naming the class otherwise (the module was
    generated for another ABI: generate it again). Then adds each bitfield
    ``(name, bit offset, bits, signed)`` as a property, each member
    ``(anonymous member, name)`` promoted from an anonymous member that
    ctypes does not promote itself (its bitfields), and ``_btf_layout_``
    (what :func:`pyprobe.btf.numpy_dtype` reads).
    """
    label = f"{cls.__module__}.{cls.__qualname__} ({cls._btf_name_ or 'no BTF name'})"
    fields = [f[0] for f in cls._fields_]
    actual = ctypes.sizeof(cls)
    problem = ""
    if actual != size:
        problem = f"is {actual} bytes here, BTF says {size}"
    elif len(fields) != len(offsets):
        problem = f"has {len(fields)} fields, {len(offsets)} offsets given"
    else:
        for fname, offset in zip(fields, offsets, strict=True):
            found = getattr(cls, fname).offset
            if found != offset:
                problem = f"member {fname!r} is at offset {found} here, BTF says {offset}"
                break
    if problem:
        raise BtfError(errno.EINVAL, f"{label} {problem}: generate the module again", context="check a generated type")
    for name, start, bits, signed in bitfields:
        setattr(cls, name, _bitfield(start, bits, signed, name))
    for outer, name in forwards:
        setattr(cls, name, _forward(outer, name))
    anonymous = set(getattr(cls, "_anonymous_", ()))
    members = set(cls._btf_members_)
    layout: list[tuple[str, int, Any]] = []
    for fname, ctype, *_ in cls._fields_:
        offset = getattr(cls, fname).offset
        if fname in anonymous:
            layout.extend((n, offset + o, t) for n, o, t in getattr(ctype, "_btf_layout_", ()))
        elif fname in members:
            layout.append((fname, offset, ctype))
    cls._btf_layout_ = tuple(layout)
