"""The PROBE syntax and argument formatting of `pyprobe trace` (pure Python)."""

from __future__ import annotations

import pytest

from pyprobe.cli.probespec import ArgType, ProbeSyntaxError, format_value, parse_probe, parse_type, split_binary


def test_plain_probe_has_no_signature() -> None:
    spec = parse_probe("/usr/bin/true:main")
    assert (spec.kind, spec.binary, spec.function, spec.params, spec.is_glob) == (
        "call", "/usr/bin/true", "main", None, False,
    )  # fmt: skip
    assert spec.nargs == 6


def test_signature_names_and_types_arguments() -> None:
    spec = parse_probe("libc:int open(const char *path, int flags, unsigned int mode)")
    assert spec.binary == "libc" and spec.function == "open"
    assert [p.name for p in spec.params or ()] == ["path", "flags", "mode"]
    assert [p.type.kind for p in spec.params or ()] == ["string", "signed", "unsigned"]
    assert spec.ret == ArgType("signed", 4, "int")
    assert spec.string_args == [0]


def test_unnamed_argument_types() -> None:
    spec = parse_probe("bin:f(unsigned long, char *, void *, bool, char)")
    assert [(p.name, p.type.kind) for p in spec.params or ()] == [
        ("arg1", "unsigned"), ("arg2", "string"), ("arg3", "pointer"), ("arg4", "bool"), ("arg5", "char"),
    ]  # fmt: skip


def test_return_and_usdt_forms() -> None:
    r = parse_probe("r:./app:compute")
    assert (r.kind, r.binary, r.function) == ("return", "./app", "compute")
    u = parse_probe("u:/usr/bin/python3:python:function__entry")
    assert (u.kind, u.binary, u.provider, u.name) == ("usdt", "/usr/bin/python3", "python", "function__entry")


def test_cxx_names_keep_their_colons_and_globs_are_flagged() -> None:
    spec = parse_probe("./app:ns::Widget::draw")
    assert spec.function == "ns::Widget::draw"
    assert parse_probe("./utest:utest_*").is_glob


def test_eight_arguments_and_empty_lists() -> None:
    spec = parse_probe("b:f(long a, long b, long c, long d, long e, long f, long g, long h)")
    assert spec.nargs == 8
    assert parse_probe("b:f()").params == ()
    assert parse_probe("b:f(void)").params == ()


@pytest.mark.parametrize(
    ("probe", "fragment"),
    [
        ("nocolon", "BINARY:FUNC"),
        ("bin:", "BINARY:FUNC"),
        ("bin:f(int a", "end with ')'"),
        ("bin:f(float x)", "floating-point"),
        ("bin:f(struct s v)", "structs passed by value"),
        ("bin:f(widget_t w)", "unknown type"),
        ("bin:f(int a, ...)", "variadic"),
        ("bin:f(" + ", ".join(f"long a{i}" for i in range(13)) + ")", "at most 12"),
        ("bin:f(char *a, char *b, char *c, char *d, char *e)", "at most 4 string"),
        ("u:bin:only", "u:BINARY:PROVIDER:NAME"),
        ("bin:int f", "return type only with a signature"),
    ],
)
def test_bad_probes_name_the_fault(probe: str, fragment: str) -> None:
    with pytest.raises(ProbeSyntaxError, match=fragment.replace("(", r"\(").replace(")", r"\)")):
        parse_probe(probe)


def test_values_are_cut_to_their_declared_size() -> None:
    assert format_value(0xFFFFFFFF, parse_type("int")) == "-1"
    assert format_value(0x1_0000_0005, parse_type("int")) == "5"
    assert format_value(0xFFFFFFFFFFFFFFFE, parse_type("long")) == "-2"
    assert format_value(0xFFFFFFFFFFFFFFFF, parse_type("unsigned int")) == "4294967295"
    assert format_value(0x1FF, parse_type("uint8_t")) == "255"
    assert format_value(0xDEAD, parse_type("void *")) == "0xdead"
    assert format_value(0x100, parse_type("bool")) == "false"
    assert format_value(1, parse_type("_Bool")) == "true"
    assert format_value(0x41, parse_type("char")) == "'A'"


def test_strings_are_quoted_and_escaped() -> None:
    s = parse_type("const char *")
    assert format_value(0x1000, s, b'a"b\nc\0junk') == '"a\\"b\\nc"'
    assert format_value(0, s, b"") == "NULL"
    assert format_value(0x1000, s, b"hi\0", json=True) == "hi"
    assert format_value(0xFFFFFFFF, parse_type("int"), json=True) == -1


@pytest.mark.parametrize(
    ("probe", "binary", "function", "kinds"),
    [
        ("./app:ns::compute(int, int)", "./app", "ns::compute", ["signed", "signed"]),
        ("./app:ns::compute(char const*, int)", "./app", "ns::compute", ["string", "signed"]),
        ("r:/a:b/app:f", "/a", "b/app:f", None),  # a ':' in a path: -c passes the binary instead
    ],
)
def test_demangled_names_parse_with_their_binary(probe: str, binary: str, function: str, kinds: object) -> None:
    spec = parse_probe(probe)
    assert (spec.binary, spec.function) == (binary, function)
    assert (None if spec.params is None else [p.type.kind for p in spec.params]) == kinds
    assert spec.full == probe.split(":", 2 if probe.startswith("r:") else 1)[-1]


@pytest.mark.parametrize(
    "name",
    [
        "overload(double)", "ns::compute(std::string const&, int)", "ns::W::get() const", "f(int) [clone .cold]",
        "operator new(unsigned long)", "ns::f(ns::Widget)", "(anonymous namespace)::g(int)",
        "std::vector<int, std::allocator<int> >::push_back(int const&)", "f(" + ", ".join(["long"] * 13) + ")",
    ],
)  # fmt: skip
def test_any_demangled_name_is_a_func_looked_up_whole(name: str) -> None:
    spec = parse_probe(name, binary="/x:y/app")
    assert (spec.binary, spec.full) == ("/x:y/app", name)  # looked up whole first
    if spec.error:  # not a C signature: only the whole name can find it (or the error is raised then)
        assert spec.function == name and spec.params is None
    else:
        assert spec.function == name.split("(", maxsplit=1)[0] and spec.params is not None


def test_func_without_binary_is_told_apart_from_binary_func() -> None:
    assert split_binary("ns::compute(int, int)") is None
    assert split_binary("f(std::string)") is None
    assert split_binary("./app:ns::f") == ("./app", "ns::f")
    assert split_binary("libc:malloc") == ("libc", "malloc")
    spec = parse_probe("r:ns::compute(int, int)", binary="/tmp/a:b/app")
    assert (spec.kind, spec.binary, spec.function) == ("return", "/tmp/a:b/app", "ns::compute")
