"""BPF iterators (Linux 5.8): ``attach_iter()`` and the :class:`IterLink` whose output Python reads.

An iterator program (``SEC("iter/task")``, ``iter/tcp``, ``iter/bpf_map_elem``...) runs once per
kernel object of its kind when user space reads an iterator fd made from its link; what it prints
with ``BPF_SEQ_PRINTF`` or writes with ``bpf_seq_write`` is the fd's content. :class:`IterLink` reads
it as bytes (:meth:`~IterLink.read`), text lines (:meth:`~IterLink.lines`) or fixed-size records
(:meth:`~IterLink.records`); each call makes a new iterator fd (``bpf_iter_create``) that it owns
and closes.
"""

from __future__ import annotations

import ctypes
import errno
import os
import sys
from collections.abc import Generator, Iterator
from typing import TYPE_CHECKING, Any, TypeVar, cast, overload

from pyprobe._ffi import ffi, lib
from pyprobe.attach._base import ProgramCore
from pyprobe.enums import AttachType, ProgramType
from pyprobe.errors import AttachError, BpfError, check_ptr
from pyprobe.link import Link

if TYPE_CHECKING:
    from pyprobe.maps import Map

__all__ = ["MAP_ITERATORS", "IterAttach", "IterLink"]

T = TypeVar("T")

MAP_ITERATORS = frozenset({"bpf_map_elem", "bpf_sk_storage_map", "sockmap"})
"""Iterator kinds that walk one map: ``attach_iter(map=...)`` names it."""
TASK_ITERATORS = frozenset({"task", "task_file", "task_vma"})
"""Iterator kinds that take ``pid`` / ``tid`` (Linux 6.1)."""
CGROUP_ORDERS = {"self": 1, "descendants_pre": 2, "descendants_post": 3, "ancestors_up": 4}
"""``attach_iter(cgroup_order=...)``: enum bpf_cgroup_iter_order."""

_CHUNK = 64 * 1024
"""Bytes asked of the kernel per read(): a seq_file hands out at most what fits its buffer anyway."""
_MAX_READ = 64 << 20
"""What :meth:`IterLink.read` returns at most by default."""
_CTYPES = (ctypes.Structure, ctypes.Union, ctypes.Array, ctypes._SimpleCData)


class IterLink(Link):
    """A BPF iterator link: ``kind`` (``task``, ``tcp``...) and its arguments ``map_name``,
    ``map_id``, ``pid``, ``tid``, ``cgroup``.

    Reading it runs the program over the kernel's objects of that kind:
    :meth:`read`, :meth:`lines` and :meth:`records` each make a new iterator
    fd (``bpf_iter_create``), own it and close it when done (a generator
    closes it when exhausted, closed, or collected). A read blocks while the
    program runs over the objects; the link may be closed meanwhile: the
    iterator fd holds the kernel link until it is closed.
    """

    def __init__(
        self, ptr: Any, program: ProgramCore | None, *, description: str = "", kind: str | None = None,
        map_name: str | None = None, map_id: int | None = None, pid: int | None = None, tid: int | None = None,
        cgroup: str | int | None = None,
    ) -> None:  # fmt: skip
        super().__init__(ptr, program, description=description)
        self.kind = kind
        self.map_name = map_name
        self.map_id = map_id
        self.pid = pid
        self.tid = tid
        self.cgroup = cgroup

    def open_fd(self) -> int:
        """A new iterator fd (``bpf_iter_create``); the caller owns it (``os.close``). Linux 5.8."""
        with self._guard:
            fd = int(lib.bpf_iter_create(lib.bpf_link__fd(self._ptr)))
            if fd < 0:
                raise BpfError(
                    ffi.errno or -fd, os.strerror(ffi.errno or -fd), context=f"create iterator of {self.description}"
                )
        return fd

    def _chunks(self) -> Generator[bytes, None, None]:
        fd = self.open_fd()
        try:
            while True:
                try:
                    data = os.read(fd, _CHUNK)
                except OSError as exc:
                    raise BpfError(exc.errno or errno.EIO, os.strerror(exc.errno or errno.EIO),
                                   context=f"read iterator of {self.description}") from None  # fmt: skip
                if not data:
                    return
                yield data
        finally:
            os.close(fd)

    def read(self, *, max_bytes: int = _MAX_READ) -> bytes:
        """The whole output of one run of the iterator. Blocks while the program runs.

        Raises :class:`BpfError` (EFBIG) when the output passes ``max_bytes``
        (64 MiB by default: use :meth:`lines` or :meth:`records`, which stream),
        and what the kernel's read answers otherwise.
        """
        if isinstance(max_bytes, bool) or not isinstance(max_bytes, int) or max_bytes < 0:
            raise ValueError(f"max_bytes must be a non-negative int, not {max_bytes!r}")
        parts: list[bytes] = []
        size = 0
        chunks = self._chunks()
        try:
            for chunk in chunks:
                size += len(chunk)
                if size > max_bytes:
                    raise BpfError(
                        errno.EFBIG, f"the output passes max_bytes={max_bytes}",
                        context=f"read iterator of {self.description}",
                        hint="raise max_bytes, or stream it with lines() or records()",
                    )  # fmt: skip
                parts.append(chunk)
        finally:
            chunks.close()
        return b"".join(parts)

    def lines(self, *, encoding: str = "utf-8", errors: str = "replace") -> Iterator[str]:
        """The output as text lines without their newline (``BPF_SEQ_PRINTF``), read as it comes.

        A line longer than 1 MiB is cut there (the output is untrusted).
        """
        tail = b""
        for chunk in self._chunks():
            data = tail + chunk
            *whole, tail = data.split(b"\n")
            for line in whole:
                yield line.decode(encoding, errors)
            if len(tail) > 1 << 20:
                yield tail.decode(encoding, errors)
                tail = b""
        if tail:
            yield tail.decode(encoding, errors)

    @overload
    def records(self, record_type: type[T]) -> Iterator[T]: ...
    @overload
    def records(self, record_type: str) -> Iterator[Any]: ...
    def records(self, record_type: type[Any] | str) -> Iterator[Any]:
        """The output as fixed-size records (``bpf_seq_write``), each decoded to ``record_type``.

        ``record_type`` is a ctypes type (or a class made from BTF), or the
        name of a type in the program's object's BTF (exported with
        ``PYPROBE_EXPORT_TYPE``). Records are decoded a chunk at a time
        without a Python call per record. Raises TypeError / ValueError for a
        bad type (before any read), :class:`~pyprobe.BtfError` for a name BTF
        lacks, and :class:`BpfError` (EBADMSG) when the output does not end
        on a whole record.
        """
        ctype = self._record_type(record_type)
        size = ctypes.sizeof(ctype)
        return self._records(ctype, size)

    def _records(self, ctype: Any, size: int) -> Iterator[Any]:
        tail = b""
        for chunk in self._chunks():
            data = tail + chunk if tail else chunk
            count = len(data) // size
            if count:
                yield from (ctype * count).from_buffer_copy(data, 0)
            tail = data[count * size :]
        if tail:
            raise BpfError(
                errno.EBADMSG, f"the output ends with {len(tail)} bytes, not a whole record of {size} bytes",
                context=f"read {ctype.__name__} records of {self.description}",
                hint="the record type's size must be what the program passes to bpf_seq_write",
            )  # fmt: skip

    def _record_type(self, record_type: object) -> Any:
        what = f"record_type of {self.description}"
        if isinstance(record_type, str):
            if self.program is None:
                raise TypeError(f"{what}: a link opened from a pin has no object BTF; pass a ctypes type")
            found = self.program.object.btf.type_by_name(record_type)
            if not (isinstance(found, type) and issubclass(found, _CTYPES)):
                raise TypeError(f"{what}: BTF type {record_type!r} has no fixed-size Python form")
            record_type = found
        if not (isinstance(record_type, type) and issubclass(record_type, _CTYPES)):
            raise TypeError(f"{what} must be a ctypes type or a BTF type name, not {record_type!r}")
        if ctypes.sizeof(record_type) == 0:
            raise ValueError(f"{what}: {record_type.__name__} has size 0")
        return record_type


class IterAttach(ProgramCore):
    """The iterator ``attach_*`` method of :class:`~pyprobe.Program`."""

    def attach_iter(
        self,
        *,
        map: Map | None = None,
        pid: int | None = None,
        tid: int | None = None,
        cgroup: str | os.PathLike[str] | int | None = None,
        cgroup_order: str = "self",
    ) -> IterLink:
        """Attaches a ``SEC("iter/KIND")`` program; read its output through the returned :class:`IterLink`.

        ``map`` names the map of the map iterators (``bpf_map_elem``,
        ``bpf_sk_storage_map``, ``sockmap``; required there, refused
        elsewhere). ``pid`` / ``tid`` limit the task iterators (``task``,
        ``task_file``, ``task_vma``) to one process or thread (Linux 6.1).
        ``cgroup`` (a cgroup v2 path or an open fd) and ``cgroup_order``
        (``self``, ``descendants_pre``, ``descendants_post``,
        ``ancestors_up``) start the ``cgroup`` iterator (Linux 6.1). The link
        owns nothing of the arguments (a cgroup path is opened and closed
        here). Raises :class:`AttachError` for a program of another type, a
        missing argument, an unknown process or cgroup; what the kernel
        refuses otherwise. Minimum kernel 5.8 (``task``, ``task_file``,
        ``bpf_map``), 5.9 (``bpf_map_elem``, ``tcp``, ``udp``).
        """
        context = f"attach iterator program '{self.name}'"
        self._require_kind("attach_iter", (ProgramType.TRACING,), 'a SEC("iter/KIND") program', context)
        kind = self._iter_kind(context)
        context = f"attach iterator program '{self.name}' (iter/{kind})"
        info = ffi.new("union bpf_iter_link_info *")
        described = [f"iter/{kind}"]
        map_name = map_id = None
        cgroup_fd = -1
        own_cgroup_fd = False
        if map is not None and kind not in MAP_ITERATORS:
            raise ValueError(f"{context}: a map is an argument of {', '.join(sorted(MAP_ITERATORS))} iterators only")
        if map is None and kind in MAP_ITERATORS:
            raise AttachError(
                errno.EINVAL, f"a {kind} iterator walks one map and none was given", context=context,
                hint="pass the map to walk: attach_iter(map=obj.maps['NAME'])",
            )  # fmt: skip
        if (pid is not None or tid is not None) and kind not in TASK_ITERATORS:
            raise ValueError(f"{context}: pid and tid are arguments of the task, task_file and task_vma iterators")
        if pid is not None and tid is not None:
            raise ValueError(f"{context}: give pid or tid, not both")
        if pid is not None:
            info.task.pid = self._check_pid(pid, context)
            described.append(f"pid {pid}")
        if tid is not None:
            info.task.tid = self._check_pid(tid, context)
            described.append(f"tid {tid}")
        if cgroup is not None or kind == "cgroup":
            if kind != "cgroup":
                raise ValueError(f"{context}: cgroup is an argument of the cgroup iterator only")
            if cgroup_order not in CGROUP_ORDERS:
                raise ValueError(
                    f"{context}: cgroup_order must be one of {', '.join(CGROUP_ORDERS)}, not {cgroup_order!r}"
                )
            info.cgroup.order = CGROUP_ORDERS[cgroup_order]
            if isinstance(cgroup, int) and not isinstance(cgroup, bool):
                cgroup_fd = self._check_int_arg(cgroup, "cgroup fd", 0, 2**31 - 1, context)
            elif isinstance(cgroup, (str, os.PathLike)):
                path = os.fspath(cgroup)
                try:
                    cgroup_fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
                except OSError as exc:
                    err = exc.errno or errno.ENOENT
                    raise AttachError(err, f"cannot open cgroup {path}: {os.strerror(err)}", context=context) from None
                own_cgroup_fd = True
            elif cgroup is not None:
                raise TypeError(f"{context}: cgroup is a path or an fd, not {type(cgroup).__name__}")
            if cgroup_fd >= 0:
                info.cgroup.cgroup_fd = cgroup_fd
                described.append(f"cgroup {cgroup}")
        cgroup_shown: str | int | None = (
            cgroup if cgroup is None or isinstance(cgroup, (str, int)) else os.fspath(cgroup)
        )
        opts = ffi.new("struct bpf_iter_attach_opts *")
        opts.sz = ffi.sizeof("struct bpf_iter_attach_opts")
        opts.link_info = info
        opts.link_info_len = ffi.sizeof("union bpf_iter_link_info")
        try:
            self._loaded_fd(context)
            if map is not None:
                with map._guard:  # the map's fd stays its own until the kernel holds the map
                    map_fd = map._loaded_fd(context)
                    info.map.map_fd = map_fd
                    ptr = self._call(lib.bpf_program__attach_iter, opts)
                map_name, map_id = map.name, map.id
                described.append(f"map '{map_name}'")
            else:
                ptr = self._call(lib.bpf_program__attach_iter, opts)
            ptr = check_ptr(ptr, context, AttachError)
        finally:
            if own_cgroup_fd:
                os.close(cgroup_fd)
        return IterLink(
            ptr, self, description=" ".join(described) + f" (program '{self.name}')", kind=kind, map_name=map_name,
            map_id=map_id, pid=pid, tid=tid, cgroup=cgroup_shown,
        )  # fmt: skip

    def _iter_kind(self, context: str) -> str:
        kind, _, target = self.section.partition("/")
        if kind not in ("iter", "iter.s") or not target:
            atype = self.attach_type
            raise AttachError(
                errno.EINVAL,
                f"program '{self.name}' (SEC(\"{self.section}\"), attach type {atype.name.lower()}) "
                "names no iterator kind",
                context=context,
                hint='write SEC("iter/task"), SEC("iter/tcp")...' if atype == AttachType.TRACE_ITER else "",
            )
        return target

    def _auto_attach_iter(self, base: str, target: str) -> Link | None:
        """Attaches ``SEC("iter/KIND")`` programs whose kind needs no argument, and sections a handler of
        :func:`pyprobe.register_section_handler` attaches; None for the others."""
        sections = sys.modules.get("pyprobe.attach.sections")  # loaded once a handler was registered
        if sections is not None and (link := sections.auto_attach(self, self.section)) is not None:
            return cast("Link", link)
        if base != "iter" or not target or target in MAP_ITERATORS:
            return None
        return self.attach_iter()
