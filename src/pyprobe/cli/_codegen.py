"""Python source made from an object's BTF: safe literals and names, and ctypes classes for its structs.

Everything read from an object is untrusted: file, program, map, variable,
member and type names reach generated code only as escaped string literals
(:func:`literal`), escaped comment or docstring text (:func:`text`), or as
identifiers checked by :func:`usable` (ASCII, not a keyword, not shadowing a
name the module uses). The type graph is walked with bounds: a struct nested
deeper than :data:`MAX_DEPTH` levels (or in a cycle), and anything past
:data:`MAX_CLASSES` classes, :data:`MAX_FIELDS` members or
:data:`MAX_VISITS` BTF records, is typed ``Any`` with a comment saying why,
and no class is generated for it. Nothing here touches the kernel.
"""

from __future__ import annotations

import builtins
import ctypes
import keyword
import re
import string
import sys
from collections.abc import Collection, Iterable
from typing import Any, NamedTuple

from pyprobe.btf import Btf, BtfError, BtfStruct, BtfUnion, Kind, TypeRecord

__all__ = [
    "ANNOTATION_NAMES", "BUILTIN_NAMES", "MAX_CLASSES", "MAX_DEPTH", "MAX_FIELDS", "MAX_VISITS", "Classes", "Typed",
    "camel", "literal", "qualify", "text", "usable",
]  # fmt: skip

MAX_DEPTH = 16
"""Deepest nesting of structs, unions and arrays a generated class may have."""
MAX_CLASSES = 1000
"""Most classes one module generates."""
MAX_FIELDS = 20000
"""Most members over all generated classes."""
MAX_VISITS = 500_000
"""Most BTF type records and members examined while measuring nesting."""

_INF = sys.maxsize
_SAFE = frozenset(string.ascii_letters + string.digits + string.punctuation + " ") - {"\\", '"'}
_QUALIFIERS = (Kind.TYPEDEF, Kind.VOLATILE, Kind.CONST, Kind.RESTRICT, Kind.TYPE_TAG, Kind.DECL_TAG)
_SCALAR_KINDS = (Kind.INT, Kind.ENUM, Kind.ENUM64, Kind.PTR, Kind.FLOAT)

BUILTIN_NAMES = frozenset({"int", "float", "bool", "bytes", "str", "list", "dict", "tuple", "type", "object"})
"""Builtins generated annotations use: a class with a member of such a name writes ``builtins.int`` instead."""
ANNOTATION_NAMES = frozenset({"None", "Any", "ClassVar", "ctypes", "pyprobe", "base64", "builtins"})
"""Other names generated annotations refer to: no member of a generated class may shadow them."""
_BUILTIN_RE = re.compile(r"(?<![\w.])(" + "|".join(sorted(BUILTIN_NAMES)) + r")\b")

_STRUCT_ATTRIBUTES = frozenset(
    set(dir(BtfStruct)) | set(dir(BtfUnion)) | set(dir(type(BtfStruct))) | set(dir(type(BtfUnion)))
    | {"_fields_", "_pack_", "_anonymous_", "_align_", "_layout_", "_swappedbytes_", "_b_base_", "_b_needsfree_",
       "_objects", "_type_", "_length_", "_btf_id_", "_btf_layout_", "_btf_members_", "_btf_name_"}
)  # fmt: skip

_CTYPE_NAMES: dict[Any, str] = {}
for _name in ("c_bool", "c_char", "c_float", "c_double", "c_int8", "c_uint8", "c_int16", "c_uint16", "c_int32",
              "c_uint32", "c_int64", "c_uint64"):  # fmt: skip
    _CTYPE_NAMES[getattr(ctypes, _name)] = f"ctypes.{_name}"


def text(value: str) -> str:
    """``value`` as printable ASCII for the inside of a double-quoted string, a docstring or a comment.

    Backslashes and double quotes are escaped, every other character outside
    printable ASCII (newlines included) becomes a ``\\x``/``\\u``/``\\U``
    escape, so the result never ends a string or a comment.
    """
    out = []
    for ch in value:
        if ch in _SAFE:
            out.append(ch)
        elif ch == "\\":
            out.append("\\\\")
        elif ch == '"':
            out.append('\\"')
        else:
            code = ord(ch)
            out.append(f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}")
    return "".join(out)


def literal(value: str) -> str:
    """A Python string literal (double-quoted, ASCII) whose value is ``value``."""
    return f'"{text(value)}"'


def usable(name: str, reserved: Collection[str] = ()) -> bool:
    """Whether ``name`` can be written as an identifier: ASCII, not a keyword, no leading ``__``, not reserved."""
    return (
        name.isascii() and name.isidentifier() and not keyword.iskeyword(name) and not name.startswith("__")
        and name not in reserved
    )  # fmt: skip


def qualify(annotation: str, shadowed: Collection[str]) -> str:
    """``annotation`` with the builtins in ``shadowed`` (names of members of the class) written ``builtins.X``."""
    if not shadowed:
        return annotation
    return _BUILTIN_RE.sub(lambda m: f"builtins.{m.group(1)}" if m.group(1) in shadowed else m.group(1), annotation)


def camel(name: str, fallback: str = "Type") -> str:
    """``open_event`` -> ``OpenEvent``: ASCII letters and digits only, never starting with a digit."""
    words = [w for w in re.split(r"[^0-9A-Za-z]+", name) if w]
    out = "".join(w[:1].upper() + w[1:] for w in words) or fallback
    return f"T{out}" if out[0].isdigit() else out


class Typed(NamedTuple):
    """How values of one BTF type appear in generated code."""

    value: str
    """Annotation of a decoded value: a map key or value, a global, an event (``int``, ``bytes``, ``OpenEvent``)."""
    field: str = "Any"
    """Annotation of a struct member of this type (what ctypes attribute access returns)."""
    element: str = "Any"
    """Annotation of the ctypes type itself, as an ``ctypes.Array`` parameter."""
    item: str = "Any"
    """Annotation of the value inside a decoded array (structs become dicts there)."""
    expr: str | None = None
    """The ctypes expression for ``_fields_``; None when the type cannot be generated."""
    ctype: Any = None
    """The ctypes type with the generated layout."""
    cls: str | None = None
    """The generated class, for structs and unions."""
    note: str = ""
    """Why the type is ``Any`` (a comment for the generated line)."""


def _fallback(note: str) -> Typed:
    return Typed("Any", note=note)


_BYTES = Typed("bytes", note="no BTF type")


class _ClassInfo(NamedTuple):
    name: str
    members: tuple[tuple[str, str], ...]
    """(member name, field annotation), anonymous members' members promoted, in C order."""
    exposed: frozenset[str]
    """Every name ctypes puts on instances: the ``_fields_`` entries (padding too) and, through
    ``_anonymous_``, those of anonymous members; not bitfields."""


class Classes:
    """The classes generated for the structs and unions of one BTF, built on demand by :meth:`type`.

    ``taken`` holds the module-level names already used (and receives the
    names of the classes made). :meth:`source` gives their definitions,
    each after the classes it uses.
    """

    def __init__(self, btf: Btf, taken: set[str]) -> None:
        self._btf = btf
        self._taken = taken
        self._done: dict[int, Typed] = {}
        self._info: dict[str, _ClassInfo] = {}
        self._height: dict[int, int] = {}
        self._visits = 0
        self._fields = 0
        self._lines: list[str] = []
        self.names: list[str] = []
        """The generated class names, in definition order."""
        self.uses_builtins = False
        """Whether an annotation is written ``builtins.X`` (the module imports builtins)."""

    # --- the type graph --------------------------------------------------------
    def _record(self, type_id: int) -> TypeRecord | None:
        try:
            return self._btf.record(type_id)
        except (BtfError, TypeError):
            return None

    def _resolve(self, type_id: int) -> tuple[TypeRecord | None, str]:
        """The record behind typedefs and qualifiers, and the nearest typedef's name."""
        alias = ""
        for _ in range(64):
            rec = self._record(type_id)
            if rec is None or rec.kind not in _QUALIFIERS:
                return rec, alias
            if rec.kind == Kind.TYPEDEF and not alias:
                alias = rec.name
            type_id = rec.ref
        return None, alias

    def _edges(self, rec: TypeRecord) -> tuple[int, list[int]]:
        if rec.kind in _QUALIFIERS:
            return 0, [rec.ref]
        if rec.kind == Kind.ARRAY:
            return 1, [rec.elem_type]
        if rec.kind in (Kind.STRUCT, Kind.UNION):
            return 1, [m.type_id for m in rec.members if not (m.bitfield_size or m.bit_offset % 8)]
        return 0, []

    def height(self, type_id: int) -> int:
        """Nesting depth of ``type_id`` (structs, unions, arrays each count one); ``sys.maxsize`` for a
        cycle, an unreadable record, or once :data:`MAX_VISITS` is spent. Iterative: no recursion."""
        if type_id in self._height:
            return self._height[type_id]
        grey: set[int] = set()
        edges: dict[int, tuple[int, list[int]]] = {}
        stack = [type_id]
        while stack:
            tid = stack[-1]
            if tid in self._height:
                stack.pop()
                continue
            if tid not in grey:
                rec = self._record(tid)
                self._visits += 1
                if rec is None or self._visits > MAX_VISITS:
                    self._height[tid] = _INF
                    stack.pop()
                    continue
                edges[tid] = self._edges(rec)
                self._visits += len(edges[tid][1])
                grey.add(tid)
                stack.extend(c for c in edges[tid][1] if c not in self._height and c not in grey)
                continue
            weight, children = edges.pop(tid)
            deepest = max((self._height.get(c, _INF) for c in children), default=0)
            self._height[tid] = _INF if deepest == _INF else deepest + weight
            grey.discard(tid)
            stack.pop()
        return self._height[type_id]

    # --- types -----------------------------------------------------------------
    def type(self, type_id: int, hint: str = "") -> Typed:  # noqa: PLR0911 - one return per kind of type
        """How values of BTF type ``type_id`` appear; generates its class (and those it uses) when it is a struct.

        ``hint`` names an anonymous struct (``Outer`` + member name); a
        typedef's name is used before it.
        """
        if type_id == 0:
            return _BYTES
        rec, alias = self._resolve(type_id)
        if rec is None:
            return _fallback(f"BTF type {type_id} is unreadable")
        if rec.kind in _SCALAR_KINDS:
            try:
                return _scalar(self._btf.type_by_id(rec.id))
            except BtfError as exc:
                return _fallback(f"BTF type {rec.id}: {exc.strerror}")
        label = _label(rec, alias)
        if rec.kind not in (Kind.ARRAY, Kind.STRUCT, Kind.UNION):
            return _fallback(f"{label} has no data type")
        if self.height(rec.id) > MAX_DEPTH:
            if self._visits > MAX_VISITS:
                return _fallback(f"{label}: more than {MAX_VISITS} BTF records to examine")
            return _fallback(f"{label} is nested deeper than {MAX_DEPTH} levels (or in itself)")
        if rec.kind == Kind.ARRAY:
            return self._array(rec, hint or alias)
        done = self._done.get(rec.id)
        if done is None:
            done = self._composite(rec, rec.name or alias or hint, label)
            self._done[rec.id] = done
        return done

    def _array(self, rec: TypeRecord, hint: str) -> Typed:
        elem = self.type(rec.elem_type, hint)
        if elem.expr is None:
            return _fallback(elem.note)
        n = rec.nelems
        try:
            if self._btf.is_char(rec.elem_type):
                ctype = ctypes.c_char * n
                return Typed("bytes", "bytes", "ctypes.Array[ctypes.c_char]", "bytes", f"ctypes.c_char * {n}", ctype)
            ctype = elem.ctype * n
        except (OverflowError, ValueError, MemoryError):
            return _fallback(f"array of {n} elements is too large")
        inner = f"({elem.expr})" if "*" in elem.expr else elem.expr
        annotation = f"ctypes.Array[{elem.element}]"
        return Typed(f"list[{elem.item}]", annotation, annotation, f"list[{elem.item}]", f"{inner} * {n}", ctype)

    def _class_name(self, name: str, is_union: bool) -> str:
        base = camel(name, "Union" if is_union else "Struct")
        if base in self._taken or keyword.iskeyword(base) or hasattr(builtins, base):
            base += "Union" if is_union else "Struct"
        found, n = base, 2
        while found in self._taken or keyword.iskeyword(found) or hasattr(builtins, found):
            found, n = f"{base}{n}", n + 1
        self._taken.add(found)
        return found

    def _composite(self, rec: TypeRecord, name: str, label: str) -> Typed:  # noqa: PLR0911 - each reason to give up
        if len(self.names) >= MAX_CLASSES:
            return _fallback(f"{label}: more than {MAX_CLASSES} classes")
        if self._fields + len(rec.members) > MAX_FIELDS:
            return _fallback(f"{label}: more than {MAX_FIELDS} members in all")
        self._fields += len(rec.members)
        is_union = rec.kind == Kind.UNION
        cls_name = self._class_name(name or f"anon_{rec.id}", is_union)
        # First the members' types (their classes come first in the module), then their names.
        kinds: list[tuple[Any, ...]] = []
        referenced = set(ANNOTATION_NAMES)
        for index, m in enumerate(rec.members):
            if m.bitfield_size or m.bit_offset % 8:
                mrec, _ = self._resolve(m.type_id)
                bits = m.bitfield_size or (8 * mrec.size if mrec is not None else 0)
                if mrec is None or mrec.kind not in (Kind.INT, Kind.ENUM, Kind.ENUM64) or not 0 < bits <= 64:
                    return self._unmade(cls_name, f"{label}: bitfield {m.name!r} is not an integer of 1 to 64 bits")
                if m.bit_offset + bits > 8 * rec.size:
                    return self._unmade(cls_name, f"{label}: bitfield {m.name!r} lies outside the struct")
                if not m.name:
                    continue  # unnamed bitfields are padding
                signed = bool(mrec.int_encoding & 1) if mrec.kind == Kind.INT else mrec.signed
                kinds.append(("bitfield", m, index, m.bit_offset, bits, signed))
                continue
            member = self.type(m.type_id, f"{name or cls_name}_{m.name or f'anon{index}'}")
            if member.expr is None:
                what = f"member {m.name!r}" if m.name else f"anonymous member {index}"
                return self._unmade(cls_name, f"{label}: {what}: {member.note}")
            annotations = [member.field]
            info = self._info.get(member.cls or "")
            if not m.name and info is not None:
                annotations += [a for _, a in info.members]
            for annotation in annotations:
                referenced.update(re.findall(r"[A-Za-z_][A-Za-z0-9_]*", annotation))
            kinds.append(("field", m, index, member))
        referenced -= BUILTIN_NAMES
        used = set(_STRUCT_ATTRIBUTES) | referenced

        def member_name(wanted: str, index: int) -> tuple[str, str]:
            """The BTF name if usable, else ``class_``, ``_reserved`` (for ``__reserved``), or ``member<index>``."""
            if usable(wanted, used):
                used.add(wanted)
                return wanted, ""
            stripped = "_" + wanted.lstrip("_") if wanted.startswith("__") else wanted + "_"
            found = stripped if stripped != "_" and usable(stripped, used) else f"member{index}"
            while found in used:
                found += "_"
            used.add(found)
            return found, f"  # BTF name {literal(wanted)}"

        def internal(prefix: str) -> str:
            found, n = prefix, 1
            while found in used:
                found, n = f"{prefix}{n}", n + 1
            used.add(found)
            return found

        fields: list[tuple[str, str, Any, int]] = []  # (name, expr, ctype, offset)
        members: list[tuple[str, str]] = []
        notes: dict[str, str] = {}
        anonymous: list[str] = []
        bitfields: list[tuple[str, int, int, bool]] = []
        forwards: list[tuple[str, str]] = []
        pending: list[tuple[str, Typed, int]] = []  # anonymous members, named once the others are
        cursor = 0
        for entry in kinds:
            if entry[0] == "bitfield":
                _, m, index, start, bits, signed = entry
                bname, note = member_name(m.name, index)
                bitfields.append((bname, start, bits, signed))
                members.append((bname, "int"))
                notes[bname] = note
                continue
            _, m, index, member = entry
            offset = m.bit_offset // 8
            if offset > cursor and not is_union:
                fields.append(("", f"ctypes.c_uint8 * {offset - cursor}", ctypes.c_uint8 * (offset - cursor), cursor))
            if m.name:
                fname, note = member_name(m.name, index)
                notes[fname] = note
                members.append((fname, member.field))
                fields.append((fname, member.expr, member.ctype, offset))
            else:
                slot = len(fields)
                fields.append(("", member.expr, member.ctype, offset))
                pending.append(("", member, slot))
                members.append(("", str(slot)))
            cursor = max(cursor, offset + ctypes.sizeof(member.ctype))
        # Anonymous members: their members are promoted unless a name clashes (then reached through the member).
        # ctypes promotes every entry of their _fields_, padding too: this class's own entries avoid those names.
        real = {n for n, _ in members if n}
        promotions: list[tuple[Typed, int, bool]] = []
        for _, member, slot in pending:
            info = self._info.get(member.cls or "")
            if info is None:
                promotions.append((member, slot, False))
                continue
            inner_real = {n for n, _ in info.members}
            promote = not (inner_real & used) and not ((info.exposed - inner_real) & real)
            if promote:
                real |= inner_real
            used.update(inner_real | info.exposed if promote else ())
            promotions.append((member, slot, promote))
        for member, slot, promote in promotions:
            anon = internal("_anon")
            _, expr, ctype, offset = fields[slot]
            fields[slot] = (anon, expr, ctype, offset)
            position = members.index(("", str(slot)))
            info = self._info.get(member.cls or "")
            if promote and info is not None:
                anonymous.append(anon)
                members[position : position + 1] = list(info.members)
                forwards.extend((anon, n) for n, _ in info.members if n not in info.exposed)
            else:
                members[position : position + 1] = [(anon, member.field)]
        for i, (fname, expr, ctype, offset) in enumerate(fields):
            if not fname:
                fields[i] = (internal("_pad"), expr, ctype, offset)
        if cursor < rec.size and not is_union:
            tail = rec.size - cursor
            fields.append((internal("_pad"), f"ctypes.c_uint8 * {tail}", ctypes.c_uint8 * tail, cursor))
        if is_union and rec.size:
            fields.append((internal("_raw"), f"ctypes.c_uint8 * {rec.size}", ctypes.c_uint8 * rec.size, 0))
        model, pack = _layout(is_union, cls_name, fields, anonymous, rec.size)
        if model is None:
            return self._unmade(cls_name, f"cannot lay out {label} as BTF says (size {rec.size})")
        self._emit(cls_name, label, rec.size, is_union, members, notes, anonymous, fields, pack, bitfields, forwards)
        exposed = {f[0] for f in fields}
        for anon in anonymous:
            exposed |= self._info[next(f[1] for f in fields if f[0] == anon)].exposed
        self._info[cls_name] = _ClassInfo(cls_name, tuple(members), frozenset(exposed))
        self.names.append(cls_name)
        return Typed(cls_name, cls_name, cls_name, "dict[str, Any]", cls_name, model, cls_name)

    def _unmade(self, cls_name: str, note: str) -> Typed:
        self._taken.discard(cls_name)
        return _fallback(note)

    def _emit(
        self, cls_name: str, label: str, size: int, is_union: bool, members: list[tuple[str, str]],
        notes: dict[str, str], anonymous: list[str], fields: list[tuple[str, str, Any, int]], pack: int,
        bitfields: list[tuple[str, int, int, bool]], forwards: list[tuple[str, str]],
    ) -> None:  # fmt: skip
        base = "BtfUnion" if is_union else "BtfStruct"
        out = self._lines
        out += ["", "", f"class {cls_name}({base}):", f'    """{text(label)} ({size} bytes)."""', ""]
        shadowed = BUILTIN_NAMES.intersection(n for n, _ in members)
        self.uses_builtins = self.uses_builtins or bool(shadowed)
        out += [f"    {n}: {qualify(a, shadowed)}{notes.get(n, '')}" for n, a in members]
        if members:
            out.append("")
        out.append(f"    _btf_name_ = {literal(label)}")
        out.append(f"    _btf_members_ = ({''.join(literal(n) + ', ' for n, _ in members).rstrip()})")
        if anonymous:
            out.append(f"    _anonymous_ = ({''.join(literal(n) + ', ' for n in anonymous).rstrip()})")
        if pack:
            out.append(f"    _pack_ = {pack}")
        out.append("    _fields_ = [")
        out += [f"        ({literal(n)}, {expr})," for n, expr, _, _ in fields]
        out.append("    ]")
        out.append("")
        out.append("")
        offsets = ", ".join(str(f[3]) for f in fields)
        call = f"finish_struct({cls_name}, {size}, ({offsets}{',' if len(fields) == 1 else ''})"
        if bitfields:
            call += ", bitfields=(" + "".join(f"({literal(n)}, {s}, {b}, {sg}), " for n, s, b, sg in bitfields)
            call = call.rstrip(" ") + ")"
        if forwards:
            call += ", forwards=(" + "".join(f"({literal(a)}, {literal(n)}), " for a, n in forwards)
            call = call.rstrip(" ") + ")"
        out.append(call + ")")

    def source(self) -> list[str]:
        """The generated classes' definitions, each after those it uses (lines, starting with blank ones)."""
        return list(self._lines)


def _label(rec: TypeRecord, alias: str) -> str:
    kind = {Kind.STRUCT: "struct", Kind.UNION: "union", Kind.ARRAY: "array"}.get(rec.kind, f"kind {rec.kind}")
    if rec.name:
        return f"{kind} {rec.name}"
    return f"{kind} {alias}" if alias else f"anonymous {kind} (BTF id {rec.id})"


def _scalar(ctype: Any) -> Typed:
    name = _CTYPE_NAMES.get(ctype)
    if name is not None:
        value = "bool" if ctype is ctypes.c_bool else "float" if ctype in (ctypes.c_float, ctypes.c_double) else "int"
        if ctype is ctypes.c_char:
            value = "bytes"
        return Typed(value, value, name, value, name, ctype)
    element: Any = getattr(ctype, "_type_", None)
    if isinstance(ctype, type) and issubclass(ctype, ctypes.Array) and element is ctypes.c_uint8:
        n = ctype._length_
        annotation = "ctypes.Array[ctypes.c_uint8]"
        return Typed("list[int]", annotation, annotation, "list[int]", f"ctypes.c_uint8 * {n}", ctype)
    return _fallback(f"no generated type for {getattr(ctype, '__name__', ctype)!s}")


def _layout(
    is_union: bool, name: str, fields: list[tuple[str, str, Any, int]], anonymous: Iterable[str], size: int
) -> tuple[Any, int]:
    """A ctypes class with ``fields`` at their offsets and ``size`` bytes, natural or packed (then pack 1)."""
    base: Any = BtfUnion if is_union else BtfStruct
    for pack in (0, 1):
        body: dict[str, Any] = {"_anonymous_": tuple(anonymous)} if anonymous else {}
        if pack:
            body["_pack_"] = pack
        body["_fields_"] = [(n, ctype) for n, _, ctype, _ in fields]
        try:
            cls = type(name, (base,), body)
        except (TypeError, ValueError, AttributeError, OverflowError):
            return None, 0
        if ctypes.sizeof(cls) == size and all(getattr(cls, n).offset == o for n, _, _, o in fields):
            return cls, pack
    return None, 0
