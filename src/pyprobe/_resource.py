"""The one owner type of every kernel resource (object, link, map fd, reader).

Close is idempotent; a context manager closes on exit; a ``weakref.finalize``
releases what was never closed and warns with ResourceWarning.

Every call that hands the resource's memory or fd to C runs inside its
:class:`Guard` (``with self._guard:``). cffi releases the GIL during C calls,
so another thread may close the resource meanwhile: close() then marks it
closed (calls entering later raise :class:`ClosedError`) and the release
runs when the last call in flight leaves the guard, in that call's thread.
Nothing is freed, and no fd number given back to the kernel, under a C call.
"""

from __future__ import annotations

import warnings
import weakref
from collections.abc import Callable
from types import TracebackType
from typing import Any, TypeVar

from pyprobe.errors import BpfError

__all__ = ["ClosedError", "Guard", "Resource"]

R = TypeVar("R", bound="Resource")

_OPEN, _CLOSING, _RELEASED = 0, 1, 2


class ClosedError(BpfError, ValueError):
    """The resource was closed; using it would touch freed memory."""


ClosedError.__module__ = "pyprobe"


class Guard:
    """Counts the calls in flight on one resource and releases it when it is closed and none is left.

    ``with guard:`` raises :class:`ClosedError` once the resource is closed,
    and otherwise holds off its release until the block ends. A child guard
    (a link made through an object) also holds its parent's. ``wake`` is
    called when close() finds calls in flight (before the release can run):
    readers use it to end a blocked wait.

    The guard is on every call's path, so it uses no lock: a call appends
    to ``users`` and then looks at ``state``; close() sets ``state`` and then
    looks at ``users``. ``list.append``, ``list.pop`` and attribute stores
    are atomic in CPython (with the GIL and in free-threaded builds), so
    either close() sees the call and leaves the release to it, or the call
    sees the close and backs out without touching the resource. Whoever
    finds the resource closed and ``users`` empty pops the one release
    function from ``_claim``: exactly one caller gets it.
    """

    __slots__ = ("_claim", "parent", "state", "users", "wake", "what")

    def __init__(self, release: Callable[[], None] | None, what: str, parent: Guard | None = None) -> None:
        self._claim: list[Callable[[], None]] = [release] if release is not None else []
        self.what = what
        self.parent = parent
        self.users: list[None] = []
        self.state = _OPEN if release is not None else _RELEASED
        self.wake: Callable[[], None] | None = None

    @property
    def closed(self) -> bool:
        return self.state != _OPEN

    def closed_error(self) -> ClosedError:
        return ClosedError(0, "used after close()", context=self.what)

    def __enter__(self) -> None:
        parent = self.parent
        if parent is not None:
            parent.__enter__()
        users = self.users
        users.append(None)
        if self.state != _OPEN:
            users.pop()
            self._settle()
            if parent is not None:
                parent.__exit__(None, None, None)
            raise self.closed_error()

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        users = self.users
        users.pop()
        if self.state != _OPEN and not users:
            self._settle()
        if self.parent is not None:
            self.parent.__exit__(None, None, None)

    def close(self) -> None:
        """Closes: at once when no call is in flight, else when the last one leaves. Idempotent; never blocks."""
        if self.state != _OPEN:
            return
        users = self.users
        users.append(None)  # holds off the release while waking
        self.state = _CLOSING
        if len(users) > 1 and self.wake is not None:
            self.wake()
        users.pop()
        self._settle()

    def _settle(self) -> None:
        """Runs the release if the resource is closed, no call is in flight and nobody ran it yet."""
        if self.users:
            return
        try:
            release = self._claim.pop()
        except IndexError:
            return
        self.state = _RELEASED
        release()


_RELEASED_GUARD = Guard(None, "a resource that was never opened")


def _release_unclosed(guard: Guard) -> None:
    warnings.warn(f"unclosed {guard.what}: released by the garbage collector", ResourceWarning, stacklevel=2)
    # At interpreter exit a daemon thread may still be inside a call: the
    # guard then leaves the release to that call, which may never return
    # (the fd is left to the kernel rather than freed under it).
    guard.close()


class Resource:
    """Base class of everything that owns a kernel resource.

    Subclasses call :meth:`_own` once with a function that frees the
    resource; that function must not refer to ``self``. Every operation
    that passes the resource's memory or fd to C does so inside
    ``with self._guard:``.
    """

    _finalizer: weakref.finalize[Any, Any] | None = None
    _guard: Guard = _RELEASED_GUARD

    def _own(self, release: Callable[[], None], what: str, parent: Guard | None = None) -> None:
        self._what = what
        self._guard = guard = Guard(release, what, parent)
        self._finalizer = weakref.finalize(self, _release_unclosed, guard)

    @property
    def closed(self) -> bool:
        """True once the resource was closed (its release may wait for a call still in flight in another thread)."""
        return self._guard.state != _OPEN

    def _check_open(self) -> None:
        if self._guard.state != _OPEN:
            raise self._guard.closed_error()

    def close(self) -> None:
        """Releases the resource, or marks it closed and leaves the release to the last call in flight.

        Calling it again does nothing. Calls entering after it raise
        :class:`ClosedError`; a call already running in another thread
        finishes (a blocked reader wait is woken) and the release follows it.
        Never blocks.
        """
        finalizer = self._finalizer
        if finalizer is not None:
            finalizer.detach()
        self._guard.close()

    def _closer(self) -> Callable[[], None]:
        """A function that closes this resource without a warning, holding no reference to it."""
        finalizer, guard = self._finalizer, self._guard

        def close() -> None:
            if finalizer is not None:
                finalizer.detach()
            guard.close()

        return close

    def __enter__(self: R) -> R:
        """Returns the resource itself; raises :class:`ClosedError` when it is closed."""
        self._check_open()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
