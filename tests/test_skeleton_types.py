"""Typed skeletons: generated struct classes, typed maps and events, hostile names, bounded BTF walks."""

from __future__ import annotations

import ast
import ctypes
import shutil
import struct
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from elftools.elf.elffile import ELFFile

import pyprobe
from conftest import import_file, test_object
from pyprobe.btf import Btf, numpy_dtype
from pyprobe.cli import _codegen
from pyprobe.cli._codegen import Classes, literal, text
from pyprobe.cli.gen import generate


def write_skeleton(tmp_path: Path, obj: Path, module: str, *extra: str) -> Path:
    out = tmp_path / f"{module}.py"
    proc = subprocess.run(
        [sys.executable, "-m", "pyprobe", "gen", "skeleton", str(obj), "-o", str(out), *extra],
        capture_output=True, text=True, check=False, cwd=tmp_path,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    return out


def mypy(cwd: Path, *files: str) -> list[str]:
    """mypy --strict's output lines (notes and errors) for ``files`` in ``cwd``."""
    pytest.importorskip("mypy")
    proc = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--no-incremental", "--cache-dir", str(cwd / ".mypy"), *files],
        cwd=cwd, capture_output=True, text=True, check=False,
    )  # fmt: skip
    return proc.stdout.splitlines()


FILL_ARGS = struct.Struct("<II")


# --- what the module declares -------------------------------------------------------------------
def test_structs_become_classes_and_maps_are_typed_with_them(tmp_path: Path) -> None:
    source = write_skeleton(tmp_path, test_object("skel_types"), "skel_types_skel").read_text()
    for line in (
        "class Endpoint(BtfStruct):", "class FlowKey(BtfStruct):", "class FlowValue(BtfStruct):",
        "class FlowValueAnon6(BtfUnion):", "class FlowValueWindow(BtfStruct):", "class OpenEvent(BtfStruct):",
        "class ExportedOnly(BtfStruct):", "class Settings(BtfStruct):", "class CpuStats(BtfStruct):",
        "    name: bytes", "    matrix: ctypes.Array[ctypes.Array[ctypes.c_uint16]]",
        "    hops: ctypes.Array[Endpoint]",
        "    window: FlowValueWindow", "    low: int", "    sign: int", "    as_u32: int", "    ok: bool",
        "    bytes: int", "    _pack_ = 1",
        "    counts: pyprobe.HashMap[int, int]", "    flows: pyprobe.HashMap[FlowKey, FlowValue]",
        "    stats: pyprobe.PerCpuArrayMap[CpuStats]", "    events: pyprobe.RingBufMap[OpenEvent]",
        "    raw_events: pyprobe.RingBufMap[bytes]", "    perf_events: pyprobe.PerfEventArrayMap[OpenEvent]",
        "    names: pyprobe.ArrayMap[bytes]",
        '        "flows": (FlowKey, FlowValue),', '        "events": (None, OpenEvent),',
        "    last_peer: Endpoint", "    settings: Settings", "    fills: int",
    ):  # fmt: skip
        assert f"{line}\n" in source, line
    # each class comes after the classes it uses
    assert source.index("class Endpoint(") < source.index("class FlowKey(") < source.index("class OpenEvent(")
    # only real globals: nothing from .pyprobe.types
    assert "__pyprobe" not in source


def test_generated_classes_have_btf_layout_checked_at_import(tmp_path: Path) -> None:
    module = import_file(write_skeleton(tmp_path, test_object("skel_types"), "skel_types_layout"))
    btf = Btf.from_file(test_object("skel_types"))
    try:
        for cls, name in ((module.FlowValue, "flow_value"), (module.OpenEvent, "open_event"),
                          (module.PackedPair, "packed_pair"), (module.FlowKey, "flow_key")):  # fmt: skip
            made = btf.type_by_name(f"struct {name}")
            assert ctypes.sizeof(cls) == ctypes.sizeof(made)
            assert numpy_dtype(cls) == numpy_dtype(made), name
    finally:
        btf.close()
    source = (tmp_path / "skel_types_layout.py").read_text()
    for good, bad, message in (("finish_struct(Endpoint, 8, (0, 4, 6))", "finish_struct(Endpoint, 8, (0, 4, 7))",
                                r"Endpoint \(struct endpoint\) member '_pad' is at offset 6 here, BTF says 7"),
                               ("finish_struct(Endpoint, 8,", "finish_struct(Endpoint, 12,",
                                r"Endpoint \(struct endpoint\) is 8 bytes here, BTF says 12")):  # fmt: skip
        assert good in source
        (tmp_path / "skel_types_broken.py").write_text(source.replace(good, bad))
        with pytest.raises(pyprobe.BtfError, match=message):
            import_file(tmp_path / "skel_types_broken.py")
    value = module.FlowValue.from_dict({"low": 7, "sign": -8, "octets": [1, 2, 3, 4], "window": {"last": 3}})
    assert (value.low, value.sign, value.as_u32, value.window.last) == (7, -8, 0x04030201, 3)
    with pytest.raises(ValueError, match="cannot hold"):
        value.low = 8


# --- the real kernel ----------------------------------------------------------------------------
@pytest.mark.bpf
def test_maps_events_and_globals_decode_into_the_generated_classes(tmp_path: Path) -> None:
    module = import_file(write_skeleton(tmp_path, test_object("skel_types"), "skel_types_run"))
    with module.SkelTypesSkeleton().open() as skel:
        settings = skel.rodata.settings
        assert isinstance(settings, module.Settings) and (settings.limit, settings.mode) == (10, 1)
        skel.rodata.settings = module.Settings(limit=3, mode=2)
        skel.load()
        reader = skel.maps.events.reader()
        assert skel.maps.perf_events.event_type is module.OpenEvent
        for seq in (7, 8, 9, 10):
            assert skel.progs.fill.test_run(ctx=FILL_ARGS.pack(4242, seq)).retval == (0 if seq < 10 else 2**32 - 1)

        assert skel.maps.counts.items() == [(4242, 3)]
        ((key, value),) = skel.maps.flows.items()
        assert isinstance(key, module.FlowKey) and isinstance(value, module.FlowValue)
        assert isinstance(key.src, module.Endpoint) and isinstance(key.hops[1], module.Endpoint)
        assert (key.src.addr, key.src.port, key.hops[1].port, key.proto) == (0x0A000001, 80, 443, 6)
        assert (value.packets, value.name, value.matrix[1][2]) == (9, b"flow", 7)
        assert (value.low, value.high, value.sign, value.as_u32, list(value.octets)) == (5, 17, -3, 0x04030201,
                                                                                         [1, 2, 3, 4])  # fmt: skip
        assert isinstance(value.window, module.FlowValueWindow) and (value.window.first, value.window.last) == (1, 9)
        assert isinstance(value.pair, module.PackedPair) and (value.pair.tag, value.pair.value) == (0xAB, 0x12345678)
        assert (value.ok, value.verdict) == (True, 2)
        assert skel.maps.flows[key] == value
        probe = module.FlowKey(proto=6)
        probe.src.addr, probe.src.port, probe.hops[0].addr, probe.hops[1].port = 0x0A000001, 80, 1, 443
        assert skel.maps.flows[probe].packets == 9

        per_cpu = skel.maps.stats[0]
        assert all(isinstance(s, module.CpuStats) for s in per_cpu)
        assert sum(s.runs for s in per_cpu) == 3 and sum(s.bytes for s in per_cpu) == 300

        events = list(reader.events(timeout=0.2))
        assert [type(e) for e in events] == [module.OpenEvent] * 3
        assert [e.args[0] for e in events] == [7, 8, 9]
        first = events[0]
        assert (first.pid, first.flags, first.filename, first.args[2]) == (4242, -2, b"/etc/hosts", 2**64 - 1)
        assert isinstance(first.peer, module.Endpoint) and (first.peer.addr, first.peer.port) == (0x7F000001, 8080)
        raw = skel.maps.raw_events.reader()
        skel.obj.bss.fills = 0
        skel.progs.fill.test_run(ctx=FILL_ARGS.pack(1, 11))
        # no PYPROBE_EVENT_TYPE: raw records
        assert list(raw.events(timeout=0.2)) == [seq.to_bytes(8, "little") for seq in (7, 8, 9, 11)]

        peer = skel.bss.last_peer
        assert isinstance(peer, module.Endpoint) and (peer.addr, peer.port) == (1, 22)
        skel.bss.last_peer = module.Endpoint(addr=5, port=6)
        assert skel.obj.bss.last_peer.to_dict() == {"addr": 5, "port": 6}
        assert skel.bss.fills == 1
        reader.close()
        raw.close()


@pytest.mark.bpf
def test_generated_classes_check_every_member_range(tmp_path: Path) -> None:
    module = import_file(write_skeleton(tmp_path, test_object("skel_types"), "skel_types_ranges"))
    with pytest.raises(ValueError, match=r"member 'port' of struct endpoint: 70000 is out of range for u16"):
        module.Endpoint(addr=1, port=70000)
    endpoint = module.Endpoint()
    with pytest.raises(ValueError, match=r"member 'addr' of struct endpoint: -1"):
        endpoint.addr = -1
    with pytest.raises(ValueError, match=r"member 'matrix' of struct flow_value\[1\]\[2\]: 65536"):
        module.FlowValue.from_dict({"matrix": [[1, 2, 3], [4, 5, 65536]]})
    with pytest.raises(ValueError, match=r"member 'value' of struct packed_pair: 4294967296"):
        module.PackedPair(value=2**32)
    with pytest.raises(ValueError, match=r"member 'as_u32'"):  # promoted from an anonymous union
        module.FlowValue(as_u32=2**32)
    with module.SkelTypesSkeleton().open() as skel:
        with pytest.raises(ValueError, match=r"global 'settings' in \.rodata: member 'limit'"):
            skel.rodata.settings = {"limit": 2**32}
        skel.load()
        with pytest.raises(ValueError, match=r"key of map 'flows'.*member 'hops'.*\[1\].*member 'port'.*65536"):
            skel.maps.flows[{"hops": [{}, {"port": 65536}]}] = {}
        with pytest.raises(ValueError, match=r"global 'last_peer' in \.bss: member 'port'"):
            skel.bss.last_peer = {"port": -1}
        assert skel.maps.flows.items() == [] and skel.bss.last_peer.to_dict() == {"addr": 0, "port": 0}


@pytest.mark.bpf
def test_a_skeleton_for_another_object_names_the_map_whose_sizes_differ(tmp_path: Path) -> None:
    module = import_file(write_skeleton(tmp_path, test_object("skel_types"), "skel_types_other"))
    other = tmp_path / "other.bpf.o"
    shutil.copy(test_object("maps"), other)
    with module.SkelTypesSkeleton(str(other)).open() as skel:
        assert isinstance(skel.maps.hash, pyprobe.HashMap)  # not in TYPES: as BTF makes it
    types = dict(module.SkelTypesMaps.TYPES)
    module.SkelTypesMaps.TYPES = {"hash": (None, module.OpenEvent)}
    try:
        with module.SkelTypesSkeleton(str(other)).open() as skel, pytest.raises(ValueError, match="'hash'"):
            _ = skel.maps.hash
    finally:
        module.SkelTypesMaps.TYPES = types


# --- mypy -----------------------------------------------------------------------------------------
def test_mypy_sees_the_generated_types(tmp_path: Path) -> None:
    write_skeleton(tmp_path, test_object("skel_types"), "skel_types_skel")
    (tmp_path / "loader.py").write_text(
        "from skel_types_skel import FlowKey, SkelTypesSkeleton\n\n\n"
        "def use() -> int:\n"
        "    with SkelTypesSkeleton().open() as skel:\n"
        "        skel.load()\n"
        "        reveal_type(skel.maps.counts.items())\n"
        "        for event in skel.maps.events.reader().events(timeout=0.1):\n"
        "            reveal_type(event)\n"
        "            reveal_type(event.peer)\n"
        "            reveal_type(event.peer.port)\n"
        "            reveal_type(event.filename)\n"
        "            reveal_type(event.args)\n"
        "        reveal_type(skel.maps.flows[FlowKey()])\n"
        "        reveal_type(skel.maps.flows[FlowKey()].window.last)\n"
        "        reveal_type(skel.maps.stats[0])\n"
        "        reveal_type(skel.rodata.settings)\n"
        "        reveal_type(skel.maps.raw_events.reader().events())\n"
        "        return skel.maps.flows[FlowKey()].name\n"  # bytes, not int: an error
        "\n\n"
        "def misspelt(key: FlowKey) -> None:\n"
        "    print(key.sorce)\n"  # a member the struct does not have: an error
        "    key.prto = 6\n"  # also when assigned
    )
    lines = mypy(tmp_path, "skel_types_skel.py", "loader.py")
    revealed = [line.split('Revealed type is "', 1)[1].rstrip('"') for line in lines if "Revealed type" in line]
    assert revealed == [
        "list[tuple[int, int]]", "skel_types_skel.OpenEvent", "skel_types_skel.Endpoint", "int", "bytes",
        "_ctypes.Array[ctypes.c_uint64]", "skel_types_skel.FlowValue", "int", "list[skel_types_skel.CpuStats]",
        "skel_types_skel.Settings", "typing.Iterator[bytes]",
    ], lines  # fmt: skip
    errors = [line for line in lines if ": error:" in line]
    assert len(errors) == 3, lines
    assert "loader.py:19:" in errors[0] and '"bytes"' in errors[0], lines
    assert "loader.py:23:" in errors[1] and '"FlowKey" has no attribute "sorce"' in errors[1], lines
    assert "loader.py:24:" in errors[2] and '"FlowKey" has no attribute "prto"' in errors[2], lines


# --- hostile names --------------------------------------------------------------------------------
def test_escaping_keeps_any_text_inside_its_string_or_comment() -> None:
    nasty = 'a"""b\'\'\'c\\\n\r\x00\x0b\x0c\x1c\x85\u2028\u2029\U0001f600"'
    assert ast.literal_eval(literal(nasty)) == nasty
    assert text(nasty).isascii() and "\n" not in text(nasty) and '"""' not in text(nasty)
    assert ast.literal_eval(f'"""{text(nasty)}"""') == nasty
    assert _codegen.usable("open_event") and not _codegen.usable("class") and not _codegen.usable("__init__")
    assert not _codegen.usable("ﬁle")  # NFKC would make it "file"
    assert _codegen.camel("open_event") == "OpenEvent" and _codegen.camel("3d") == "T3d"


def test_a_hostile_file_name_stays_inside_the_docstring(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    name = 'a"""\nopen("PWNED", "w")\n"""\'\'\'\\ \u2028x.bpf.o'
    hostile = tmp_path / name
    shutil.copy(test_object("minimal"), hostile)
    for extra in ((), ("--reference",)):
        out = write_skeleton(tmp_path, hostile, "hostile_file_skel", *extra)
        module = import_file(out)
        assert not (tmp_path / "PWNED").exists()
        assert module.__doc__.startswith(f"Skeleton of {name}, generated")
        skeleton = next(v for k, v in vars(module).items() if k.endswith("Skeleton") and k != "Skeleton")
        assert skeleton.OBJECT_NAME.startswith('a"""\nopen(') and name.startswith(skeleton.OBJECT_NAME)
        if extra:
            assert str(hostile) == skeleton.OBJECT_PATH
            with skeleton().open() as skel:
                assert skel.obj.name == skeleton.OBJECT_NAME
    lines = mypy(tmp_path, "hostile_file_skel.py")
    assert lines[-1].startswith("Success"), lines


def patch_names(src: Path, dst: Path, renames: dict[str, bytes]) -> None:
    """Copies an object renaming strings of its BTF and symbol tables in place (each new name no longer)."""
    data = bytearray(src.read_bytes())
    with src.open("rb") as f:
        elf = ELFFile(f)
        btf = elf.get_section_by_name(".BTF")
        strtab = elf.get_section_by_name(".strtab")
        regions = [(strtab["sh_offset"], strtab["sh_offset"] + strtab["sh_size"])]
        base = btf["sh_offset"]
    magic, _, _, hdr_len, _, _, str_off, str_len = struct.unpack_from("<HBBIIIII", data, base)
    assert magic == 0xEB9F
    regions.append((base + hdr_len + str_off, base + hdr_len + str_off + str_len))
    for old, new in renames.items():
        assert len(new) <= len(old), old
        found = False
        for start, end in regions:
            at = data.find(b"\0" + old.encode() + b"\0", start, end)
            if at >= 0:
                data[at + 1 : at + 1 + len(old)] = new.ljust(len(old), b"\0")
                found = True
        assert found, old
    dst.write_bytes(bytes(data))


def test_hostile_btf_names_are_renamed_escaped_or_left_out(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    obj = tmp_path / "x.bpf.o"  # its namespaces: XPrograms, XMaps, XBss, ...
    patch_names(test_object("skel_types"), obj, {
        "open_event": b"none",                     # a keyword once in CamelCase
        "endpoint": b"maps",                       # a class the module imports
        "settings": b"x_maps",                     # a generated namespace class (and a global)
        "exported_only": 'e"""\n\\\'\u2028'.encode(),  # quotes, a newline, a backslash, a line separator
        "filename": b"__init__",                   # a dunder
        "flags": b"class",                         # a keyword
        "packets": b"to_dict",                     # a method of the class
        "window": b"ctypes",                       # a name the annotations use
        "limit": b"bytes",                         # builtins the annotations use
        "mode": b"int",
        "fills": b"TYPES",                         # the namespace's own attribute
        "scale": b"float",
        "raw_events": b'r-e"""\n',                 # not an identifier
        "names": b"TYPES",
    })  # fmt: skip
    source = write_skeleton(tmp_path, obj, "x_skel").read_text()
    for line in (
        "class NoneStruct(BtfStruct):", "class MapsStruct(BtfStruct):", "class XMapsStruct(BtfStruct):",
        "class E(BtfStruct):", '    """struct e\\"\\"\\"\\x0a\\\\\'\\u2028 (12 bytes)."""',
        '    class_: int  # BTF name "class"', '    _init__: bytes  # BTF name "__init__"',
        '    to_dict_: int  # BTF name "to_dict"', '    ctypes_: FlowValueCtypes  # BTF name "ctypes"',
        "    bytes: builtins.int", "    int: builtins.int", "    events: pyprobe.RingBufMap[NoneStruct]",
        '    # not attributes (names Python cannot use here): "TYPES", "r-e\\"\\"\\"\\x0a"',
        '    # not attributes (names Python cannot use here): "TYPES"', "    float: int", "    x_maps: XMapsStruct",
    ):  # fmt: skip
        assert f"{line}\n" in source, line
    module = import_file(tmp_path / "x_skel.py")
    assert module.E._btf_name_ == 'struct e"""\n\\\'\u2028'
    event = module.NoneStruct(class_=-1)
    assert event.to_dict()["class_"] == -1 and event.to_dict()["_init__"] == b""
    assert module.FlowValue().to_dict_ == 0 and module.FlowValue().to_dict()["to_dict_"] == 0
    with module.XSkeleton().open() as skel:
        assert isinstance(skel.rodata.x_maps, module.XMapsStruct) and skel.rodata.x_maps.bytes == 10
        assert skel.rodata.float == 1
        assert skel.obj.bss.TYPES == 0  # left out of the namespace, still in the object
    lines = mypy(tmp_path, "x_skel.py")
    assert lines[-1].startswith("Success"), lines


def test_a_class_name_must_be_usable() -> None:
    for bad in ("class", "Maps", "Skeleton", "int", "a-b", "_Private"):
        with pytest.raises(ValueError, match="class name"):
            generate(str(test_object("minimal")), class_name=bad)


# --- bounds ---------------------------------------------------------------------------------------
class RawBtf:
    """Writes raw BTF (a /sys/kernel/btf/vmlinux-like file) with any types, cycles included."""

    def __init__(self) -> None:
        self.types: list[bytes] = []
        self.strings = bytearray(b"\0")

    def _name(self, name: str) -> int:
        if not name:
            return 0
        offset = len(self.strings)
        self.strings += name.encode() + b"\0"
        return offset

    def next_id(self) -> int:
        return len(self.types) + 1

    def int_(self, name: str = "int", size: int = 4) -> int:
        self.types.append(struct.pack("<IIII", self._name(name), 1 << 24, size, (1 << 24) | size * 8))
        return len(self.types)

    def struct_(self, name: str, size: int, members: list[tuple[str, int, int]], kind: int = 4) -> int:
        body = struct.pack("<III", self._name(name), (kind << 24) | len(members), size)
        body += b"".join(struct.pack("<III", self._name(n), t, bit_offset) for n, t, bit_offset in members)
        self.types.append(body)
        return len(self.types)

    def load(self, path: Path) -> Btf:
        types = b"".join(self.types)
        header = struct.pack("<HBBIIIII", 0xEB9F, 1, 0, 24, 0, len(types), len(types), len(self.strings))
        path.write_bytes(header + types + bytes(self.strings))
        return Btf.from_file(path)


def run_classes(source_lines: list[str]) -> dict[str, object]:
    code = "import ctypes\nfrom pyprobe.btf import BtfStruct, BtfUnion\nfrom pyprobe.skeleton import finish_struct\n"
    namespace: dict[str, object] = {"__name__": "generated"}
    exec(compile(code + "\n".join(source_lines), "generated", "exec"), namespace)
    return namespace


def test_deep_nesting_and_cycles_fall_back_to_any(tmp_path: Path) -> None:
    raw = RawBtf()
    i32 = raw.int_()
    chain = [raw.struct_("level0", 4, [("x", i32, 0)])]
    for depth in range(1, 5000):  # far deeper than Python's recursion limit
        chain.append(raw.struct_(f"level{depth}", 4, [("inner", chain[-1], 0)]))
    a = raw.next_id()
    raw.struct_("loop_a", 4, [("b", a + 1, 0)])
    raw.struct_("loop_b", 4, [("a", a, 0)])
    selfish = raw.struct_("selfish", 8, [("x", i32, 0), ("me", raw.next_id(), 32)])
    btf = raw.load(tmp_path / "deep.btf")
    try:
        classes = Classes(btf, set())
        ok = classes.type(chain[_codegen.MAX_DEPTH - 1])
        assert ok.cls == f"Level{_codegen.MAX_DEPTH - 1}" and ok.value == ok.cls
        deep = classes.type(chain[-1])
        assert deep.value == "Any" and deep.cls is None and "nested deeper than" in deep.note
        for cyclic in (a, selfish):
            found = classes.type(cyclic)
            assert found.value == "Any" and "in itself" in found.note
        namespace = run_classes(classes.source())
        level = namespace[ok.cls]
        expected: dict[str, object] = {"x": 0}
        for _ in range(_codegen.MAX_DEPTH - 1):
            expected = {"inner": expected}
        assert level().to_dict() == expected
    finally:
        btf.close()


def test_too_many_classes_or_members_fall_back_to_any(tmp_path: Path) -> None:
    raw = RawBtf()
    i32 = raw.int_()
    many = [raw.struct_(f"s{n}", 4, [("x", i32, 0)]) for n in range(_codegen.MAX_CLASSES + 20)]
    wide = raw.struct_(
        "wide", 4 * (_codegen.MAX_FIELDS + 1), [(f"f{n}", i32, 32 * n) for n in range(_codegen.MAX_FIELDS + 1)]
    )
    btf = raw.load(tmp_path / "many.btf")
    try:
        classes = Classes(btf, set())
        assert classes.type(wide).note == f"struct wide: more than {_codegen.MAX_FIELDS} members in all"
        made = [classes.type(t) for t in many]
        assert sum(1 for t in made if t.cls) == _codegen.MAX_CLASSES
        assert made[-1].value == "Any" and f"more than {_codegen.MAX_CLASSES} classes" in made[-1].note
        assert len(run_classes(classes.source())) > _codegen.MAX_CLASSES
    finally:
        btf.close()


def test_unusual_members_are_named_and_laid_out(tmp_path: Path) -> None:
    raw = RawBtf()
    i32 = raw.int_()
    u8 = raw.int_("unsigned char", 1)
    inner = raw.struct_("", 4, [("x", i32, 0)])
    outer = raw.struct_("outer", 16, [
        ("x", i32, 0),             # clashes with the anonymous member's x: that one is not promoted
        ("", inner, 32),
        ("_pad", u8, 64),          # the name generated padding would take
        ("from_buffer", u8, 72),   # a ctypes classmethod
        ("ok", u8, 120),
    ])  # fmt: skip
    btf = raw.load(tmp_path / "odd.btf")
    try:
        classes = Classes(btf, {"Outer"})  # "Outer" is taken in the module
        found = classes.type(outer)
        assert found.cls == "OuterStruct"
        namespace = run_classes(classes.source())
        cls: type = namespace["OuterStruct"]  # type: ignore[assignment]
        value = cls.from_buffer_copy(bytes(range(16)))
        assert value.to_dict() == {"x": 0x03020100, "_anon": {"x": 0x07060504}, "_pad": 8, "from_buffer_": 9, "ok": 15}
        assert cls.from_buffer is not None and ctypes.sizeof(cls) == 16
    finally:
        btf.close()


def test_anonymous_unions_padding_does_not_shadow_the_outer_struct(tmp_path: Path) -> None:
    raw = RawBtf()
    u8, u64 = raw.int_("u8", 1), raw.int_("u64", 8)
    union_a = raw.struct_("", 8, [("a", u64, 0), ("a_low", u8, 0)], kind=5)  # has internal _raw padding
    union_b = raw.struct_("", 8, [("b", u64, 0), ("b_low", u8, 0)], kind=5)
    outer = raw.struct_("outer", 32, [("tag", u8, 0), ("", union_a, 64), ("", union_b, 128), ("last", u8, 192)])
    btf = raw.load(tmp_path / "unions.btf")
    try:
        classes = Classes(btf, set())
        assert classes.type(outer).cls == "Outer"
        cls: Any = run_classes(classes.source())["Outer"]
        value = cls.from_buffer_copy(bytes(range(32)))
        assert (value.tag, value.a_low, value.b_low, value.last) == (0, 8, 16, 24)
        a, b = (int.from_bytes(bytes(range(n, n + 8)), "little") for n in (8, 16))
        assert value.to_dict() == {"tag": 0, "a": a, "a_low": 8, "b": b, "b_low": 16, "last": 24}
    finally:
        btf.close()


def _shape(dtype: object) -> str:
    """A numpy dtype's layout without its member names: offsets, sizes, formats."""
    dt: Any = dtype
    if dt.fields is None:
        return repr((_shape(dt.subdtype[0]), dt.subdtype[1]) if dt.subdtype else dt.str)
    return repr((dt.itemsize, sorted((offset, _shape(sub)) for sub, offset, *_ in dt.fields.values())))


def test_kernel_structs_generate_with_the_layout_btf_gives() -> None:
    pytest.importorskip("numpy")
    path = Path("/sys/kernel/btf/vmlinux")
    if not path.exists():
        pytest.skip("the kernel has no BTF (/sys/kernel/btf/vmlinux)")
    btf = Btf.from_file(path)
    try:
        classes = Classes(btf, set())
        roots = {}
        for name in ("perf_event_attr", "task_struct", "sk_buff", "iov_iter", "folio", "bpf_prog"):
            found = classes.type(btf.find(f"struct {name}"))
            assert found.cls, (name, found.note)
            roots[found.cls] = name
        namespace = run_classes(classes.source())
        for cls, name in roots.items():
            assert _shape(numpy_dtype(namespace[cls])) == _shape(numpy_dtype(btf.type_by_name(f"struct {name}"))), name
        assert namespace["PerfEventAttr"]().to_dict()["_reserved_1"] == 0  # __reserved_1
    finally:
        btf.close()
