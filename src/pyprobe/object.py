"""BPF objects: open a ``.bpf.o``, set it up, load it, attach it, close it."""

from __future__ import annotations

import contextlib
import errno
import os
import sys
import typing
from collections.abc import Callable, Iterator, Mapping
from typing import Any, Literal, TypeVar

from pyprobe import _log
from pyprobe._ffi import cstr, ffi, lib
from pyprobe._resource import ClosedError, Resource
from pyprobe.btf import Btf
from pyprobe.enums import AttachType, MapType, ProgramType
from pyprobe.errors import BpfError, LoadError, ObjectNotFoundError, UnsupportedError, error_from_errno
from pyprobe.globals import GlobalVariables
from pyprobe.link import Link
from pyprobe.maps import KeyValueMap, Map, PerCpuArrayMap, PerCpuHashMap
from pyprobe.program import Program

__all__ = ["BpfObject", "ObjectMaps", "load", "open"]

State = Literal["opened", "loaded", "closed"]
Source = str | os.PathLike[str] | bytes | bytearray | memoryview
T = TypeVar("T")
M = TypeVar("M", bound=Map)


class Named(Mapping[str, T]):
    """A read-only name -> item mapping whose KeyError names the owner and what it has."""

    def __init__(self, items: dict[str, T], what: str, owner: str) -> None:
        self._items = items
        self._what = what
        self._owner = owner

    def __getitem__(self, name: str) -> T:
        try:
            return self._items[name]
        except KeyError:
            known = ", ".join(self._items) or "none"
            raise KeyError(f"no {self._what} {name!r} in {self._owner} (it has: {known})") from None

    def __iter__(self) -> Iterator[str]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def __repr__(self) -> str:
        return "{" + ", ".join(f"{k!r}: {v!r}" for k, v in self._items.items()) + "}"


class ObjectMaps(Named[Map]):
    """An object's user maps by name (a read-only Mapping), with :meth:`typed` for type checkers."""

    def typed(self, name: str, cls: type[M]) -> M:
        """The map called ``name``, checked to be a ``cls`` and typed as one.

        ``obj.maps.typed("counts", pyprobe.HashMap[int, int])`` returns the
        map as a ``HashMap[int, int]``, so ``mypy --strict`` knows its keys
        and values (the type arguments are not checked against BTF: they
        say what the caller expects). Raises KeyError for an unknown name;
        TypeError naming the map, its real class and kind when it is not a
        ``cls``, when a per-CPU map is asked for with a value type that is
        not a list, or when ``cls`` is not a map class.
        """
        origin: object = typing.get_origin(cls) or cls
        if not (isinstance(origin, type) and issubclass(origin, Map)):
            raise TypeError(f"typed() takes a map class such as pyprobe.HashMap[int, int], not {cls!r}")
        found = self[name]
        kind = found.type.name.lower()
        if not isinstance(found, origin):
            raise TypeError(
                f"map '{name}' of {self._owner} is a {type(found).__name__} ({kind} map), not {_a(origin.__name__)}"
            )
        args = typing.get_args(cls)
        per_cpu = isinstance(found, (PerCpuHashMap, PerCpuArrayMap))
        if (
            per_cpu
            and args
            and issubclass(origin, KeyValueMap)
            and not issubclass(origin, (PerCpuHashMap, PerCpuArrayMap))
        ):
            value = args[-1]
            if value is not Any and typing.get_origin(value) is not list:
                shown = getattr(value, "__name__", None) or repr(value)
                raise TypeError(
                    f"map '{name}' of {self._owner} is a {type(found).__name__} ({kind} map), whose values are "
                    f"lists (one per CPU), not {shown}: ask for a {type(found).__name__}"
                )
        return found  # type: ignore[return-value]


def _a(noun: str) -> str:
    return ("an " if noun[:1] in "AEIOU" else "a ") + noun


def _close_object(ptr: Any, link_closers: dict[int, Callable[[], None]], keep: object) -> None:
    # Links first: some (USDT) point into the object's memory.
    for close in list(link_closers.values()):
        close()
    link_closers.clear()
    lib.bpf_object__close(ptr)
    del keep  # the ELF image of an object opened from memory lives as long as the object


class BpfObject(Resource):
    """An opened (and later loaded) BPF object file.

    Made by :func:`pyprobe.open` or :func:`pyprobe.load`. Owns its programs'
    and maps' fds and every link made through its programs: ``close()`` (or
    leaving a ``with`` block) detaches those links and frees everything.
    Programs and maps keep their object alive; using any of them after
    ``close()`` raises :class:`pyprobe.ClosedError`.
    """

    def __init__(self, ptr: Any, *, path: str | None, keep: object = None) -> None:
        self._ptr = ptr
        self.path = path
        """The file the object was opened from (None when opened from memory)."""
        self.name: str = cstr(lib.bpf_object__name(ptr))
        """The object's name (the file name without ``.bpf.o``, or the ``name`` given)."""
        self._loaded = False
        self._links: dict[int, Link] = {}
        closers: dict[int, Callable[[], None]] = {}
        self._link_closers = closers
        self._own(lambda: _close_object(ptr, closers, keep), f"BpfObject '{self.name}'")

        progs: dict[str, Program] = {}
        p = lib.bpf_object__next_program(ptr, ffi.NULL)
        while p != ffi.NULL:
            prog = Program(self, p)
            progs[prog.name] = prog
            p = lib.bpf_object__next_program(ptr, p)
        self.programs: Mapping[str, Program] = Named(progs, "program", f"object '{self.name}'")
        """The object's programs by function name."""

        maps: dict[str, Map] = {}
        internal: dict[str, Map] = {}
        m = lib.bpf_object__next_map(ptr, ffi.NULL)
        while m != ffi.NULL:
            bmap = Map._wrap(self, m)
            (internal if lib.bpf_map__is_internal(m) else maps)[bmap.name] = bmap
            m = lib.bpf_object__next_map(ptr, m)
        self.maps: ObjectMaps = ObjectMaps(maps, "map", f"object '{self.name}'")
        """The object's user maps by name (global-variable sections excluded); ``maps.typed(name, cls)``."""
        self._internal_maps = internal

    @property
    def state(self) -> State:
        """``"opened"``, ``"loaded"`` or ``"closed"``."""
        if self.closed:
            return "closed"
        return "loaded" if self._loaded else "opened"

    @property
    def btf(self) -> Btf:
        """The object's BTF: Python types of its structs, maps and globals (see :mod:`pyprobe.btf`)."""
        self._check_open()
        btf: Btf | None = self.__dict__.get("_btf")
        if btf is None:
            with self._guard:
                ptr = lib.bpf_object__btf(self._ptr)
            if ptr == ffi.NULL:
                raise BpfError(
                    errno.ENOENT, "the object has no BTF (compile it with -g)", context=f"object '{self.name}'"
                )
            btf = self.__dict__["_btf"] = Btf(ptr, guard=self._guard)
        return btf

    def _globals(self, section: str) -> GlobalVariables:
        cache: dict[str, GlobalVariables] = self.__dict__.setdefault("_globals_cache", {})
        found = cache.get(section)
        if found is None:
            self._check_open()
            found = GlobalVariables(self, section, None, {})
            for m in self._internal_maps.values():
                try:
                    rec = self.btf.record(int(m._call(lib.bpf_map__btf_value_type_id)))
                except ClosedError:
                    raise  # closed in another thread meanwhile: nothing is cached
                except BpfError:
                    continue
                if rec.name == section:
                    found = GlobalVariables(self, section, m._ptr, self.btf.variables(section))
            cache[section] = found
        return found

    @property
    def bss(self) -> GlobalVariables:
        """Zero-initialised globals; after load, live kernel memory (read and write)."""
        return self._globals(".bss")

    @property
    def data(self) -> GlobalVariables:
        """Initialised globals; after load, live kernel memory (read and write)."""
        return self._globals(".data")

    @property
    def rodata(self) -> GlobalVariables:
        """``const volatile`` globals: settable between open and load, read-only after."""
        return self._globals(".rodata")

    @property
    def links(self) -> list[Link]:
        """The links made through this object's programs that are still attached."""
        return list(self._links.values())

    def _adopt_link(self, link: Link) -> None:
        self._check_open()
        self._links[id(link)] = link
        self._link_closers[id(link)] = link._closer()

    def _forget_link(self, link: Link) -> None:
        self._links.pop(id(link), None)
        self._link_closers.pop(id(link), None)

    def load(self) -> BpfObject:
        """Creates the maps and loads every autoload program into the kernel; returns ``self``.

        Raises :class:`LoadError` naming the program the verifier rejected, with
        the verifier's log in ``.log``. Blocks while the verifier runs.
        """
        self._check_open()
        if self._loaded:
            raise BpfError(errno.EALREADY, "already loaded", context=f"load object '{self.name}'")
        with self._guard, _log.capture() as cap:
            ret = lib.bpf_object__load(self._ptr)
        if ret < 0:
            raise self._load_error(-ret, cap)
        self._loaded = True
        return self

    def _load_error(self, err: int, cap: _log.LoadCapture) -> BpfError:
        program = cap.failed[0] if cap.failed else None
        log = cap.logs.get(program, "") if program else ""
        if program is None:
            if err in _REFUSED_ERRNOS and (unsupported := self._unsupported_map(err, cap.messages)) is not None:
                return unsupported
            detail = "; ".join(m.removeprefix("libbpf: ") for m in cap.messages[-3:])
            return error_from_errno(err, f"load object '{self.name}'" + (f" ({detail})" if detail else ""), LoadError)
        context = f"load object '{self.name}': program '{program}'"
        if log:
            summary = _verifier_summary(log)
            hint = "the verifier's log is in .log" if summary else ""
            message = f"rejected by the verifier: {summary}" if summary else os.strerror(err)
            exc = error_from_errno(err, context, LoadError, log=log, program=program, hint=hint)
            if type(exc) is LoadError:
                return LoadError(err, message, context=context, hint=hint, log=log, program=program)
            return exc
        if err in _REFUSED_ERRNOS and (feature := self._feature_of(program)):
            from pyprobe import features

            status = features.probe(feature)
            if not status.available:
                return UnsupportedError(err, f"{feature} programs are refused: {status.reason}", context=context)
        exc = error_from_errno(err, context, LoadError, log=log, program=program)
        if isinstance(exc, UnsupportedError | LoadError):
            exc.__dict__.setdefault("log", log)
            exc.__dict__.setdefault("program", program)
        return exc

    def _feature_of(self, program: str) -> str | None:
        """The kernel feature (pyprobe.features name) a program of this object needs beyond plain BPF."""
        prog = self.programs.get(program)
        if prog is None:
            return None
        ptype = prog.type
        if ptype is ProgramType.TRACING:
            return _TRACING_FEATURES.get(prog.attach_type)
        return _PROGRAM_FEATURES.get(ptype)

    def _unsupported_map(self, err: int, messages: list[str]) -> UnsupportedError | None:
        """An UnsupportedError naming the map libbpf could not create, when its kind is one this kernel lacks."""
        from pyprobe import features

        for name, m in self.maps.items():
            feature = _MAP_FEATURES.get(m.type)
            if feature is None or not any(f"map '{name}'" in line for line in messages):
                continue
            status = features.probe(feature)
            if not status.available:
                return UnsupportedError(
                    err,
                    f"{feature} maps are refused: {status.reason}",
                    context=f"load object '{self.name}': map '{name}'",
                )
        return None

    def attach(self) -> list[Link]:
        """Attaches every loaded program whose SEC name gives a full target; returns the new links.

        Programs whose section names no target (``SEC("uprobe")``,
        ``SEC("syscall")``) or whose ``autoattach`` is off are skipped. On a
        failure the links made so far are detached before the error is raised.
        """
        self._check_open()
        if not self._loaded:
            raise BpfError(
                errno.EINVAL, "the object is not loaded; call load() first", context=f"attach object '{self.name}'"
            )
        made: list[Link] = []
        try:
            for prog in self.programs.values():
                if prog.fd < 0 or not prog.autoattach:
                    continue
                link = prog._auto_attach()
                if link is not None:
                    made.append(link)
        except BaseException:
            for link in made:
                link.detach()
            raise
        return made

    def close(self) -> None:
        """Detaches this object's links and frees its programs and maps. Calling it again does nothing.

        Never blocks: calls in flight in other threads on the object, its
        maps, programs, globals or links finish first, and the last of them
        to return does the release; calls made after close() raise
        :class:`ClosedError`.
        """
        super().close()
        self._links.clear()

    def __repr__(self) -> str:
        return f"<BpfObject {self.name!r} {self.state} programs={list(self.programs)} maps={list(self.maps)}>"


_REFUSED_ERRNOS = frozenset({errno.EPERM, errno.EINVAL, errno.EOPNOTSUPP, errno.E2BIG})
"""What the kernel answers for a program or map kind it refuses (EPERM) or is too old to know (the rest)."""

_PROGRAM_FEATURES = {
    ProgramType.EXT: "freplace", ProgramType.LSM: "lsm", ProgramType.NETFILTER: "netfilter",
    ProgramType.SK_LOOKUP: "sk_lookup", ProgramType.STRUCT_OPS: "struct_ops",
    ProgramType.FLOW_DISSECTOR: "flow_dissector", ProgramType.SK_REUSEPORT: "sk_reuseport",
    ProgramType.CGROUP_SOCKOPT: "cgroup_sockopt", ProgramType.CGROUP_SYSCTL: "cgroup_sysctl",
}  # fmt: skip
"""Program types younger than plain BPF -> their pyprobe.features name (probed only when a load fails)."""

_MAP_FEATURES = {
    MapType.CGRP_STORAGE: "cgrp_storage", MapType.TASK_STORAGE: "task_storage",
    MapType.INODE_STORAGE: "inode_storage", MapType.CGROUP_STORAGE: "cgroup_storage",
    MapType.USER_RINGBUF: "user_ringbuf", MapType.ARENA: "arena",
}  # fmt: skip
"""Map types the same way."""

_TRACING_FEATURES = {
    AttachType.TRACE_FENTRY: "fentry",
    AttachType.TRACE_FEXIT: "fexit",
    AttachType.MODIFY_RETURN: "fmod_ret",
    AttachType.TRACE_RAW_TP: "tp_btf",
}


def _verifier_summary(log: str) -> str:
    """The line of a verifier log that says why it refused, e.g. ``invalid access to map value``."""
    lines = [line.strip() for line in log.splitlines() if line.strip()]
    skip = ("processed ", "verification time", "stack depth", "max_states_per_insn", "peak_states")
    for line in reversed(lines):
        if not line.startswith(skip) and not line[:1].isdigit() and not line.startswith(";"):
            return line
    return lines[-1] if lines else ""


def open(
    source: Source,
    *,
    name: str | None = None,
    btf_path: str | os.PathLike[str] | None = None,
    pin_root_path: str | os.PathLike[str] | None = None,
    kconfig: str | None = None,
) -> BpfObject:
    """Opens a BPF object from a ``.bpf.o`` path or from its bytes, without loading it.

    Between open and load: set ``rodata`` globals, ``Program.autoload``,
    ``Map.max_entries``. ``btf_path`` names a kernel BTF to use for CO-RE
    instead of /sys/kernel/btf/vmlinux. ``source`` as bytes may be any
    buffer (a memoryview of an ``array('I')`` gives all its bytes). Raises
    :class:`~pyprobe.ObjectNotFoundError` (a LoadError and a
    FileNotFoundError) when the file or ``btf_path`` does not exist,
    :class:`~pyprobe.LoadError` when libbpf cannot parse it (libbpf's own
    error codes named, e.g. ``LIBBPF_ERRNO__FORMAT``), TypeError for a
    ``source`` of another type.
    """
    opts = ffi.new("struct bpf_object_open_opts *")
    opts.sz = ffi.sizeof("struct bpf_object_open_opts")
    keep: list[Any] = [opts]

    def cstring(value: str | os.PathLike[str] | None) -> Any:
        if value is None:
            return ffi.NULL
        buf = ffi.new("char[]", os.fsencode(value))
        keep.append(buf)
        return buf

    if btf_path is not None and not os.path.exists(btf_path):
        raise _not_found(os.fspath(btf_path), "open BTF file")
    opts.btf_custom_path = cstring(btf_path)
    opts.pin_root_path = cstring(pin_root_path)
    opts.kconfig = cstring(kconfig)
    opts.object_name = cstring(name)
    _log.sync_level()
    if isinstance(source, (bytes, bytearray, memoryview)):
        data = bytes(source)  # every byte of the buffer, whatever its item size (len() of a memoryview counts items)
        image = ffi.new("char[]", data)
        keep.append(image)
        label = name or "<memory>"
        with _log.capture() as cap, _sections_lock():
            ptr = lib.bpf_object__open_mem(image, len(data), opts)
        path = None
    elif isinstance(source, (str, os.PathLike)):
        path = os.path.abspath(os.fspath(source))
        label = path
        if not os.path.isfile(path):
            raise _not_found(path, "open BPF object")
        with _log.capture() as cap, _sections_lock():
            ptr = lib.bpf_object__open_file(os.fsencode(path), opts)
    else:
        raise TypeError(f"open() takes a path or bytes, not {type(source).__name__}")
    if ptr == ffi.NULL:
        err = ffi.errno or errno.EINVAL
        detail = "; ".join(m.removeprefix("libbpf: ") for m in cap.messages[-2:])
        context = f"open BPF object {label}" + (f" ({detail})" if detail else "")
        raise error_from_errno(err, context, LoadError)
    obj = BpfObject(ptr, path=path, keep=keep)
    if (sections := sys.modules.get("pyprobe.attach.sections")) is not None:
        sections.settle(obj)  # custom SEC() handlers: see there
    return obj


def _sections_lock() -> typing.ContextManager[Any]:
    """The lock of pyprobe's custom SEC() handlers once one was registered (libbpf's table is not thread-safe)."""
    sections = sys.modules.get("pyprobe.attach.sections")
    return (
        contextlib.nullcontext() if sections is None else typing.cast("typing.ContextManager[Any]", sections.opening())
    )


def _not_found(path: str, doing: str) -> LoadError:
    """The error for a ``path`` that is no file: a LoadError, also a FileNotFoundError when nothing is there."""
    if os.path.exists(path):
        return LoadError(errno.EINVAL, "not a regular file", context=f"{doing} {path}")
    exc = ObjectNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT), context=f"{doing} {path}")
    exc.filename = path
    return exc


def load(source: Source, **kwargs: Any) -> BpfObject:
    """Opens and loads a BPF object (see :func:`open` for the arguments)."""
    obj = open(source, **kwargs)
    try:
        return obj.load()
    except BaseException:
        obj.close()
        raise
