"""``pyprobe gen skeleton OBJ.bpf.o [-o FILE.py]``: write a typed Python skeleton module for an object.

The module holds a :class:`pyprobe.Skeleton` subclass whose attributes are
declared with their types: ``progs.NAME`` (Program), ``maps.NAME`` (the map's
generic class with its key, value or record types: ``pyprobe.HashMap[int,
int]``, ``pyprobe.RingBufMap[OpenEvent]``), ``bss``/``data``/``rodata``
globals (int, float, bool, bytes, lists, generated classes). Each struct or
union a map's key or value, a global or ``<pyprobe/btf.h>``'s
``PYPROBE_EVENT_TYPE``/``PYPROBE_EXPORT_TYPE`` uses becomes a
:class:`pyprobe.btf.BtfStruct` / ``BtfUnion`` subclass named in CamelCase
(``struct open_event`` -> ``OpenEvent``) with annotated members: integers,
floats and bools as such, char arrays as bytes, nested structs as their
classes, other arrays as ``ctypes.Array[...]``. A ring buffer or perf event
array without ``PYPROBE_EVENT_TYPE`` carries ``bytes``, what its reader
yields without an ``event_type``.

Names from the object reach the module only escaped or checked as
identifiers (see :mod:`pyprobe.cli._codegen`); a name that cannot be an
attribute is left out with a comment saying so, a member renamed. Types too
deep or too many to generate are ``Any``, with a comment. The object is
embedded (base64) unless ``--reference`` names its path instead. Opening the
object to read its programs, maps and BTF needs no privilege and touches no
kernel.
"""

from __future__ import annotations

import argparse
import base64
import ctypes
import os
import sys
from typing import Any, NamedTuple

import pyprobe
from pyprobe.btf import Btf, Kind
from pyprobe.cli._codegen import ANNOTATION_NAMES, BUILTIN_NAMES, Classes, Typed, camel, literal, qualify, text, usable
from pyprobe.maps import KeyValueMap
from pyprobe.skeleton import Globals, Links, Maps, Programs

__all__ = ["add_parser", "generate", "run"]

TYPES_SECTION = ".pyprobe.types"
"""The BTF DATASEC of the types ``<pyprobe/btf.h>`` exports."""
EVENT_PREFIX = "__pyprobe_event__"
"""``PYPROBE_EVENT_TYPE(map, T)`` names its variable ``__pyprobe_event__<map>``."""
_SECTIONS = (("bss", ".bss"), ("data", ".data"), ("rodata", ".rodata"))
_MODULE_NAMES = frozenset(
    {"annotations", "base64", "ctypes", "pyprobe", "Any", "ClassVar", "BtfStruct", "BtfUnion", "Globals", "Links",
     "Maps", "Programs", "Skeleton", "finish_struct", "_OBJECT"}
)  # fmt: skip


def add_parser(sub: Any) -> None:
    p = sub.add_parser("gen", help="generate code for an object (a typed skeleton module)")
    what = p.add_subparsers(dest="what", metavar="WHAT", required=True)
    s = what.add_parser("skeleton", help="a typed Python module with a Skeleton subclass for OBJ.bpf.o")
    s.add_argument("object", metavar="OBJ.bpf.o")
    s.add_argument("-o", "--output", metavar="FILE.py", help="write here (default: standard output)")
    s.add_argument("--class-name", metavar="NAME", help="the class name (default: from the object's name)")
    s.add_argument(
        "--reference", action="store_true", help="refer to the object by its absolute path instead of embedding it"
    )
    p.set_defaults(run=run)


class _MapDecl(NamedTuple):
    name: str
    cls: type
    key: Typed
    value: Typed


def _pointee(btf: Btf, type_id: int) -> int | None:
    """The type a PTR (behind qualifiers) points to, or None."""
    rec = btf.resolve(type_id)
    return rec.ref if rec.kind == Kind.PTR else None


def _map_types(btf: Btf) -> dict[str, tuple[int, int]]:
    """Map name -> (key type id, value type id) from the map definitions in ``.maps`` (0: not given)."""
    found: dict[str, tuple[int, int]] = {}
    try:
        section = btf.record(btf.find(".maps", Kind.DATASEC))
        for var_id, _offset, _size in section.vars:
            var = btf.record(var_id)
            ids = {"key": 0, "value": 0}
            for member in btf.resolve(var.ref).members:
                if member.name in ids:
                    ids[member.name] = _pointee(btf, member.type_id) or 0
            found[var.name] = (ids["key"], ids["value"])
    except pyprobe.BpfError:
        pass
    return found


def _exported(btf: Btf) -> tuple[dict[str, int], list[int]]:
    """From ``.pyprobe.types``: map name -> record type id, and the ids of the other exported types."""
    events: dict[str, int] = {}
    others: list[int] = []
    try:
        section = btf.record(btf.find(TYPES_SECTION, Kind.DATASEC))
        for var_id, _offset, _size in section.vars:
            var = btf.record(var_id)
            pointee = _pointee(btf, var.ref) if var.kind == Kind.VAR else None
            if pointee is None:
                continue
            if var.name.startswith(EVENT_PREFIX):
                events[var.name.removeprefix(EVENT_PREFIX)] = pointee
            else:
                others.append(pointee)
    except pyprobe.BpfError:
        pass
    return events, others


def _variables(btf: Btf, section: str) -> dict[str, int]:
    """The global variables of DATASEC ``section``: name -> type id."""
    try:
        rec = btf.record(btf.find(section, Kind.DATASEC))
        out = {}
        for var_id, _offset, _size in rec.vars:
            var = btf.record(var_id)
            if var.kind == Kind.VAR and var.name:
                out[var.name] = var.ref
        return out
    except pyprobe.BpfError:
        return {}


def _generic_args(cls: type, key: Typed, value: Typed) -> tuple[str, str]:
    """The type arguments of map class ``cls`` (``"[int, OpenEvent]"``) and the comment explaining an Any."""
    params = len(getattr(cls, "__parameters__", ()))
    if not params:
        return "", ""
    sides = [key, value] if params == 2 and issubclass(cls, KeyValueMap) else [value]
    notes = "; ".join(dict.fromkeys(t.note for t in sides if t.value == "Any" and t.note))
    return "[" + ", ".join(t.value for t in sides) + "]", (f"  # {text(notes)}" if notes else "")


def generate(path: str, *, class_name: str | None = None, reference: bool = False) -> str:
    """The source of a skeleton module for the object at ``path``.

    Raises :class:`pyprobe.LoadError` when the file is not a BPF object,
    ValueError when ``class_name`` is not a usable class name.
    """
    if class_name is not None and not (
        usable(class_name, _MODULE_NAMES | ANNOTATION_NAMES | BUILTIN_NAMES) and class_name[0] != "_"
    ):
        raise ValueError(f"--class-name {class_name!r} is not a usable Python class name")
    with pyprobe.open(path) as obj:
        base = class_name or f"{camel(obj.name, 'Bpf')}Skeleton"
        stem = base.removesuffix("Skeleton") or base
        names = {kind: f"{stem}{kind}" for kind in ("Programs", "Maps", "Links", "Bss", "Data", "Rodata")}
        fixed = _MODULE_NAMES | ANNOTATION_NAMES | BUILTIN_NAMES
        taken = set(fixed) | set(names.values()) | {base}
        if len(taken) != len(fixed) + len(names) + 1:
            raise ValueError(f"class name {base!r} clashes with a name the module uses")
        progs = list(obj.programs)
        object_name = obj.name
        try:
            btf = obj.btf
        except pyprobe.BpfError:
            btf = None
        classes = Classes(btf, taken) if btf is not None else None

        def typed(type_id: int, hint: str = "") -> Typed:
            if classes is None or not type_id:
                return Typed("bytes")
            return classes.type(type_id, hint)

        map_ids = _map_types(btf) if btf is not None else {}
        event_ids, exported = _exported(btf) if btf is not None else ({}, [])
        maps: list[_MapDecl] = []
        for name, m in obj.maps.items():
            cls = type(m)
            if issubclass(cls, (pyprobe.RingBufMap, pyprobe.PerfEventArrayMap)):
                maps.append(_MapDecl(name, cls, Typed("bytes"), typed(event_ids.get(name, 0))))
            else:
                key_id, value_id = map_ids.get(name, (0, 0))
                maps.append(_MapDecl(name, cls, typed(key_id), typed(value_id)))
        for type_id in exported:
            typed(type_id)
        sections = {
            attr: {n: typed(t) for n, t in (_variables(btf, section) if btf is not None else {}).items()}
            for attr, section in _SECTIONS
        }
        struct_lines = classes.source() if classes is not None else []
        class_names = set(classes.names) if classes is not None else set()
        uses_builtins = classes is not None and classes.uses_builtins

    reserved = ANNOTATION_NAMES | class_names | _MODULE_NAMES

    def declared(members: list[tuple[str, str, str]], namespace: type, extra: list[str]) -> list[str]:
        """``name: annotation  # note`` lines for usable names, a comment listing the others; ``extra`` lines first.

        Annotations are written ``builtins.int`` in a class that has a member called ``int``.
        """
        nonlocal uses_builtins
        usable_members = [
            m for m in members if usable(m[0], reserved) and not m[0].startswith("_") and not hasattr(namespace, m[0])
        ]
        shadowed = BUILTIN_NAMES.intersection(name for name, _, _ in usable_members)
        uses_builtins = uses_builtins or bool(shadowed)
        lines = [qualify(line, shadowed) for line in extra]
        if extra and usable_members:
            lines.append("")
        lines += [f"{name}: {qualify(annotation, shadowed)}{note}" for name, annotation, note in usable_members]
        left_out = [literal(m[0]) for m in members if m not in usable_members]
        if left_out:
            lines.append(f"# not attributes (names Python cannot use here): {', '.join(left_out)}")
        return lines

    out: list[str] = [
        f'"""Skeleton of {text(os.path.basename(path))}, generated by `pyprobe gen skeleton`: do not edit.',
        "",
        f"    with {base}() as skel:",
        "        skel.load()",
        "        skel.attach()",
        '"""',
        "",
        "from __future__ import annotations",
        "",
    ]
    body: list[str] = []

    def block(cls: str, parent: str, doc: str, lines: list[str]) -> None:
        body.extend(["", "", f"class {cls}({parent}):", f'    """{text(doc)}"""', ""])
        body.extend(f"    {line}" if line else "" for line in lines)

    block(names["Programs"], "Programs", f"Programs of {object_name}.",
          declared([(n, "pyprobe.Program", "") for n in progs], Programs, []))  # fmt: skip
    map_lines, map_types = [], []
    for decl in maps:
        shown = decl.cls.__name__ if getattr(pyprobe, decl.cls.__name__, None) is decl.cls else "Map"
        args, note = _generic_args(decl.cls, decl.key, decl.value) if shown != "Map" else ("", "")
        map_lines.append((decl.name, f"pyprobe.{shown}{args}", note))
        empty = decl.value.cls is not None and ctypes.sizeof(decl.value.ctype) == 0  # set_types refuses size 0
        if usable(decl.name, reserved) and (decl.key.cls or decl.value.cls) and not empty:
            map_types.append(f"{literal(decl.name)}: ({decl.key.cls}, {decl.value.cls}),")
    types_line = ["TYPES: ClassVar[dict[str, tuple[type[Any] | None, type[Any] | None]]] = {"]
    if map_types:
        types_line += [f"    {t}" for t in map_types] + ["}"]
    else:
        types_line[0] += "}"
    block(names["Maps"], "Maps", f"Maps of {object_name}.", declared(map_lines, Maps, types_line))
    block(names["Links"], "Links", f"Links of {object_name}'s programs made by attach() (None: not attached).",
          declared([(n, "pyprobe.Link | None", "") for n in progs], Links, []))  # fmt: skip
    globals_classes: dict[str, str] = {}
    for attr, variables in sections.items():
        if not variables:
            continue
        cls_name = names[attr.capitalize()]
        globals_classes[attr] = cls_name
        members = []
        struct_types = []
        for name, t in variables.items():
            note = f"  # {text(t.note)}" if t.value == "Any" and t.note else ""
            members.append((name, t.value, note))
            if t.cls and usable(name, reserved):
                struct_types.append(f"{literal(name)}: {t.cls}")
        extra = [f"TYPES: ClassVar[dict[str, type[Any]]] = {{{', '.join(struct_types)}}}"] if struct_types else []
        block(cls_name, "Globals", f"Globals of {object_name} in .{attr}.", declared(members, Globals, extra))

    body += [
        "",
        "",
        f"class {base}(Skeleton):",
        f'    """The BPF object {text(object_name)}: open(), load(), attach(), close()."""',
        "",
        f"    OBJECT_NAME: ClassVar[str | None] = {literal(object_name)}",
    ]
    if reference:
        body.append(f"    OBJECT_PATH: ClassVar[str | None] = {literal(os.path.abspath(path))}")
    body += [
        f"    PROGS: ClassVar[type[Programs]] = {names['Programs']}",
        f"    MAPS: ClassVar[type[Maps]] = {names['Maps']}",
        f"    LINKS: ClassVar[type[Links]] = {names['Links']}",
        "    GLOBALS: ClassVar[dict[str, type[Globals]]] = {"
        + ", ".join(f'"{a}": {c}' for a, c in globals_classes.items())
        + "}",
        "",
        f"    progs: {names['Programs']}",
        f"    maps: {names['Maps']}",
        f"    links: {names['Links']}",
    ]
    body += [f"    {attr}: {cls}" for attr, cls in globals_classes.items()]
    if not reference:
        body += [
            "",
            "    @classmethod",
            "    def object_source(cls) -> bytes:",
            '        """The embedded object file."""',
            "        return base64.b64decode(_OBJECT)",
        ]
        with open(path, "rb") as f:
            encoded = base64.b64encode(f.read()).decode()
        body += ["", "", "_OBJECT = ("]
        body += [f'    "{encoded[i : i + 100]}"' for i in range(0, len(encoded), 100)]
        body.append(")")
    body.append("")

    imports = []
    if not reference:
        imports.append("import base64")
    if uses_builtins:
        imports.append("import builtins")
    if struct_lines:
        imports.append("import ctypes")
    imports += ["from typing import Any, ClassVar", "", "import pyprobe"]
    if struct_lines:
        used = [n for n in ("BtfStruct", "BtfUnion") if any(f"({n}):" in line for line in struct_lines)]
        imports.append(f"from pyprobe.btf import {', '.join(used)}")
    skeleton_names = ["Globals", "Links", "Maps", "Programs", "Skeleton"] + (["finish_struct"] if struct_lines else [])
    imports.append(f"from pyprobe.skeleton import {', '.join(skeleton_names)}")
    out += imports
    out += ["", "__all__ = [", *(f"    {literal(n)}," for n in [base, *sorted(class_names)]), "]"]
    out += struct_lines
    out += body
    return "\n".join(out)


def run(args: argparse.Namespace) -> int:
    if not os.path.isfile(args.object):
        raise FileNotFoundError(f"no object file {args.object!r}")
    source = generate(args.object, class_name=args.class_name, reference=args.reference)
    if args.output:
        with open(args.output, "w") as f:
            f.write(source)
        print(f"pyprobe: wrote {args.output}", file=sys.stderr)
    else:
        sys.stdout.write(source)
    return 0
