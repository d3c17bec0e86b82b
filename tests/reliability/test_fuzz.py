"""Bounded fuzzing of what pyprobe reads from files: BPF objects, ELF binaries, BTF, the skeleton generator, USDT notes.

Each target mutates a real file from the build (bytes overwritten in the
regions that matter: headers, symbol and string tables, BTF, notes; and
truncation) with hypothesis, derandomized so every run tries the same cases,
and runs one reader on each. Only the documented errors may come out
(:class:`pyprobe.BpfError` and its subclasses, ValueError, OSError), and no
case may take more than two seconds; a crash kills the child
(``fuzz_child.py``), not the test run. The seeds and the inputs that once
failed, kept in ``corpus/<target>/`` (``.json``: edits to the base file;
other files: whole inputs), are replayed first on every run.
"""

from __future__ import annotations

import json
import struct
from pathlib import Path

import pytest
from elftools.elf.elffile import ELFFile

from conftest import target, test_object
from reliability.conftest import run_in_child

HERE = Path(__file__).parent
CORPUS = HERE / "corpus"
EXAMPLES = {"object": 1000, "elf": 1000, "btf": 1000, "skeleton": 400, "usdt": 1000}
"""Generated cases per target (the corpus comes on top)."""


def sections(path: Path, *names: str) -> list[list[int]]:
    """[start, end) file ranges: the ELF header, the section and program header tables, and the named sections."""
    regions: list[list[int]] = [[0, 64]]
    with path.open("rb") as f:
        elf = ELFFile(f)
        shoff, shnum, shentsize = elf["e_shoff"], elf["e_shnum"], elf["e_shentsize"]
        regions.append([shoff, shoff + shnum * shentsize])
        if elf["e_phnum"]:
            regions.append([elf["e_phoff"], elf["e_phoff"] + elf["e_phnum"] * elf["e_phentsize"]])
        for section in elf.iter_sections():
            if section.name in names or any(n.endswith("*") and section.name.startswith(n[:-1]) for n in names):
                regions.append([section["sh_offset"], section["sh_offset"] + section["sh_size"]])
    return regions


def named_sections(path: Path) -> dict[str, list[int]]:
    with path.open("rb") as f:
        return {s.name: [s["sh_offset"], s["sh_offset"] + s["sh_size"]] for s in ELFFile(f).iter_sections() if s.name}


def raw_btf(obj: Path, out: Path) -> list[list[int]]:
    """Writes the .BTF section of ``obj`` as a raw BTF file; its regions: header, types, strings."""
    with obj.open("rb") as f:
        data = ELFFile(f).get_section_by_name(".BTF").data()
    out.write_bytes(data)
    _magic, _version, _flags, hdr_len, type_off, type_len, str_off, str_len = struct.unpack_from("<HBBIIIII", data)
    types, strings = hdr_len + type_off, hdr_len + str_off
    return [[0, hdr_len], [types, types + type_len], [strings, strings + str_len]]


def spec_for(name: str, tmp_path: Path) -> dict[str, object]:
    if name == "object":
        base = test_object("skel_types")
        regions = sections(base, ".BTF", ".BTF.ext", ".symtab", ".strtab", ".maps", ".rel*", "fill*", ".rodata")
        suffix = ".bpf.o"
    elif name == "skeleton":
        base = test_object("skel_types")
        regions = sections(base, ".BTF", ".maps", ".symtab", ".strtab")[2:] * 3 + sections(base)
        suffix = ".bpf.o"
    elif name == "btf":
        base = tmp_path / "skel_types.btf"
        regions = raw_btf(test_object("skel_types"), base)
        suffix = ".btf"
    elif name == "elf":
        base = target("args8")
        regions = sections(base, ".symtab", ".strtab", ".dynsym", ".dynstr", ".note.stapsdt", ".gnu.version*")
        suffix = ""
    else:
        base = target("usdt_target")
        regions = sections(base, ".note.stapsdt", ".stapsdt.base", ".probes") + sections(base, ".note.stapsdt")[-1:] * 8
        suffix = ""
    named = dict(zip(("header", "types", "strings"), regions, strict=True)) if name == "btf" else named_sections(base)
    corpus = sorted(str(p) for p in (CORPUS / name).glob("*")) if (CORPUS / name).is_dir() else []
    return {"target": name, "base": str(base), "regions": regions, "named": named, "examples": EXAMPLES[name],
            "corpus": corpus, "work": str(tmp_path), "suffix": suffix}  # fmt: skip


@pytest.mark.parametrize("name", list(EXAMPLES))
def test_fuzz(name: str, tmp_path: Path) -> None:
    pytest.importorskip("hypothesis")
    spec = spec_for(name, tmp_path)
    spec_file = tmp_path / "spec.json"
    spec_file.write_text(json.dumps(spec))
    out = run_in_child(
        f"""
        import runpy, sys
        print("fuzz work directory (a crash leaves its input as 'current'):", {str(tmp_path)!r}, file=sys.stderr)
        sys.argv = ["fuzz_child.py", {str(spec_file)!r}]
        runpy.run_path({str(HERE / "fuzz_child.py")!r}, run_name="__main__")
        """,
        timeout=240,
    )
    result = json.loads(out.strip().splitlines()[-1])
    print(f"fuzz {name}: {result['cases']} cases, errors {result['errors']}, {len(result['findings'])} findings")
    assert result["cases"] >= EXAMPLES[name] // 2
    assert not result["findings"], json.dumps(result["findings"][:5], indent=1)
