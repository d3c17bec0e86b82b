"""The PROBE syntax of ``pyprobe trace`` and ``pyprobe funclatency``, and argument typing.

Forms::

    BINARY:FUNC                         entry and return; six register arguments as hex
    BINARY:FUNC(int a, const char *s)   named, typed arguments (more than six come from the stack)
    BINARY:RTYPE FUNC(ARGS)             also types the return value
    r:BINARY:FUNC                       the return only
    u:BINARY:PROVIDER:NAME              a USDT probe (its arguments typed from its notes)
    u:BINARY:PROVIDER:NAME(long i, ...) a USDT probe with named, typed arguments

BINARY ends at the first ``:`` that is not part of a ``::``, so C++ names
(``ns::f``) keep theirs; with ``-c`` a FUNC alone means the command's binary
(``parse_probe(text, binary=...)``). A FUNC with ``*`` or ``?`` is a glob
over the binary's functions. Every name ``pyprobe list symbols`` prints is a
FUNC too, such as ``ns::compute(int, int)`` or ``f(std::string const&) const``:
a parameter list of bare types is read as the demangled name first (see
:attr:`ProbeSpec.full`), and its types type the arguments where they are C
types. Parsing is pure: it touches no file and raises
:class:`ProbeSyntaxError` (a ValueError) naming the part at fault.
"""

from __future__ import annotations

import re
from typing import NamedTuple

__all__ = [
    "ArgType", "Param", "ProbeSpec", "ProbeSyntaxError", "format_value", "parse_probe", "parse_type", "split_binary",
]  # fmt: skip

MAX_ARGS = 12
"""Six register arguments and six from the stack (bpf/probes/functrace.h)."""
MAX_STRINGS = 4


class ProbeSyntaxError(ValueError):
    """A PROBE argument or a type in it is malformed; the message names the part at fault."""


class ArgType(NamedTuple):
    """How one argument or return value is shown: ``kind`` is signed, unsigned, pointer, string, bool or char."""

    kind: str
    size: int = 8
    spelling: str = ""


HEX = ArgType("hex", 8, "")

_SIGNED = {
    "char": 1, "signed char": 1, "short": 2, "short int": 2, "signed short": 2, "int": 4, "signed": 4,
    "signed int": 4, "long": 8, "long int": 8, "signed long": 8, "long long": 8, "long long int": 8,
    "signed long long": 8, "int8_t": 1, "int16_t": 2, "int32_t": 4, "int64_t": 8, "ssize_t": 8, "off_t": 8,
    "pid_t": 4, "intptr_t": 8, "ptrdiff_t": 8, "s8": 1, "s16": 2, "s32": 4, "s64": 8, "__s8": 1, "__s16": 2,
    "__s32": 4, "__s64": 8, "time_t": 8,
}  # fmt: skip
_UNSIGNED = {
    "unsigned char": 1, "unsigned short": 2, "unsigned short int": 2, "unsigned": 4, "unsigned int": 4,
    "unsigned long": 8, "unsigned long int": 8, "unsigned long long": 8, "unsigned long long int": 8,
    "uint8_t": 1, "uint16_t": 2, "uint32_t": 4, "uint64_t": 8, "size_t": 8, "uintptr_t": 8, "uid_t": 4,
    "gid_t": 4, "mode_t": 4, "u8": 1, "u16": 2, "u32": 4, "u64": 8, "__u8": 1, "__u16": 2, "__u32": 4,
    "__u64": 8,
}  # fmt: skip
_FLOATS = {"float", "double", "long double"}
_QUALIFIERS = {"const", "volatile", "restrict", "__restrict", "struct", "enum", "union"}


def parse_type(text: str) -> ArgType:  # noqa: PLR0911
    """The :class:`ArgType` of a C type such as ``const char *`` or ``unsigned long``.

    Raises ProbeSyntaxError for floating-point types (passed in SSE registers,
    which a uprobe cannot read here) and for unknown type names.
    """
    spelling = " ".join(text.replace("*", " * ").replace("&", " & ").split())
    words = spelling.split()
    stars = words.count("*") + words.count("&")
    struct_like = any(w in ("struct", "union") for w in words)
    base = " ".join(w for w in words if w not in _QUALIFIERS and w not in ("*", "&"))
    if not base:
        raise ProbeSyntaxError(f"missing type in {text!r}")
    if stars:
        if stars == 1 and base in ("char", "signed char", "unsigned char"):
            return ArgType("string", 8, spelling)
        return ArgType("pointer", 8, spelling)
    if struct_like:
        raise ProbeSyntaxError(f"{text!r}: structs passed by value are not supported; declare a pointer or a long")
    if base in _FLOATS:
        raise ProbeSyntaxError(f"{text!r}: floating-point arguments travel in SSE registers, which are not recorded")
    if base in ("char",):
        return ArgType("char", 1, spelling)
    if base in ("bool", "_Bool"):
        return ArgType("bool", 1, spelling)
    if base in _SIGNED:
        return ArgType("signed", _SIGNED[base], spelling)
    if base in _UNSIGNED:
        return ArgType("unsigned", _UNSIGNED[base], spelling)
    if base == "void":
        return ArgType("void", 0, spelling)
    if "enum" in words:
        return ArgType("signed", 4, spelling)
    raise ProbeSyntaxError(
        f"unknown type {text!r}: use a C base type (int, unsigned long, char, bool...), a pointer, or int64_t"
    )


class Param(NamedTuple):
    """One declared argument: its name and type."""

    name: str
    type: ArgType


class ProbeSpec(NamedTuple):
    """One parsed PROBE argument.

    ``kind`` is ``call`` (entry and return), ``return`` (``r:``) or ``usdt`` (``u:``).
    ``params`` is None when no signature was given (six hex register arguments).
    """

    text: str
    kind: str
    binary: str
    function: str = ""
    provider: str = ""
    name: str = ""
    params: tuple[Param, ...] | None = None
    ret: ArgType | None = None
    is_glob: bool = False
    full: str = ""
    """FUNC as written (spaces collapsed): looked up as a demangled name before ``function``."""
    error: str = ""
    """Why FUNC does not parse as a C signature, when it may still be a demangled name; raised if it is not."""

    @property
    def string_args(self) -> list[int]:
        """Indexes of the arguments read as user strings."""
        return [i for i, p in enumerate(self.params or ()) if p.type.kind == "string"]

    @property
    def nargs(self) -> int:
        """How many arguments the probe records."""
        return 6 if self.params is None else len(self.params)


_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")


def _split_params(text: str, probe: str) -> tuple[Param, ...]:
    inner = text.strip()
    if inner in ("", "void"):
        return ()
    params: list[Param] = []
    for i, part in enumerate(inner.split(",")):
        decl = part.strip()
        if not decl:
            raise ProbeSyntaxError(f"{probe!r}: empty argument {i + 1} in the signature")
        if decl == "...":
            raise ProbeSyntaxError(f"{probe!r}: variadic arguments (...) cannot be typed; name the ones you want")
        m = re.match(r"(.*?)([A-Za-z_][A-Za-z0-9_]*)\s*\Z", decl)
        name = f"arg{i + 1}"
        type_text = decl
        if m and m.group(1).strip() and not _is_type_only(decl):
            type_text, name = m.group(1), m.group(2)
        try:
            params.append(Param(name, parse_type(type_text)))
        except ProbeSyntaxError as exc:
            raise ProbeSyntaxError(f"{probe!r}: argument {i + 1}: {exc}") from None
    if len(params) > MAX_ARGS:
        raise ProbeSyntaxError(f"{probe!r}: {len(params)} arguments; at most {MAX_ARGS} are recorded")
    if sum(p.type.kind == "string" for p in params) > MAX_STRINGS:
        raise ProbeSyntaxError(f"{probe!r}: at most {MAX_STRINGS} string arguments per function")
    return tuple(params)


def _is_type_only(decl: str) -> bool:
    """True when ``decl`` is a bare type such as ``unsigned int`` or ``char *`` (no argument name)."""
    words = decl.replace("*", " * ").split()
    if words[-1] == "*":
        return True
    try:
        parse_type(decl)
    except ProbeSyntaxError:
        return False
    known = set(_SIGNED) | set(_UNSIGNED) | {"bool", "_Bool", "char", "void"}
    return " ".join(w for w in words if w not in _QUALIFIERS) in known


_TYPE_WORDS = set(_QUALIFIERS) | {"char", "short", "int", "long", "signed", "unsigned", "float", "double", "void",
                                   "bool", "_Bool", "const&", "const*"}  # fmt: skip


def _top_level_split(text: str) -> list[str]:
    """``text`` split at the commas outside ``<>``, ``()``, ``[]`` and ``{}``."""
    parts, depth, start = [], 0, 0
    for i, ch in enumerate(text):
        if ch in "<([{":
            depth += 1
        elif ch in ">)]}":
            depth -= 1
        elif ch == "," and depth == 0:
            parts.append(text[start:i])
            start = i + 1
    parts.append(text[start:])
    return parts


def _may_be_demangled(rest: str) -> bool:
    """Whether ``rest`` (FUNC with its parentheses) can be a demangled C++ name: no parameter has a name."""
    close_at = rest.rfind(")")
    depth, open_at = 0, -1
    for i in range(close_at, -1, -1):  # the '(' that opens the last parameter list
        depth += {")": 1, "(": -1}.get(rest[i], 0)
        if depth == 0:
            open_at = i
            break
    if open_at <= 0:
        return False
    for decl in _top_level_split(rest[open_at + 1 : close_at]):
        words = decl.replace("*", " * ").replace("&", " & ").split()
        if len(words) < 2 or not _IDENT.match(words[-1]) or words[-1] in _TYPE_WORDS:
            continue  # a bare type, or ends in *, &, > or a type word
        if words[-1] in _SIGNED or words[-1] in _UNSIGNED or words[-2].endswith("::"):
            continue
        if not _is_type_only(decl):
            return False  # a type followed by a name: a declaration, not a demangled name
    return True


def split_binary(probe: str) -> tuple[str, str] | None:
    """(BINARY, FUNC...) of ``probe`` (without ``r:``/``p:``), split at the first ``:`` not in a ``::``.

    None when the part before any ``(`` has no such colon (a FUNC alone, such as ``ns::f(int)``).
    """
    head = probe.split("(", 1)[0]
    i = 0
    while (i := head.find(":", i)) >= 0:
        if head.startswith("::", i):
            i += 2
            continue
        return probe[:i], probe[i + 1 :]
    return None


def parse_probe(text: str, *, binary: str | None = None) -> ProbeSpec:
    """Parses one PROBE argument (see the module docstring); raises ProbeSyntaxError.

    With ``binary`` (the ``-c`` command's), ``text`` is FUNC alone (after an
    optional ``r:`` or ``p:``): a ``:`` in the binary's path cannot split it.
    """
    probe = text.strip()
    if probe.startswith("u:"):
        head, paren, sig = probe[2:].partition("(")
        parts = head.strip().split(":")
        if len(parts) != 3 or not all(parts):
            raise ProbeSyntaxError(f"{text!r}: a USDT probe is u:BINARY:PROVIDER:NAME or u:BINARY:PROVIDER:NAME(ARGS)")
        usdt_params: tuple[Param, ...] | None = None
        if paren:
            if not sig.rstrip().endswith(")"):
                raise ProbeSyntaxError(f"{text!r}: the signature must end with ')'")
            usdt_params = _split_params(sig.rstrip()[:-1], text)
        return ProbeSpec(text, "usdt", parts[0], provider=parts[1], name=parts[2], params=usdt_params)
    kind = "call"
    if probe.startswith("r:"):
        kind, probe = "return", probe[2:]
    elif probe.startswith("p:"):
        probe = probe[2:]
    if binary is None:
        split = split_binary(probe)
        if split is None or not split[0] or not split[1].strip():
            raise ProbeSyntaxError(f"{text!r}: expected BINARY:FUNC (e.g. /usr/bin/true:main or libc:malloc)")
        binary, rest = split
    else:
        rest = probe
    rest = " ".join(rest.split())
    if not rest:
        raise ProbeSyntaxError(f"{text!r}: missing function name")
    try:
        function, params, ret = _parse_function(rest, text)
    except ProbeSyntaxError as exc:
        if not _may_be_demangled(rest):
            raise
        return ProbeSpec(text, kind, binary, function=rest, full=rest, error=str(exc))
    is_glob = any(c in function for c in "*?[")
    return ProbeSpec(text, kind, binary, function=function, params=params, ret=ret, is_glob=is_glob, full=rest)


def _parse_function(rest: str, text: str) -> tuple[str, tuple[Param, ...] | None, ArgType | None]:
    """(function name, parameters, return type) of FUNC as a C declaration; raises ProbeSyntaxError."""
    params: tuple[Param, ...] | None = None
    ret: ArgType | None = None
    if "(" in rest:
        if not rest.endswith(")"):
            raise ProbeSyntaxError(f"{text!r}: the signature must end with ')'")
        head, _, args = rest[:-1].partition("(")
        params = _split_params(args, text)
        head = head.strip()
        m = re.match(r"(.*?)\s*([A-Za-z_~][A-Za-z0-9_:~<>*?\[\]]*)\Z", head)
        if m is None:
            raise ProbeSyntaxError(f"{text!r}: no function name before '('")
        if m.group(1).strip():
            try:
                ret = parse_type(m.group(1))
            except ProbeSyntaxError as exc:
                raise ProbeSyntaxError(f"{text!r}: return type: {exc}") from None
        function = m.group(2)
    else:
        function = rest
        if " " in function:
            raise ProbeSyntaxError(f"{text!r}: give a return type only with a signature, e.g. 'int f(int a)'")
    function = function.strip()
    if not function:
        raise ProbeSyntaxError(f"{text!r}: missing function name")
    return function, params, ret


def _to_signed(raw: int, size: int) -> int:
    bits = size * 8
    raw &= (1 << bits) - 1
    return raw - (1 << bits) if raw >> (bits - 1) else raw


def format_value(raw: int, typ: ArgType, text: bytes | None = None, *, json: bool = False) -> object:  # noqa: PLR0911
    """Shows the raw 64-bit register ``raw`` as ``typ`` (a str, or a JSON value when ``json``).

    ``text`` is the string read at entry for ``char *`` arguments.
    """
    raw &= (1 << 64) - 1
    kind = typ.kind
    if kind == "signed":
        v: object = _to_signed(raw, typ.size)
        return v if json else str(v)
    if kind == "unsigned":
        v = raw & ((1 << (typ.size * 8)) - 1)
        return v if json else str(v)
    if kind == "bool":
        b = bool(raw & 0xFF)
        return b if json else ("true" if b else "false")
    if kind == "char":
        c = chr(raw & 0xFF)
        return c if json else repr(c)
    if kind == "string":
        if raw == 0:
            return None if json else "NULL"
        s = (text or b"").split(b"\0", 1)[0].decode("utf-8", "backslashreplace")
        if json:
            return s
        quoted = s.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n").replace("\t", "\\t")
        return f'"{quoted}"'
    if kind == "void":
        return None if json else "void"
    return raw if json else hex(raw)
