"""The fuzz loop that test_fuzz.py runs in a child interpreter: mutate a file, run one pyprobe reader on it.

``python fuzz_child.py SPEC.json`` where the spec gives the target, the base
file, the byte regions to mutate, the number of examples, the corpus files to
replay first and a work directory. Each input is written to ``WORK/current``
before it is read, so a crash leaves it there. Prints one JSON line: the
number of cases run, the documented errors raised by type, and the findings (an exception outside the documented
ones, or a case slower than the bound), each with its input saved in WORK.
"""

from __future__ import annotations

import ast
import contextlib
import json
import logging
import os
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

import pyprobe
from pyprobe import symbols, usdt
from pyprobe.btf import Btf, BtfError
from pyprobe.cli.gen import generate

ALLOWED: tuple[type[BaseException], ...] = (pyprobe.BpfError, ValueError, OSError)
"""The documented errors of these readers: BpfError (LoadError, AttachError, BtfError), ValueError, OSError."""


def documented(exc: BaseException) -> bool:
    """An allowed class, and not a UnicodeError or a private class (``pyprobe._elf.ElfFormatError``) leaking out."""
    return not isinstance(exc, UnicodeError) and not type(exc).__module__.startswith("pyprobe._")


SLOW = 2.0
"""Seconds one case may take."""


def run_object(path: str) -> None:
    with pyprobe.open(path) as obj:
        seen = [(p.name, p.section, p.type) for p in obj.programs.values()]
        seen += [(m.name, m.type, m.key_size, m.value_size, m.max_entries) for m in obj.maps.values()]


def run_elf(path: str) -> None:
    info = symbols.elf_info(path)
    bare = [sym.bare for sym in info.symbols[:2000]]
    for name in ("overload", "overload(double)", "probe::scaled", "_ZN5probe6scaledEii", "args8", *bare[:3]):
        with contextlib.suppress(pyprobe.AttachError):
            symbols.resolve(path, name)
    usdt.probes(path)


def run_btf(path: str) -> None:
    btf = Btf.from_file(path)
    try:
        for type_id in range(1, 4000):
            try:
                btf.record(type_id)
            except BtfError:
                break
            with contextlib.suppress(BtfError):
                btf.type_by_id(type_id)
    finally:
        btf.close()


def run_skeleton(path: str) -> None:
    ast.parse(generate(path))


def run_usdt(path: str) -> None:
    for probe in usdt.probes(path):
        assert isinstance(probe.provider, str) and isinstance(probe.name, str), probe
        assert all(isinstance(a.spec, str) for a in probe.arguments), probe


TARGETS: dict[str, Callable[[str], None]] = {
    "object": run_object, "elf": run_elf, "btf": run_btf, "skeleton": run_skeleton, "usdt": run_usdt,
}  # fmt: skip


def mutate(base: bytes, regions: list[list[int]], edits: list[tuple[int, int, int]], cut: int) -> bytes:
    """``base`` with each edit (region index, offset in it, byte) applied, then ``cut`` bytes dropped from the end."""
    data = bytearray(base)
    for which, offset, value in edits:
        start, end = regions[which % len(regions)]
        if end > start:
            data[start + offset % (end - start)] = value
    if cut:
        del data[len(data) - cut % len(data) :]
    return bytes(data)


def seeded(base: bytes, named: dict[str, list[int]], seed: dict[str, Any]) -> bytes:
    """``base`` changed as a corpus entry says, in terms that survive a rebuild of the base file.

    ``replace``: [old, new] pairs of strings (latin-1 for bytes), the first
    occurrence of each replaced; ``edits``: [region, offset, byte] with a
    named region (a section, or ``header``/``types``/``strings`` of raw
    BTF); ``cut``: bytes dropped from the end.
    """
    data = bytearray(base)
    for old, new in seed.get("replace", []):
        at = data.find(old.encode("latin-1"))
        if at < 0:
            raise LookupError(f"corpus entry: {old!r} is not in the base file")
        data[at : at + len(old)] = new.encode("latin-1")
    for region, offset, value in seed.get("edits", []):
        start, end = named[region]
        data[start + offset % (end - start)] = value
    if seed.get("cut"):
        del data[len(data) - seed["cut"] :]
    return bytes(data)


def main() -> None:
    spec = json.loads(Path(sys.argv[1]).read_text())
    logging.getLogger("pyprobe").setLevel(logging.CRITICAL)
    logging.getLogger("pyprobe").propagate = False
    run = TARGETS[spec["target"]]
    work = Path(spec["work"])
    base = Path(spec["base"]).read_bytes()
    regions: list[list[int]] = spec["regions"]
    findings: list[dict[str, Any]] = []
    errors: dict[str, int] = {}
    cases = 0

    def one(data: bytes, label: str) -> None:
        nonlocal cases
        cases += 1
        current = work / "current"
        path = work / f"case{cases}{spec['suffix']}"  # a new name each time: readers cache by path and mtime
        current.write_bytes(data)
        os.replace(current, path)
        os.link(path, current)
        start = time.monotonic()
        try:
            try:
                run(str(path))
            except ALLOWED as exc:
                if not documented(exc):
                    raise
                errors[type(exc).__name__] = errors.get(type(exc).__name__, 0) + 1
        except BaseException as exc:  # anything else is a finding
            kept = work / f"finding{len(findings)}{spec['suffix']}"
            kept.write_bytes(data)
            findings.append(
                {
                    "case": label,
                    "input": str(kept),
                    "error": "".join(traceback.format_exception_only(type(exc), exc)).strip(),
                    "where": traceback.format_exc()[-1500:],
                }
            )
        elapsed = time.monotonic() - start
        if elapsed > SLOW:
            kept = work / f"slow{len(findings)}{spec['suffix']}"
            kept.write_bytes(data)
            findings.append({"case": label, "input": str(kept), "error": f"took {elapsed:.1f} s"})
        path.unlink()
        current.unlink()

    for entry in spec["corpus"]:
        corpus_file = Path(entry)
        if corpus_file.suffix == ".json":
            one(seeded(base, spec["named"], json.loads(corpus_file.read_text())), corpus_file.name)
        else:
            one(corpus_file.read_bytes(), corpus_file.name)

    edits = st.lists(
        st.tuples(st.sampled_from(range(len(regions))), st.integers(0, 1 << 24), st.integers(0, 255)), min_size=1,
        max_size=8,
    )  # fmt: skip
    cut = st.one_of(*[st.just(0)] * 15, st.integers(1, len(base)))  # truncated one time in 16

    @settings(
        max_examples=spec["examples"], derandomize=True, database=None, deadline=None, phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
    )  # fmt: skip
    @given(edits, cut)
    def fuzz(edits: list[tuple[int, int, int]], cut: int) -> None:
        one(mutate(base, regions, edits, cut), f"edits={edits} cut={cut}")

    fuzz()
    print(json.dumps({"cases": cases, "errors": errors, "findings": findings}))


if __name__ == "__main__":
    main()
