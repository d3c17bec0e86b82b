"""Local storage maps keyed by a kernel object: a cgroup, a task, an inode; and legacy cgroup local storage.

The kernel keys the storage of a cgroup, task or inode by an fd of it in
system calls (a cgroup directory, a pidfd, an open file): these classes take
a path, a pid or a file and open (and close) that fd around each call. Such
maps cannot be iterated from user space (the kernel has no "next key" for
them): look values up by their owner.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import os
from collections.abc import Iterator
from typing import IO, Any, Generic, NamedTuple, TypeVar

from pyprobe.enums import AttachType, MapType
from pyprobe.errors import KeyNotFoundError, MapError
from pyprobe.maps._base import Map, UpdateFlags

__all__ = [
    "CgroupId",
    "CgroupLocalStorageMap",
    "CgroupStorageKey",
    "CgroupStorageMap",
    "InodeStorageMap",
    "TaskStorageMap",
]

V = TypeVar("V")
_FD_MAX = (1 << 31) - 1
_PIDFD_THREAD = os.O_EXCL  # PIDFD_THREAD (Linux 6.9): a pidfd of a thread, not only of a thread-group leader


class _OwnerStorage(Map, Generic[V]):
    """A local storage map whose key is an fd of the owner of each value (cgroup, task, inode)."""

    _owner = "owner"

    @contextlib.contextmanager
    def _owner_fd(self, owner: Any, doing: str) -> Iterator[int]:
        raise NotImplementedError  # pragma: no cover

    def _shown(self, owner: Any) -> str:
        return f"{self._owner} {os.fspath(owner) if isinstance(owner, os.PathLike) else owner!r}"

    def lookup(self, owner: Any, default: Any = None) -> V | Any:
        """The value stored for ``owner``, or ``default`` when it has none."""
        with self._owner_fd(owner, f"lookup in map '{self.name}'") as fd:
            raw = self._lookup_raw(fd.to_bytes(4, "little"))
        if raw is None:
            return default
        return self._codec[1].decode(raw)

    def __getitem__(self, owner: Any) -> V:
        """The value stored for ``owner``; raises :class:`KeyNotFoundError` naming it when it has none."""
        value = self.lookup(owner, _MISSING)
        if value is _MISSING:
            raise KeyNotFoundError(
                errno.ENOENT, f"no value for {self._shown(owner)}", context=f"lookup in map '{self.name}'"
            )
        result: V = value
        return result

    def __contains__(self, owner: Any) -> bool:
        return self.lookup(owner, _MISSING) is not _MISSING

    def update(self, owner: Any, value: V, flags: UpdateFlags | int = UpdateFlags.ANY) -> None:
        """Stores ``value`` for ``owner`` (creating the storage; flags ANY, NOEXIST or EXIST)."""
        if isinstance(flags, bool) or not isinstance(flags, int) or flags & ~0x3:
            raise self._bad_flags(flags)
        raw = self._codec[1].encode(value)
        with self._owner_fd(owner, f"update map '{self.name}'") as fd:
            self._update_raw(fd.to_bytes(4, "little"), raw, int(flags), self._shown(owner))

    def __setitem__(self, owner: Any, value: V) -> None:
        self.update(owner, value)

    def __delitem__(self, owner: Any) -> None:
        """Deletes the value of ``owner``; raises :class:`KeyNotFoundError` when it has none."""
        with self._owner_fd(owner, f"delete from map '{self.name}'") as fd:
            self._delete_raw(fd.to_bytes(4, "little"), self._shown(owner))

    def delete(self, owner: Any) -> None:
        """Same as ``del m[owner]``."""
        del self[owner]

    def __iter__(self) -> Iterator[Any]:
        raise TypeError(
            f"map '{self.name}' ({self.type.name.lower()}) cannot be iterated: the kernel offers no next-key "
            f"for local storage; look values up by {self._owner}"
        )

    def _open_path(self, owner: Any, flags: int, doing: str) -> int:
        path = os.fspath(owner)
        try:
            return os.open(path, flags | os.O_CLOEXEC)
        except OSError as exc:
            err = exc.errno or errno.EIO
            raise MapError(err, f"cannot open {self._owner} {path}: {os.strerror(err)}", context=doing) from None

    def _dup_fd(self, owner: int, doing: str) -> int:
        if not 0 <= owner <= _FD_MAX:
            raise ValueError(f"{doing}: {self._owner} fd {owner} is out of range [0, {_FD_MAX}]")
        try:
            return os.dup(owner)
        except OSError:
            raise MapError(errno.EBADF, f"{self._owner} fd {owner} is not open", context=doing) from None


_MISSING: Any = object()


class CgroupStorageMap(_OwnerStorage[V]):
    """BPF_MAP_TYPE_CGRP_STORAGE (Linux 6.2): one value per cgroup v2 cgroup, ``m[cgroup]``.

    ``cgroup`` is a cgroup v2 directory path or an open fd of one (the fd
    stays the caller's). BPF programs reach a value with
    ``bpf_cgrp_storage_get(&map, cgroup, ...)``.
    """

    _owner = "cgroup"

    @contextlib.contextmanager
    def _owner_fd(self, owner: Any, doing: str) -> Iterator[int]:
        if isinstance(owner, bool) or not isinstance(owner, (int, str, os.PathLike)):
            raise TypeError(f"{doing}: a cgroup is a path or an fd, not {type(owner).__name__}")
        if isinstance(owner, int):
            fd = self._dup_fd(owner, doing)
        else:
            fd = self._open_path(owner, os.O_RDONLY | os.O_DIRECTORY, doing)
        try:
            yield fd
        finally:
            os.close(fd)


class TaskStorageMap(_OwnerStorage[V]):
    """BPF_MAP_TYPE_TASK_STORAGE (Linux 5.11): one value per task (thread), ``m[pid]``.

    The key is a pid (a pidfd is opened for each call: Linux 5.3; a thread id
    that is not a process's main thread needs Linux 6.9) or an open pidfd
    (``os.pidfd_open``; it stays the caller's). BPF programs reach a value with
    ``bpf_task_storage_get(&map, task, ...)``.
    """

    _owner = "pid"

    @contextlib.contextmanager
    def _owner_fd(self, owner: Any, doing: str) -> Iterator[int]:
        if isinstance(owner, bool) or not isinstance(owner, int):
            raise TypeError(f"{doing}: a task is a pid (int), not {type(owner).__name__}")
        if not 0 < owner <= _FD_MAX:
            raise ValueError(f"{doing}: pid {owner} is out of range [1, {_FD_MAX}]")
        try:
            fd = os.pidfd_open(owner)
        except ProcessLookupError:
            raise KeyNotFoundError(errno.ESRCH, f"no process with pid {owner}", context=doing) from None
        except OSError as exc:
            if exc.errno != errno.EINVAL:
                raise MapError(exc.errno or errno.EIO, f"pidfd_open({owner}): {exc.strerror}", context=doing) from None
            try:  # a thread that leads no thread group: PIDFD_THREAD
                fd = os.pidfd_open(owner, _PIDFD_THREAD)
            except OSError as exc2:
                raise MapError(
                    exc2.errno or errno.EINVAL, f"cannot open a pidfd for task {owner}: {exc2.strerror}",
                    context=doing, hint="pidfds of threads that are not a process's main thread need Linux 6.9",
                ) from None  # fmt: skip
        try:
            yield fd
        finally:
            os.close(fd)

    def by_pidfd(self, pidfd: int, default: Any = None) -> V | Any:
        """The value stored for the task of an open ``pidfd`` (the caller's), or ``default``."""
        doing = f"lookup in map '{self.name}'"
        fd = self._dup_fd(pidfd, doing)
        try:
            raw = self._lookup_raw(fd.to_bytes(4, "little"))
        finally:
            os.close(fd)
        return default if raw is None else self._codec[1].decode(raw)


class InodeStorageMap(_OwnerStorage[V]):
    """BPF_MAP_TYPE_INODE_STORAGE (Linux 5.10, CONFIG_BPF_LSM): one value per inode, ``m[file]``.

    ``file`` is a path (opened with O_PATH for each call: neither read nor
    written), an open file object, or an fd (both stay the caller's). BPF LSM
    programs reach a value with ``bpf_inode_storage_get(&map, inode, ...)``
    (tracing programs too from Linux 6.12).
    """

    _owner = "file"

    @contextlib.contextmanager
    def _owner_fd(self, owner: Any, doing: str) -> Iterator[int]:
        if isinstance(owner, bool):
            raise TypeError(f"{doing}: a file is a path, a file object or an fd, not bool")
        if isinstance(owner, int):
            fd = self._dup_fd(owner, doing)
        elif isinstance(owner, (str, os.PathLike)):
            fd = self._open_path(owner, os.O_PATH, doing)
        elif callable(getattr(owner, "fileno", None)):
            fd = self._dup_fd(_fileno(owner), doing)
        else:
            raise TypeError(f"{doing}: a file is a path, a file object or an fd, not {type(owner).__name__}")
        try:
            yield fd
        finally:
            os.close(fd)


def _fileno(owner: IO[Any]) -> int:
    fd = owner.fileno()
    if isinstance(fd, bool) or not isinstance(fd, int):
        raise TypeError(f"fileno() of {owner!r} returned {type(fd).__name__}, not int")
    return fd


class CgroupStorageKey(NamedTuple):
    """A key of a legacy cgroup local storage map: the cgroup's id (its inode number) and the hook."""

    cgroup_id: int
    attach_type: AttachType


class _LegacyKey(ctypes.Structure):
    _fields_ = (("cgroup_inode_id", ctypes.c_uint64), ("attach_type", ctypes.c_uint32))


class CgroupLocalStorageMap(Map, Generic[V]):
    """BPF_MAP_TYPE_CGROUP_STORAGE (Linux 4.19; legacy, superseded by :class:`CgroupStorageMap`).

    One value per (cgroup, attach type) a program using the map is attached
    to, made by the attach and gone with it; BPF programs reach theirs with
    ``bpf_get_local_storage(&map, 0)``. ``m[cgroup, attach_type]`` (a cgroup path,
    fd or id and an :class:`AttachType`), ``m[cgroup]`` for maps keyed by the
    cgroup id alone; ``iter(m)`` gives :class:`CgroupStorageKey` keys (or ids).
    Values cannot be added or deleted from user space, only updated.
    """

    def _key(self, key: Any, doing: str) -> tuple[bytes, str]:
        atype: AttachType | None = None
        if isinstance(key, tuple):
            if len(key) != 2:
                raise TypeError(f"{doing}: a key is (cgroup, attach_type), not a {len(key)}-tuple")
            cgroup, raw_type = key
            atype = AttachType(int(AttachType.parse(raw_type)))
        else:
            cgroup = key
        cgroup_id = _cgroup_id(cgroup, doing)
        shown = f"cgroup {cgroup!r}" + (f" at {atype.name.lower()}" if atype is not None else "")
        if self.key_size == 8:
            if atype is not None:
                raise TypeError(f"{doing}: map '{self.name}' is keyed by the cgroup alone, not (cgroup, attach_type)")
            return cgroup_id.to_bytes(8, "little"), shown
        if atype is None:
            raise TypeError(f"{doing}: map '{self.name}' is keyed by (cgroup, attach_type)")
        return bytes(_LegacyKey(cgroup_id, int(atype))).ljust(self.key_size, b"\0"), shown

    def lookup(self, key: Any, default: Any = None) -> V | Any:
        """The value for ``key``, or ``default``."""
        raw_key, _shown = self._key(key, f"lookup in map '{self.name}'")
        raw = self._lookup_raw(raw_key)
        return default if raw is None else self._codec[1].decode(raw)

    def __getitem__(self, key: Any) -> V:
        raw_key, shown = self._key(key, f"lookup in map '{self.name}'")
        raw = self._lookup_raw(raw_key)
        if raw is None:
            raise KeyNotFoundError(
                errno.ENOENT, f"no value for {shown} (no program using the map is attached there)",
                context=f"lookup in map '{self.name}'",
            )  # fmt: skip
        value: V = self._codec[1].decode(raw)
        return value

    def __setitem__(self, key: Any, value: V) -> None:
        raw_key, shown = self._key(key, f"update map '{self.name}'")
        self._update_raw(raw_key, self._codec[1].encode(value), 0, shown)

    def __contains__(self, key: Any) -> bool:
        return self.lookup(key, _MISSING) is not _MISSING

    def __iter__(self) -> Iterator[CgroupStorageKey | int]:
        for raw in self._raw_keys():
            if self.key_size == 8:
                yield int.from_bytes(raw[:8], "little")
            else:
                key = _LegacyKey.from_buffer_copy(raw[: ctypes.sizeof(_LegacyKey)])
                yield CgroupStorageKey(int(key.cgroup_inode_id), AttachType(int(key.attach_type)))


def _cgroup_id(cgroup: Any, doing: str) -> int:
    """A cgroup's id (the inode number of its cgroup v2 directory) from a path, an fd (``os.fstat``) or an id."""
    if isinstance(cgroup, bool):
        raise TypeError(f"{doing}: a cgroup is a path, an fd or a CgroupId, not bool")
    if isinstance(cgroup, CgroupId):
        return int(cgroup)
    try:
        if isinstance(cgroup, int):
            return os.fstat(cgroup).st_ino
        if isinstance(cgroup, (str, os.PathLike)):
            return os.stat(cgroup).st_ino
    except OSError as exc:
        raise MapError(exc.errno or errno.ENOENT, f"no cgroup {cgroup!r}: {exc.strerror}", context=doing) from None
    raise TypeError(f"{doing}: a cgroup is a path, an fd or a CgroupId, not {type(cgroup).__name__}")


class CgroupId(int):
    """A cgroup's id given as is (an int would be read as an fd)."""


Map._classes.update(
    {
        MapType.CGRP_STORAGE: CgroupStorageMap,
        MapType.TASK_STORAGE: TaskStorageMap,
        MapType.INODE_STORAGE: InodeStorageMap,
        MapType.CGROUP_STORAGE: CgroupLocalStorageMap,
    }
)
