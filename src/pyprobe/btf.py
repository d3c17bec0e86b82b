"""BPF Type Format: Python types made from an object's (or the kernel's) BTF.

Integers, enums and pointers become ctypes integer types (pointers as
unsigned integers of pointer size); structs and unions become
:class:`ctypes.Structure` / :class:`ctypes.Union` subclasses whose layout
(size and every member offset) is checked against BTF, with attribute access,
bitfields, ``to_dict()`` and ``from_dict()``; arrays become ctypes arrays
(``char`` arrays read as ``bytes``); typedefs and qualifiers resolve to the
type they name. Each type is built once and cached by its BTF id.

Setting a member checks its range as a map key is checked: a number the
member's C type cannot hold (``2**32 + 5`` in a u32, -1 in an unsigned
member, 1e300 in a float) raises ValueError naming the member, where ctypes
alone would store it wrapped (5, 0xFFFFFFFF, inf). BTF is untrusted input:
a type that contains itself, or nests deeper than any real type, raises
:class:`BtfError` instead of recursing.

Decoding raw bytes is ``ctype.from_buffer_copy(raw)``; :func:`numpy_dtype`
gives the matching numpy dtype when numpy is installed.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import operator
import os
import struct
import weakref
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, ClassVar, NamedTuple

from pyprobe._ffi import cstr, ffi, lib
from pyprobe._record import FrozenRecord
from pyprobe.errors import BpfError, check_ptr

__all__ = ["Btf", "BtfError", "BtfStruct", "BtfUnion", "Kind", "numpy_dtype", "to_python"]


class BtfError(BpfError, LookupError):
    """A BTF type is missing or cannot be represented in Python."""


BtfError.__module__ = "pyprobe"


class Kind:
    """BTF_KIND_* values."""

    UNKN, INT, PTR, ARRAY, STRUCT, UNION, ENUM, FWD, TYPEDEF = 0, 1, 2, 3, 4, 5, 6, 7, 8
    VOLATILE, CONST, RESTRICT, FUNC, FUNC_PROTO, VAR, DATASEC, FLOAT = 9, 10, 11, 12, 13, 14, 15, 16
    DECL_TAG, TYPE_TAG, ENUM64 = 17, 18, 19


_INT_SIGNED, _INT_CHAR, _INT_BOOL = 1, 2, 4
_QUALIFIERS = (Kind.TYPEDEF, Kind.VOLATILE, Kind.CONST, Kind.RESTRICT, Kind.TYPE_TAG, Kind.DECL_TAG)
_NAMED_KINDS = (Kind.STRUCT, Kind.UNION, Kind.TYPEDEF, Kind.INT, Kind.ENUM, Kind.ENUM64, Kind.FLOAT, Kind.DATASEC)
_PREFIXES = {"struct": Kind.STRUCT, "union": Kind.UNION, "enum": Kind.ENUM}
_MAX_DEPTH = 128
"""How deep types may nest (struct in struct, array of arrays, typedef chains) before the BTF is refused."""


class Member(NamedTuple):
    """One member of a BTF struct or union."""

    name: str
    type_id: int
    bit_offset: int
    bitfield_size: int = 0


class TypeRecord(FrozenRecord):
    """One BTF type record as read from libbpf, independent of libbpf's memory."""

    __slots__ = (
        "elem_type", "enum_values", "extra", "id", "int_bits", "int_encoding", "int_offset", "kind", "members",
        "name", "nelems", "ref", "signed", "size", "vars",
    )  # fmt: skip
    _fields_ = (
        "id", "kind", "name", "size", "ref", "int_encoding", "int_bits", "int_offset", "signed", "members",
        "enum_values", "elem_type", "nelems", "vars", "extra",
    )  # fmt: skip
    _compare_ = _fields_[:-1]  # not extra

    id: int
    kind: int
    name: str
    size: int
    """Byte size for INT, STRUCT, UNION, ENUM, FLOAT, DATASEC."""
    ref: int
    """The referenced type for PTR, TYPEDEF, qualifiers, VAR, FUNC."""
    int_encoding: int
    int_bits: int
    int_offset: int
    signed: bool
    """Enums: whether the values are signed (kflag)."""
    members: tuple[Member, ...]
    enum_values: tuple[tuple[str, int], ...]
    elem_type: int
    nelems: int
    vars: tuple[tuple[int, int, int], ...]
    """DATASEC: (VAR type id, offset, size) per variable."""
    extra: dict[str, Any]

    def __init__(
        self, id: int, kind: int, name: str, size: int = 0, ref: int = 0, int_encoding: int = 0, int_bits: int = 0,
        int_offset: int = 0, signed: bool = False, members: tuple[Member, ...] = (),
        enum_values: tuple[tuple[str, int], ...] = (), elem_type: int = 0, nelems: int = 0,
        vars: tuple[tuple[int, int, int], ...] = (), extra: dict[str, Any] | None = None,
    ) -> None:  # fmt: skip
        values = (
            id, kind, name, size, ref, int_encoding, int_bits, int_offset, signed, members, enum_values, elem_type,
            nelems, vars, {} if extra is None else extra,
        )  # fmt: skip
        for field, value in zip(self._fields_, values, strict=True):
            object.__setattr__(self, field, value)


class _BtfComposite:
    """Behaviour shared by the struct and union types made from BTF."""

    _btf_name_: ClassVar[str] = ""
    _btf_members_: ClassVar[tuple[str, ...]] = ()
    _btf_layout_: ClassVar[tuple[tuple[str, int, Any], ...]] = ()
    """(name, byte offset, ctype) of every member that is not a bitfield, anonymous ones flattened."""
    _btf_checks_: ClassVar[dict[str, Any] | None] = None
    """Every field name ctypes sets (promoted ones too) -> its bounds; made on the first assignment."""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls._btf_checks_ = None  # each class its own: a subclass may add fields

    def to_dict(self) -> dict[str, Any]:
        """The members as a dict (nested structs as dicts, arrays as lists, char arrays as bytes)."""
        return {name: to_python(getattr(self, name)) for name in self._btf_members_}

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> Any:
        """A new instance with the members given by ``values`` (nested dicts and lists allowed)."""
        inst = cls()
        inst._assign(values)
        return inst

    def _assign(self, values: dict[str, Any]) -> None:
        if not isinstance(values, dict):
            raise TypeError(f"{self._btf_name_} takes a dict of its members, not {type(values).__name__}")
        checks = self._btf_checks_
        if checks is None:
            checks = _member_checks(type(self))
        for name, value in values.items():
            if name not in self._btf_members_:
                raise ValueError(f"{self._btf_name_} has no member {name!r} (it has: {', '.join(self._btf_members_)})")
            if value.__class__ is int:  # the common case without a second Python call: __setattr__'s check inline
                bounds = checks.get(name)
                if bounds.__class__ is tuple and bounds[0] <= value <= bounds[1]:
                    _object_setattr(self, name, value)
                    continue
            if isinstance(value, (dict, list, tuple)):
                current = getattr(self, name)
                if isinstance(value, dict) and isinstance(current, _BtfComposite):
                    try:
                        current._assign(value)
                    except (TypeError, ValueError) as exc:
                        raise type(exc)(f"member {name!r} of {self._btf_name_}: {exc}") from None
                    continue
                if not isinstance(value, dict) and isinstance(current, ctypes.Array):
                    fill_array(current, value, f"member {name!r} of {self._btf_name_}")
                    continue
            setattr(self, name, value)

    if not TYPE_CHECKING:  # type checkers see each member's own type

        def __setattr__(self, name: str, value: Any) -> None:
            """Sets a member; a number its C type cannot hold raises ValueError naming the member.

            ctypes itself would store ``2**32 + 5`` in a u32 as 5, -1 as
            0xFFFFFFFF and 1e300 in a float as inf.
            """
            members = self._btf_checks_
            if members is None:
                members = _member_checks(type(self))
            bounds = members.get(name, _NOT_A_FIELD)
            if bounds is _NOT_A_FIELD:  # a bitfield or another property: it checks for itself
                _object_setattr(self, name, value)
                return
            if bounds is not None:
                if value.__class__ is int and bounds.__class__ is tuple:  # the common case, inline
                    if not bounds[0] <= value <= bounds[1]:
                        check_scalar(bounds, value, f"member {name!r} of {self._btf_name_}")
                else:
                    check_scalar(bounds, value, f"member {name!r} of {self._btf_name_}")
            try:
                _object_setattr(self, name, value)
            except (TypeError, ValueError, OverflowError) as exc:
                kind = TypeError if isinstance(exc, TypeError) else ValueError
                raise kind(f"member {name!r} of {self._btf_name_}: {exc}") from None

    def __repr__(self) -> str:
        inner = ", ".join(f"{k}={v!r}" for k, v in self.to_dict().items())
        return f"{type(self).__name__}({inner})"

    def __eq__(self, other: object) -> bool:
        if type(other) is type(self):
            mine: bytes = bytes(self)  # type: ignore[call-overload]
            theirs: bytes = bytes(other)  # type: ignore[call-overload]
            return mine == theirs
        if isinstance(other, dict):
            return self.to_dict() == other
        return NotImplemented

    def __hash__(self) -> int:
        # bytes(self) reads the buffer directly: a third faster than through a memoryview (dicts of struct keys)
        return hash(bytes(self))  # type: ignore[call-overload]


class BtfStruct(_BtfComposite, ctypes.Structure):
    """Base class of the struct types made from BTF (and of generated skeletons' struct classes).

    Assigning a member (``s.pid = n``, ``Event(pid=n)``, ``from_dict``)
    raises ValueError naming it for a number its C type cannot hold, and
    TypeError for a value of the wrong kind.
    """

    if TYPE_CHECKING:
        # ctypes' stubs give every Structure a catch-all __getattr__/__setattr__, which lets a misspelt
        # member of a generated class through mypy; a subclass has exactly the members it declares.
        __getattr__: None  # type: ignore[misc, assignment]
        __setattr__: None  # type: ignore[misc, assignment]


class BtfUnion(_BtfComposite, ctypes.Union):
    """Base class of the union types made from BTF."""

    if TYPE_CHECKING:
        __getattr__: None  # type: ignore[misc, assignment]
        __setattr__: None  # type: ignore[misc, assignment]


_C_HASHES: tuple[Any, ...] = ()
"""The ``__hash__`` methods written in C that BtfStruct and BtfUnion have (none without pyprobe._decode)."""


def _hash_in_c() -> None:
    """Gives BtfStruct and BtfUnion a ``__hash__`` written in C (pyprobe._decode), where it is built.

    It hashes the bytes in place (``pyprobe._decode.key_hash``, SipHash-1-3
    keyed per process), without the Python frame and the bytes object of the
    Python method: a dict of a million struct keys (a map dump) calls it once
    per key. Equal structs (equal bytes) hash equal under either method; a map
    dump computes the same hash from the raw keys to insert them in slot order.
    """
    global _C_HASHES  # noqa: PLW0603 - set once, at import
    try:
        from pyprobe._decode import bytes_hash
    except ImportError:
        return
    for cls in (BtfStruct, BtfUnion):
        setattr(cls, "__hash__", bytes_hash(cls))  # noqa: B010 - mypy refuses assigning a method
    _C_HASHES = (BtfStruct.__dict__["__hash__"], BtfUnion.__dict__["__hash__"])


_hash_in_c()

_CLASS_ATTRIBUTES = frozenset(
    {n for n in set(dir(BtfStruct)) | set(dir(BtfUnion)) | set(dir(type(BtfStruct))) if n.startswith("_") or
     callable(getattr(BtfStruct, n, None)) or callable(getattr(BtfUnion, n, None))}
    | {"_fields_", "_pack_", "_anonymous_", "_align_", "_layout_", "_swappedbytes_", "_btf_id_", "_btf_layout_",
       "_btf_members_", "_btf_name_", "__module__", "__qualname__", "__dict__", "__weakref__", "__slots__"}
)  # fmt: skip
"""Names a member may not take in a class made from BTF (it would replace the class's own): it gets another."""


def _reserved(name: str) -> bool:
    return name in _CLASS_ATTRIBUTES or (name.startswith("__") and name.endswith("__"))


def to_python(value: Any) -> Any:
    """A decoded ctypes value as plain Python: structs to dicts, arrays to lists, scalars as they are."""
    if isinstance(value, _BtfComposite):
        return value.to_dict()
    if isinstance(value, ctypes.Array):
        if getattr(value, "_type_", None) is ctypes.c_char:
            return bytes(value.value)
        return [to_python(v) for v in value]
    if isinstance(value, ctypes._SimpleCData):
        return value.value
    return value


_NOT_A_FIELD: Any = object()
_object_setattr = object.__setattr__
Bounds = tuple[int, int] | str
"""What a scalar member holds: (lowest, highest) for an integer, ``"f"`` for a C float."""

_SIGNED_CODES = frozenset("bhilq")
_UNSIGNED_CODES = frozenset("BHILQ")
_F32 = struct.Struct("<f")  # standard size: packing raises OverflowError where native "f" stores inf


def scalar_bounds(ctype: Any) -> Bounds | None:
    """The range of numbers ``ctype`` holds when it is an integer or a C float, else None."""
    try:
        return _BOUNDS[ctype]
    except (KeyError, TypeError):
        pass
    bounds = _scalar_bounds(ctype)
    if isinstance(ctype, type):
        _BOUNDS[ctype] = bounds
    return bounds


_BOUNDS: dict[Any, Bounds | None] = {}


def _scalar_bounds(ctype: Any) -> Bounds | None:
    code = getattr(ctype, "_type_", None)
    if not isinstance(code, str) or not (isinstance(ctype, type) and issubclass(ctype, ctypes._SimpleCData)):
        return None
    bits = 8 * ctypes.sizeof(ctype)
    if code in _UNSIGNED_CODES:
        return (0, (1 << bits) - 1)
    if code in _SIGNED_CODES:
        return (-(1 << (bits - 1)), (1 << (bits - 1)) - 1)
    if code == "f":
        return "f"
    return None


def _c_type_name(bounds: tuple[int, int]) -> str:
    low, high = bounds
    bits = (high - low).bit_length()
    return f"{'s' if low else 'u'}{bits}"


def check_scalar(bounds: Bounds, value: Any, what: str) -> None:
    """Raises ValueError naming ``what`` when ``value`` is a number outside ``bounds``.

    Anything that is not a number is left to ctypes, which raises TypeError.
    """
    if isinstance(bounds, str):  # "f"
        if isinstance(value, (int, float)):
            try:
                _F32.pack(value)
            except (OverflowError, struct.error):
                raise ValueError(f"{what}: {value!r} is out of range for a float (32 bits)") from None
        return
    if isinstance(value, int):
        number = value
    elif hasattr(type(value), "__index__") and not isinstance(value, ctypes._SimpleCData):
        number = operator.index(value)
    else:
        return
    low, high = bounds
    if not low <= number <= high:
        raise ValueError(f"{what}: {number} is out of range for {_c_type_name(bounds)} ({low}..{high})")


def _member_checks(cls: Any) -> dict[str, Bounds | None]:
    """Every member name ctypes sets on ``cls`` (promoted ones included) -> its bounds; cached on the class."""
    checks: dict[str, Bounds | None] = {}
    for klass in reversed(cls.__mro__):
        fields = klass.__dict__.get("_fields_", ())
        anonymous = set(klass.__dict__.get("_anonymous_", ()))
        for spec in fields:
            name, ftype = spec[0], spec[1]
            if len(spec) > 2:  # a ctypes bitfield: ctypes range-checks nothing there either
                checks[name] = _bitfield_bounds(ftype, int(spec[2]))
                continue
            checks[name] = scalar_bounds(ftype)
            if name in anonymous:
                checks.update(_member_checks(ftype))
    cls._btf_checks_ = checks
    return checks


def _bitfield_bounds(ftype: Any, bits: int) -> Bounds | None:
    bounds = scalar_bounds(ftype)
    if not isinstance(bounds, tuple):
        return bounds
    return (-(1 << (bits - 1)), (1 << (bits - 1)) - 1) if bounds[0] else (0, (1 << bits) - 1)


_PACKERS: dict[tuple[str, int], struct.Struct] = {}


def _packer(code: str, count: int) -> struct.Struct:
    """The (cached) struct packing ``count`` integers of ctypes code ``code`` back to back."""
    found = _PACKERS.get((code, count))
    if found is None:
        found = struct.Struct(f"{count}{code}")
        if len(_PACKERS) < 1024:
            _PACKERS[(code, count)] = found
    return found


def fill_array(array: Any, values: list[Any] | tuple[Any, ...], what: str) -> None:
    """Sets the items of the ctypes ``array`` from ``values`` (nested lists, dicts for structs).

    Raises ValueError naming ``what`` and the index for too many values or a
    number the element type cannot hold, TypeError for a value of the wrong kind.
    """
    length = len(array)
    if len(values) > length:
        raise ValueError(f"{what} holds {length} items, not {len(values)}")
    elem = type(array)._type_
    bounds = scalar_bounds(elem)
    if values and isinstance(bounds, tuple):
        packer = _packer(elem._type_, len(values))
        try:  # integers: packed and range-checked in C
            packer.pack_into(array, 0, *values)
            return
        except (struct.error, TypeError):
            pass  # not all integers in range: item by item, for an error naming the index
    for i, item in enumerate(values):
        if bounds is not None:
            check_scalar(bounds, item, f"{what}[{i}]")
        if isinstance(item, (list, tuple)) and issubclass(elem, ctypes.Array):
            fill_array(array[i], item, f"{what}[{i}]")
            continue
        try:
            if isinstance(item, dict) and issubclass(elem, _BtfComposite):
                array[i]._assign(item)
            else:
                array[i] = item
        except (TypeError, ValueError, OverflowError) as exc:
            kind = TypeError if isinstance(exc, TypeError) else ValueError
            raise kind(f"{what}[{i}]: {exc}") from None


def _bitfield(start: int, bits: int, signed: bool, name: str) -> property:
    """A property reading and writing ``bits`` bits at bit ``start`` of the instance's memory."""
    first = start // 8
    shift = start % 8
    nbytes = (shift + bits + 7) // 8
    mask = (1 << bits) - 1

    def get(self: Any) -> int:
        raw = int.from_bytes(ctypes.string_at(ctypes.addressof(self) + first, nbytes), "little")
        value = (raw >> shift) & mask
        if signed and value >> (bits - 1):
            value -= 1 << bits
        return value

    def set_(self: Any, value: int) -> None:
        if not isinstance(value, int):
            raise TypeError(f"bitfield {name!r} takes an int, not {type(value).__name__}")
        low, high = (-(1 << (bits - 1)), (1 << (bits - 1)) - 1) if signed else (0, mask)
        if not low <= value <= high:
            raise ValueError(f"bitfield {name!r} ({bits} bits) cannot hold {value}")
        addr = ctypes.addressof(self) + first
        raw = int.from_bytes(ctypes.string_at(addr, nbytes), "little")
        raw = (raw & ~(mask << shift)) | ((value & mask) << shift)
        ctypes.memmove(addr, raw.to_bytes(nbytes, "little"), nbytes)

    return property(get, set_, doc=f"bitfield of {bits} bits")


def _forward(outer: str, inner: str) -> property:
    def get(self: Any) -> Any:
        return getattr(getattr(self, outer), inner)

    def set_(self: Any, value: Any) -> None:
        setattr(getattr(self, outer), inner, value)

    return property(get, set_)


_INTS: dict[tuple[int, bool], Any] = {
    (1, False): ctypes.c_uint8, (1, True): ctypes.c_int8,
    (2, False): ctypes.c_uint16, (2, True): ctypes.c_int16,
    (4, False): ctypes.c_uint32, (4, True): ctypes.c_int32,
    (8, False): ctypes.c_uint64, (8, True): ctypes.c_int64,
}  # fmt: skip


def int_type(size: int, signed: bool) -> Any:
    """The ctypes integer type of ``size`` bytes (16-byte integers become ``c_uint8 * 16``)."""
    found = _INTS.get((size, signed))
    if found is None:
        return ctypes.c_uint8 * size
    return found


class Btf:
    """Type information of a BPF object, or of a map loaded by the kernel.

    Got from :attr:`BpfObject.btf`, :attr:`Map.btf` or :meth:`Btf.from_file`.
    The types it builds are plain Python classes that stay valid after the
    BTF (or its object) is closed; building a new type needs it open.
    Nothing here blocks or makes a system call except :meth:`from_kernel`.
    """

    def __init__(
        self, ptr: Any, *, check: Callable[[], None] | None = None, owned: bool = False, guard: Any = None
    ) -> None:
        self._ptr = ptr
        self._check = check
        self._guard: Any = guard if guard is not None else contextlib.nullcontext()
        """Held around every libbpf call: the owning object's guard (see pyprobe._resource), or nothing."""
        self._records: dict[int, TypeRecord] = {}
        self._types: dict[int, Any] = {}
        self._by_name: dict[str, int] = {}
        self._building: list[int] = []
        self._finalizer = weakref.finalize(self, lib.btf__free, ptr) if owned else None

    @classmethod
    def from_file(cls, path: str | os.PathLike[str]) -> Btf:
        """Reads the BTF of an ELF file (a ``.bpf.o``, vmlinux) or a raw BTF file (/sys/kernel/btf/vmlinux)."""
        path = os.fspath(path)
        if not os.path.exists(path):
            raise BtfError(errno.ENOENT, "No such file or directory", context=f"read BTF of {path}")
        ptr = check_ptr(lib.btf__parse(os.fsencode(path), ffi.NULL), f"read BTF of {path}", BtfError)
        return cls(ptr, owned=True)

    @classmethod
    def from_kernel(cls, btf_id: int) -> Btf:
        """Loads the BTF the kernel holds under ``btf_id`` (e.g. a map's ``bpf_map_info.btf_id``)."""
        ptr = check_ptr(lib.btf__load_from_kernel_by_id(btf_id), f"load BTF id {btf_id} from the kernel", BtfError)
        return cls(ptr, owned=True)

    def _live(self) -> Any:
        if self._check is not None:
            self._check()
        return self._ptr

    def __len__(self) -> int:
        """Number of type ids (id 0, void, included)."""
        with self._guard:
            return int(lib.btf__type_cnt(self._live()))

    # --- records ---------------------------------------------------------------
    def record(self, type_id: int) -> TypeRecord:
        """The raw record of ``type_id`` (kind, name, size, members...)."""
        rec = self._records.get(type_id)
        if rec is None:
            with self._guard:
                rec = self._read(type_id)
            self._records[type_id] = rec
        return rec

    def _read(self, type_id: int) -> TypeRecord:  # noqa: PLR0911 - one return per BTF kind
        if not isinstance(type_id, int) or isinstance(type_id, bool):
            raise TypeError(f"a BTF type id is an int, not {type(type_id).__name__}")
        ptr = self._live()
        if type_id == 0:
            return TypeRecord(0, Kind.UNKN, "void")
        if not 0 < type_id < lib.btf__type_cnt(ptr):
            raise BtfError(errno.ENOENT, f"no BTF type id {type_id}", context="look up BTF type")
        t = lib.btf__type_by_id(ptr, type_id)
        info = int(t.info)
        kind, vlen, kflag = (info >> 24) & 0x1F, info & 0xFFFF, bool(info >> 31)
        name = cstr(lib.btf__name_by_offset(ptr, t.name_off))
        size_or_type = int(t.size)
        tail = t + 1
        if kind == Kind.INT:
            enc = int(ffi.cast("__u32 *", tail)[0])
            return TypeRecord(
                type_id, kind, name, size=size_or_type,
                int_encoding=(enc >> 24) & 0x0F, int_offset=(enc >> 16) & 0xFF, int_bits=enc & 0xFF,
            )  # fmt: skip
        if kind in (Kind.STRUCT, Kind.UNION):
            raw = ffi.cast("struct btf_member *", tail)
            members = []
            for i in range(vlen):
                m = raw[i]
                off = int(m.offset)
                bit_off, bits = (off & 0xFFFFFF, off >> 24) if kflag else (off, 0)
                members.append(Member(cstr(lib.btf__name_by_offset(ptr, m.name_off)), int(m.type), bit_off, bits))
            return TypeRecord(type_id, kind, name, size=size_or_type, members=tuple(members))
        if kind == Kind.ENUM:
            e = ffi.cast("struct btf_enum *", tail)
            values = tuple((cstr(lib.btf__name_by_offset(ptr, e[i].name_off)), int(e[i].val)) for i in range(vlen))
            return TypeRecord(type_id, kind, name, size=size_or_type, signed=kflag, enum_values=values)
        if kind == Kind.ENUM64:
            e64 = ffi.cast("struct btf_enum64 *", tail)
            values64 = []
            for i in range(vlen):
                v = int(e64[i].val_lo32) | (int(e64[i].val_hi32) << 32)
                if kflag and v >> 63:
                    v -= 1 << 64
                values64.append((cstr(lib.btf__name_by_offset(ptr, e64[i].name_off)), v))
            return TypeRecord(type_id, kind, name, size=size_or_type, signed=kflag, enum_values=tuple(values64))
        if kind == Kind.ARRAY:
            a = ffi.cast("struct btf_array *", tail)
            return TypeRecord(type_id, kind, name, elem_type=int(a.type), nelems=int(a.nelems))
        if kind == Kind.DATASEC:
            s = ffi.cast("struct btf_var_secinfo *", tail)
            secvars = tuple((int(s[i].type), int(s[i].offset), int(s[i].size)) for i in range(vlen))
            return TypeRecord(type_id, kind, name, size=size_or_type, vars=secvars)
        if kind in (Kind.FLOAT, Kind.FWD):
            return TypeRecord(type_id, kind, name, size=size_or_type if kind == Kind.FLOAT else 0, signed=kflag)
        if kind == Kind.VAR:
            linkage = int(ffi.cast("struct btf_var *", tail).linkage)
            return TypeRecord(type_id, kind, name, ref=size_or_type, extra={"linkage": linkage})
        # PTR, TYPEDEF, qualifiers, FUNC, FUNC_PROTO (its return type), DECL_TAG
        return TypeRecord(type_id, kind, name, ref=size_or_type)

    def find(self, name: str, kind: int | None = None) -> int:
        """The id of the type called ``name`` (``"struct event"``, ``"event"``, ``"u32"``).

        Raises :class:`BtfError` (a LookupError) when there is none.
        """
        if not isinstance(name, str):
            raise TypeError(f"a BTF type name is a str, not {type(name).__name__}")
        key = f"{kind}:{name}"
        found = self._by_name.get(key)
        if found is not None:
            return found
        with self._guard:
            return self._find(name, kind, key)

    def _find(self, name: str, kind: int | None, key: str) -> int:
        ptr = self._live()
        words = name.split(None, 1)
        kinds: tuple[int, ...]
        bare = name
        if kind is not None:
            kinds = (kind,)
        elif len(words) == 2 and words[0] in _PREFIXES:
            bare = words[1]
            kinds = (_PREFIXES[words[0]], Kind.ENUM64) if words[0] == "enum" else (_PREFIXES[words[0]],)
        else:
            kinds = _NAMED_KINDS
        for k in kinds:
            ret = int(lib.btf__find_by_name_kind(ptr, bare.encode(), k))
            if ret > 0:
                self._by_name[key] = ret
                return ret
        raise BtfError(errno.ENOENT, f"no type named {name!r} in BTF", context="look up BTF type")

    # --- Python types ----------------------------------------------------------
    def type_by_name(self, name: str) -> Any:
        """The Python (ctypes) type made from the BTF type called ``name``; built once, cached."""
        return self.type_by_id(self.find(name))

    def type_by_id(self, type_id: int) -> Any:
        """The Python (ctypes) type made from BTF type ``type_id``; built once, cached.

        Raises :class:`BtfError` for ids that name no data type (void, functions),
        and for malformed BTF: a type that contains itself (a struct member of
        its own struct type, typedefs naming each other) or that nests more
        than 128 types deep.
        """
        built = self._types.get(type_id)
        if built is None:
            building = self._building
            if type_id in building or len(building) >= _MAX_DEPTH:
                raise self._malformed(type_id, building)
            building.append(type_id)
            try:
                built = self._build(type_id)
            finally:
                building.pop()
            self._types[type_id] = built
        return built

    def _malformed(self, type_id: int, building: list[int]) -> BtfError:
        """The error for a type that contains itself, or nests deeper than any real type does."""
        rec = self.record(type_id)
        label = f"BTF type {type_id} ({rec.name or 'anonymous'})"
        if type_id in building:
            chain = " -> ".join(str(i) for i in [*building[building.index(type_id) :], type_id])
            message = f"{label} contains itself (type ids {chain})"
        else:
            message = f"{label} is nested more than {_MAX_DEPTH} types deep"
        return BtfError(errno.ELOOP, message, context="make a Python type from BTF", hint="the BTF is malformed")

    def resolve(self, type_id: int) -> TypeRecord:
        """The record behind typedefs and qualifiers."""
        rec = self.record(type_id)
        seen = 0
        while rec.kind in _QUALIFIERS and seen < 64:
            rec = self.record(rec.ref)
            seen += 1
        return rec

    def size_of(self, type_id: int) -> int:
        """Byte size of ``type_id`` as BTF gives it."""
        with self._guard:
            size = int(lib.btf__resolve_size(self._live(), type_id))
        if size < 0:
            raise BtfError(-size, f"BTF type {type_id} has no size", context="resolve BTF type size")
        return size

    def is_char(self, type_id: int) -> bool:
        """Whether ``type_id`` resolves to C ``char`` (whose arrays read as bytes)."""
        rec = self.resolve(type_id)
        return rec.kind == Kind.INT and rec.size == 1 and (rec.name == "char" or bool(rec.int_encoding & _INT_CHAR))

    def _build(self, type_id: int) -> Any:  # noqa: PLR0911 - one return per BTF kind
        rec = self.record(type_id)
        kind = rec.kind
        if kind in _QUALIFIERS:
            return self.type_by_id(rec.ref)
        if kind == Kind.INT:
            if rec.int_encoding & _INT_BOOL and rec.size == 1:
                return ctypes.c_bool
            return int_type(rec.size, bool(rec.int_encoding & _INT_SIGNED))
        if kind in (Kind.ENUM, Kind.ENUM64):
            return int_type(rec.size, rec.signed or any(v < 0 for _, v in rec.enum_values))
        if kind == Kind.PTR:
            with self._guard:
                return int_type(int(lib.btf__pointer_size(self._live())) or 8, False)
        if kind == Kind.FLOAT:
            return {4: ctypes.c_float, 8: ctypes.c_double}.get(rec.size) or ctypes.c_uint8 * rec.size
        if kind == Kind.ARRAY:
            elem = ctypes.c_char if self.is_char(rec.elem_type) else self.type_by_id(rec.elem_type)
            return elem * rec.nelems
        if kind in (Kind.STRUCT, Kind.UNION):
            return self._build_composite(rec)
        if kind == Kind.DATASEC:
            return self._build_datasec(rec)
        what = {Kind.UNKN: "void", Kind.FWD: "a forward declaration", Kind.FUNC: "a function"}.get(kind, f"kind {kind}")
        raise BtfError(
            errno.EINVAL, f"BTF type {type_id} ({rec.name or 'anonymous'}) is {what}: no data type",
            context="make a Python type from BTF",
        )  # fmt: skip

    def _build_composite(self, rec: TypeRecord) -> Any:
        is_union = rec.kind == Kind.UNION
        label = ("union " if is_union else "struct ") + (rec.name or f"<anonymous #{rec.id}>")
        fields: list[tuple[str, Any]] = []
        anonymous: list[str] = []
        props: dict[str, property] = {}
        names: list[str] = []
        layout: list[tuple[str, int, Any]] = []
        expected: list[tuple[str, int]] = []
        taken = {m.name for m in rec.members if m.name and not _reserved(m.name)}

        def attribute(name: str) -> str:
            """``name``, or a new one when it would replace an attribute the class needs (``__class__``)."""
            if not _reserved(name):
                return name
            found = "_" + name.lstrip("_") if name.startswith("__") else name + "_"
            while found in taken or _reserved(found):
                found += "_"
            taken.add(found)
            return found

        def internal(prefix: str) -> str:
            found = prefix
            while found in taken or _reserved(found):
                found += "_"
            taken.add(found)
            return found

        cursor = 0
        for index, m in enumerate(rec.members):
            if m.bitfield_size or m.bit_offset % 8:
                mrec = self.resolve(m.type_id)
                signed = bool(mrec.int_encoding & _INT_SIGNED) if mrec.kind == Kind.INT else mrec.signed
                bits = m.bitfield_size or 8 * mrec.size
                bname = attribute(m.name) if m.name else internal(f"_bitfield{index}")
                props[bname] = _bitfield(m.bit_offset, bits, signed, m.name)
                names.append(bname)
                continue
            offset = m.bit_offset // 8
            ctype = self.type_by_id(m.type_id)
            if offset > cursor and not is_union:
                fields.append((internal(f"_pad{index}"), ctypes.c_uint8 * (offset - cursor)))
            fname = attribute(m.name) if m.name else internal(f"_anon{index}")
            fields.append((fname, ctype))
            expected.append((fname, offset))
            if m.name:
                names.append(fname)
                layout.append((fname, offset, ctype))
            elif not _subclass(ctype, (ctypes.Structure, ctypes.Union)):
                pass  # an unnamed scalar or array: ctypes promotes only structs and unions; it stays unnamed
            else:
                anonymous.append(fname)
                inner_names = getattr(ctype, "_btf_members_", ())
                names.extend(inner_names)
                for iname, ioff, itype in getattr(ctype, "_btf_layout_", ()):
                    layout.append((iname, offset + ioff, itype))
                inner_fields = {f[0] for f in getattr(ctype, "_fields_", ())}
                for iname in inner_names:
                    if iname not in inner_fields:  # an inner bitfield: ctypes does not forward properties
                        props[iname] = _forward(fname, iname)
            cursor = max(cursor, offset + ctypes.sizeof(ctype))
        if cursor < rec.size and not is_union:
            fields.append((internal("_pad_end"), ctypes.c_uint8 * (rec.size - cursor)))
        if is_union and rec.size:
            fields.append((internal("_raw"), ctypes.c_uint8 * rec.size))
        base: Any = BtfUnion if is_union else BtfStruct
        cls_name = rec.name or f"anon_{'union' if is_union else 'struct'}_{rec.id}"
        attrs: dict[str, Any] = {
            "_btf_name_": label, "_btf_members_": tuple(names), "_btf_layout_": tuple(layout),
            "_btf_id_": rec.id, "__module__": "pyprobe.btf", **props,
        }  # fmt: skip
        if anonymous:
            attrs["_anonymous_"] = tuple(anonymous)
        for pack in (None, 1):
            body = dict(attrs)
            if pack:
                body["_pack_"] = pack
            body["_fields_"] = fields
            cls = type(cls_name, (base,), body)
            if ctypes.sizeof(cls) == rec.size and all(getattr(cls, n).offset == o for n, o in expected):
                return cls
        raise BtfError(
            errno.EINVAL, f"cannot lay out {label} as BTF says (size {rec.size})",
            context="make a Python type from BTF",
        )  # fmt: skip

    def _build_datasec(self, rec: TypeRecord) -> Any:
        members = []
        for var_id, offset, _size in rec.vars:
            var = self.record(var_id)
            if var.kind != Kind.VAR:
                continue
            members.append(Member(var.name, var.ref, offset * 8))
        fake = TypeRecord(rec.id, Kind.STRUCT, rec.name.lstrip(".") or "datasec", size=rec.size, members=tuple(members))
        return self._build_composite(fake)

    def variables(self, section: str) -> dict[str, tuple[int, Any]]:
        """The global variables of DATASEC ``section`` (``".bss"``): name -> (offset, ctype)."""
        rec = self.record(self.find(section, Kind.DATASEC))
        out: dict[str, tuple[int, Any]] = {}
        for var_id, offset, _size in rec.vars:
            var = self.record(var_id)
            if var.kind == Kind.VAR and var.name:
                out[var.name] = (offset, self.type_by_id(var.ref))
        return out

    def enum_values(self, name_or_id: str | int) -> dict[str, int]:
        """The enumerators of an enum type: name -> value."""
        type_id = self.find(name_or_id, None) if isinstance(name_or_id, str) else name_or_id
        rec = self.resolve(type_id)
        if rec.kind not in (Kind.ENUM, Kind.ENUM64):
            raise BtfError(errno.EINVAL, f"BTF type {rec.name or type_id} is not an enum", context="read enum values")
        return dict(rec.enum_values)

    def close(self) -> None:
        """Frees the BTF when this object owns it (loaded from a file or the kernel). Idempotent."""
        if self._finalizer is not None:
            self._finalizer()

    def __repr__(self) -> str:
        return f"<Btf types={len(self._types)} built>"


def numpy_dtype(ctype: Any) -> Any:
    """The numpy dtype with the layout of a ctypes type made from BTF.

    Structs map member by member at their BTF offsets (bitfields are left
    out: numpy has no bitfields), char arrays to ``S<n>``, other arrays to
    sub-array dtypes. Raises ImportError when numpy is not installed.
    """
    from pyprobe._numpy import require_numpy

    np = require_numpy("numpy_dtype()")
    ct: Any = ctype
    if _subclass(ct, _BtfComposite):
        layout = ct._btf_layout_
        return np.dtype(
            {
                "names": [n for n, _, _ in layout],
                "formats": [numpy_dtype(t) for _, _, t in layout],
                "offsets": [o for _, o, _ in layout],
                "itemsize": ctypes.sizeof(ct),
            }
        )
    if _subclass(ct, ctypes.Array):
        if ct._type_ is ctypes.c_char:
            return np.dtype(f"S{ct._length_}")
        return np.dtype((numpy_dtype(ct._type_), (ct._length_,)))
    if ct is ctypes.c_char:
        return np.dtype("S1")
    return np.dtype(ct)


def _subclass(t: Any, base: type | tuple[type, ...]) -> bool:
    return isinstance(t, type) and issubclass(t, base)
