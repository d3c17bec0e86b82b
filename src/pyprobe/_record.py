"""Small record classes without :mod:`dataclasses`: equality, hash and repr over named fields.

:mod:`dataclasses` imports :mod:`inspect` and compiles each class's methods
when the class is defined (about 10 ms for pyprobe's records), which every
``import pyprobe`` would pay. A record class lists its fields in ``_fields_``
(in constructor order) and in ``__slots__``, and sets them in ``__init__``.
"""

from __future__ import annotations

from typing import Any, ClassVar

__all__ = ["FrozenRecord", "Record"]


class Record:
    """A mutable record: ``==`` compares the fields of two records of the same class; not hashable."""

    __slots__ = ()
    _fields_: ClassVar[tuple[str, ...]] = ()
    """The fields in constructor order (repr, and equality unless ``_compare_`` says otherwise)."""
    _compare_: ClassVar[tuple[str, ...] | None] = None
    """The fields equality and hash compare, when not all of them."""

    def _key(self) -> tuple[Any, ...]:
        return tuple(getattr(self, name) for name in (self._fields_ if self._compare_ is None else self._compare_))

    def __eq__(self, other: object) -> bool:
        if other.__class__ is not self.__class__:
            return NotImplemented
        return self._key() == other._key()

    __hash__ = None  # type: ignore[assignment]  # a mutable record is not hashable

    def __repr__(self) -> str:
        fields = ", ".join(f"{name}={getattr(self, name)!r}" for name in self._fields_)
        return f"{type(self).__qualname__}({fields})"


class FrozenRecord(Record):
    """An immutable, hashable record: assigning or deleting a field raises AttributeError.

    ``__init__`` sets the fields with ``object.__setattr__``; copy and pickle
    rebuild the record through its constructor.
    """

    __slots__ = ()

    def __hash__(self) -> int:  # type: ignore[override]
        return hash(self._key())

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"cannot assign to field {name!r}")

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"cannot delete field {name!r}")

    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:
        return type(self), tuple(getattr(self, name) for name in self._fields_)
