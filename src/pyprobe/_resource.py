"""The one owner type of every kernel resource (object, link, map fd, reader).

Close is idempotent; a context manager closes on exit; a ``weakref.finalize``
releases what was never closed and warns with ResourceWarning.
"""

from __future__ import annotations

import warnings
import weakref
from collections.abc import Callable
from types import TracebackType
from typing import Any, TypeVar

from pyprobe.errors import BpfError

__all__ = ["ClosedError", "Resource"]

R = TypeVar("R", bound="Resource")


class ClosedError(BpfError, ValueError):
    """The resource was closed; using it would touch freed memory."""


ClosedError.__module__ = "pyprobe"


def _release_unclosed(release: Callable[[], None], what: str) -> None:
    warnings.warn(f"unclosed {what}: released by the garbage collector", ResourceWarning, stacklevel=2)
    release()


class Resource:
    """Base class of everything that owns a kernel resource.

    Subclasses call :meth:`_own` once with a function that frees the
    resource; that function must not refer to ``self``.
    """

    _finalizer: weakref.finalize[Any, Any] | None = None
    _closed_release: Callable[[], None] | None = None

    def _own(self, release: Callable[[], None], what: str) -> None:
        self._what = what
        self._release = release
        self._finalizer = weakref.finalize(self, _release_unclosed, release, what)

    @property
    def closed(self) -> bool:
        """True once the resource was released."""
        return self._finalizer is None or not self._finalizer.alive

    def _check_open(self) -> None:
        if self.closed:
            what = getattr(self, "_what", type(self).__name__)
            raise ClosedError(0, "used after close()", context=what)

    def close(self) -> None:
        """Releases the resource now. Calling it again does nothing."""
        finalizer = self._finalizer
        if finalizer is not None and finalizer.detach() is not None:
            self._release()

    def _closer(self) -> Callable[[], None]:
        """A function that closes this resource without a warning, holding no reference to it."""
        finalizer, release = self._finalizer, self._release

        def close() -> None:
            if finalizer is not None and finalizer.detach() is not None:
                release()

        return close

    def __enter__(self: R) -> R:
        """Returns the resource itself; raises :class:`ClosedError` when it is closed."""
        self._check_open()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
