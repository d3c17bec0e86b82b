"""Skeletons generated from hostile names: nothing in a name runs, and the module still imports and type-checks.

``tests/bpf/hostile_names.bpf.c`` names its programs, maps, globals (each
section), struct, members, enum, event type and exported type with long
placeholders; each round overwrites them in place (symbol table and BTF
strings) with hostile names: code after a closing quote, a newline, ``\\r``,
U+2028, U+0085, NUL, bytes that are not UTF-8, names the module itself uses,
keywords, dunders. The file name is hostile too. Every module is imported in
a child that checks nothing ran, its skeleton opened, and the lot checked by
``mypy --strict``.
"""

from __future__ import annotations

import struct
import subprocess
import sys
from pathlib import Path

import pytest
from elftools.elf.elffile import ELFFile

import pyprobe
from conftest import test_object
from pyprobe.cli.gen import EVENT_PREFIX, generate
from reliability.conftest import run_in_child

RUN = 'open("PWNED", "w")'
PAYLOADS: list[bytes] = [
    b'a"""\n' + RUN.encode() + b"#",
    b"b'''\n" + RUN.replace('"', "'").encode() + b"#",
    b"c\\\n" + RUN.encode(),
    b"d\r" + RUN.encode() + b"#",
    "e\u2028".encode() + RUN.encode(),
    "f\x85".encode() + RUN.encode(),
    b"g\xff\xfe" + RUN.encode(),
    b"h\x00" + RUN.encode(),  # a NUL ends the name: "h"
    b"\x00",  # an empty name
    b'__import__("os").system("touch PWNED")',
    b"i\x0b\x0c\x1c\x1d\x1e#" + RUN.encode(),
    b"j\x1b[2J\x07" + RUN.encode(),
    b'k")\n' + RUN.encode() + b"\n#",
    b"l}]\n" + RUN.encode() + b"\n#",
    b"m\t" + RUN.encode(),
    b"\\N{LATIN SMALL LETTER A}",
    b"\\x41\\u0041\\U00000041",
    "n\U0001f600\u202e\u200b".encode(),
    "\ufb01le",  # NFKC makes it "file"
    b"pyprobe",
    b"ctypes",
    b"Any",
    b"ClassVar",
    b"__all__",
    b"_OBJECT",
    b"finish_struct",
    b"Skeleton",
    b"TYPES",
    b"base64",
    b"builtins",
    b"annotations",
    b"__class__",
    b"obj",
    b"open",
    b"load",
    b"int",
    b"None",
    b"class",
    b"HostileNamesMaps",
    b"XPrograms",
    b"0digit",
    b"_private",
    b"#",
]
PAYLOADS = [p if isinstance(p, bytes) else p.encode() for p in PAYLOADS]


def placeholders(data: bytes) -> list[bytes]:
    """The distinct placeholder names of the object, as they stand in its string tables."""
    found = {m for m in data.split(b"\0") if m.startswith(b"placeholder_")}
    return sorted(found)


def string_regions(path: Path) -> list[tuple[int, int]]:
    with path.open("rb") as f:
        elf = ELFFile(f)
        strtab = elf.get_section_by_name(".strtab")
        btf = elf.get_section_by_name(".BTF")
        regions = [(strtab["sh_offset"], strtab["sh_offset"] + strtab["sh_size"])]
        base = btf["sh_offset"]
    data = path.read_bytes()
    magic, _, _, hdr_len, _, _, str_off, str_len = struct.unpack_from("<HBBIIIII", data, base)
    assert magic == 0xEB9F
    regions.append((base + hdr_len + str_off, base + hdr_len + str_off + str_len))
    return regions


def patch(data: bytearray, regions: list[tuple[int, int]], old: bytes, new: bytes) -> None:
    """Overwrites every whole string ``old`` in ``regions`` with ``new`` (NUL-padded, cut to its length)."""
    new = new[: len(old)].ljust(len(old), b"\0")
    for start, end in regions:
        at = data.find(b"\0" + old + b"\0", start, end)
        while at >= 0:
            data[at + 1 : at + 1 + len(old)] = new
            at = data.find(b"\0" + old + b"\0", at + 1, end)


def file_name(payload: bytes, round_: int) -> str:
    name = payload.replace(b"/", b"_").replace(b"\0", b"_").decode("utf-8", "surrogateescape")
    return f"{round_}{name}.bpf.o"


def test_hostile_names_never_run_and_the_modules_type_check(tmp_path: Path) -> None:
    """len(PAYLOADS) rounds; each gives every placeholder a different payload, so each meets each kind of name."""
    source = test_object("hostile_names")
    original = source.read_bytes()
    names = placeholders(original)
    assert len(names) >= 15, names
    regions = string_regions(source)
    objects = tmp_path / "objects"
    objects.mkdir()
    modules: list[str] = []
    refused: list[str] = []
    for round_ in range(len(PAYLOADS)):
        data = bytearray(original)
        for i, old in enumerate(names):
            new = PAYLOADS[(i + round_) % len(PAYLOADS)]
            patch(data, regions, old, new)
            patch(data, regions, EVENT_PREFIX.encode() + old, EVENT_PREFIX.encode() + new[: len(old)])
        obj = objects / file_name(PAYLOADS[round_], round_)
        obj.write_bytes(bytes(data))
        try:
            text = generate(str(obj), reference=round_ % 2 == 1)
        except (pyprobe.BpfError, ValueError) as exc:  # documented: the object is refused, nothing written
            refused.append(f"{round_}: {exc}")
            continue
        assert text.isascii()
        module = f"hostile_{round_}"
        (tmp_path / f"{module}.py").write_text(text)
        modules.append(module)
    print(f"{len(modules)} skeletons, {len(refused)} objects refused: {refused}")
    assert len(modules) >= len(PAYLOADS) - 4, refused
    out = run_in_child(
        f"""
        import importlib, os, sys
        sys.path.insert(0, {str(tmp_path)!r})
        os.chdir({str(tmp_path)!r})
        for name in {modules!r}:
            module = importlib.import_module(name)
            assert not os.path.exists("PWNED"), name
            skeleton = next(v for k, v in vars(module).items() if k in module.__all__ and k.endswith("Skeleton"))
            with skeleton().open() as skel:
                assert set(skel.obj.programs) == set(skeleton.PROGS.__annotations__) | set(skel.obj.programs)
            print("ok", name)
        """,
        timeout=120,
    )
    assert out.split() == [w for m in modules for w in ("ok", m)]
    assert not (tmp_path / "PWNED").exists()
    proc = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--no-incremental", "--cache-dir", str(tmp_path / ".mypy"),
         *(f"{m}.py" for m in modules)],
        cwd=tmp_path, capture_output=True, text=True, check=False, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0 and proc.stdout.splitlines()[-1].startswith("Success"), proc.stdout[-4000:]
    assert not (tmp_path / "PWNED").exists()


@pytest.mark.parametrize(
    "bad", ["class", "Maps", "Skeleton", "int", "a-b", "_Private", "A\nB", "A\u2028", "\uff21", "X#", "None", "Any", ""]
)
def test_a_hostile_class_name_is_refused(bad: str) -> None:
    with pytest.raises(ValueError, match="class name"):
        generate(str(test_object("minimal")), class_name=bad)
