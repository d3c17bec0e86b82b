"""pyprobe.profile's data model and writers on profiles built here (no kernel): folding, merge, filter, top,
the folded, speedscope and pprof encodings, symbol lookups in perf maps, maps files and ELF files."""

from __future__ import annotations

import gzip
import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from conftest import target
from pyprobe.profile import Frame, Profile, Sample
from pyprobe.profile._symbolize import KernelSymbols, Symbolizer, parse_maps

APP = "/usr/bin/app"


def user(name: str, address: int) -> Frame:
    return Frame(name, APP, address, 4, "user")


def profile() -> Profile:
    main, run, heavy, light = (user("main", 0x1000), user("work::run()", 0x2000), user("work::Shapes::heavy()", 0x3000),
                               user("work::Shapes::light()", 0x4000))  # fmt: skip
    write = Frame("ksys_write", "[kernel.kallsyms]", 0xFFFF0000, 16, "kernel")
    jit = Frame("py::f:/x.py", "[perf-7.map]", 0x7000, 0, "jit")
    unknown = Frame("[unknown]", "/usr/lib/libc.so.6", 0x9000, 0x1234, "user")
    return Profile(
        [
            Sample(7, 7, "app", (unknown, main, run, heavy), 30),
            Sample(7, 8, "app", (unknown, main, run, heavy), 15),
            Sample(7, 7, "app", (unknown, main, run, light), 15),
            Sample(9, 9, "other", (main, jit, write), 10),
        ],
        frequency=99, start=1_700_000_000.0, duration=2.0,
    )  # fmt: skip


def test_folded_names_follow_flamegraph_conventions_and_sum_threads() -> None:
    folded = profile().folded()
    assert folded[("app", "[libc.so.6]", "main", "work::run()", "work::Shapes::heavy()")] == 45
    assert folded[("other", "main", "py::f:/x.py_[j]", "ksys_write_[k]")] == 10
    assert sum(folded.values()) == profile().total == 70


def test_filter_merge_and_top() -> None:
    p = profile()
    assert p.filter(pid=9).total == 10
    assert p.filter(tid=[8]).total == 15
    assert p.filter(pid=7, tid=7).total == 45
    merged = p.merge(p)
    assert merged.total == 140
    assert len(merged.samples) == len(p.samples)  # identical stacks summed
    top = p.top(3)
    assert [r.name for r in top[:2]] == ["work::Shapes::heavy()", "work::Shapes::light()"]
    assert (top[0].self, top[0].total) == (45, 45)
    by_total = p.top(2, by="total")
    assert by_total[0].name == "main" and by_total[0].total == 70 and by_total[0].self == 0


def test_folded_file_parses_back(tmp_path: Path) -> None:
    p = profile()
    path = tmp_path / "p.folded"
    p.write(path)
    back = {}
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        back[tuple(stack.split(";"))] = int(count)
    assert back == p.folded()


def check_speedscope(doc: dict[str, object], total: int) -> None:
    """The checks of speedscope's file-format schema that a sampled profile file must pass."""
    assert doc["$schema"] == "https://www.speedscope.app/file-format-schema.json"
    shared = doc["shared"]
    assert isinstance(shared, dict)
    frames = shared["frames"]
    assert isinstance(frames, list) and frames
    for frame in frames:
        assert isinstance(frame["name"], str) and frame["name"]
        assert set(frame) <= {"name", "file", "line", "col"}
    profiles = doc["profiles"]
    assert isinstance(profiles, list) and profiles
    weight_sum = 0
    for prof in profiles:
        assert prof["type"] == "sampled"
        assert prof["unit"] in ("none", "nanoseconds", "microseconds", "milliseconds", "seconds", "bytes")
        assert isinstance(prof["name"], str)
        assert len(prof["samples"]) == len(prof["weights"])
        for stack in prof["samples"]:
            assert all(isinstance(i, int) and 0 <= i < len(frames) for i in stack)
        assert prof["startValue"] == 0 and prof["endValue"] == sum(prof["weights"])
        weight_sum += sum(prof["weights"])
    assert weight_sum == total
    assert isinstance(doc["activeProfileIndex"], int) and 0 <= doc["activeProfileIndex"] < len(profiles)


def test_speedscope_follows_the_schema_root_first(tmp_path: Path) -> None:
    p = profile()
    path = tmp_path / "p.json"
    p.write(path)
    doc = json.loads(path.read_text())
    check_speedscope(doc, p.total)
    frames = doc["shared"]["frames"]
    first = doc["profiles"][0]  # the heaviest process (app, 60 samples)
    assert first["name"] == "app (7)" and first["endValue"] == 60
    names = [frames[i]["name"] for i in first["samples"][0]]
    assert names[-1].startswith("work::Shapes::") and names[1] == "main"  # root first, leaf last


def decode_pprof(path: Path) -> object:
    from pyprobe.profile._proto import profile_pb2

    msg = profile_pb2.Profile()
    msg.ParseFromString(gzip.decompress(path.read_bytes()))
    return msg


def test_pprof_decodes_with_protobuf(tmp_path: Path) -> None:
    p = profile()
    path = tmp_path / "p.pb.gz"
    p.write(path)
    msg = decode_pprof(path)
    strings = list(msg.string_table)  # type: ignore[attr-defined]
    assert strings[0] == ""
    assert [strings[t.type] for t in msg.sample_type] == ["samples", "cpu"]  # type: ignore[attr-defined]
    assert sum(s.value[0] for s in msg.sample) == p.total  # type: ignore[attr-defined]
    assert msg.period == round(1e9 / 99)  # type: ignore[attr-defined]
    locations = {loc.id: loc for loc in msg.location}  # type: ignore[attr-defined]
    functions = {f.id: strings[f.name] for f in msg.function}  # type: ignore[attr-defined]
    mappings = {m.id for m in msg.mapping}  # type: ignore[attr-defined]
    leaves = {}
    for s in msg.sample:  # type: ignore[attr-defined]
        for loc_id in s.location_id:
            assert loc_id in locations
            assert locations[loc_id].mapping_id in mappings
        leaf = functions[locations[s.location_id[0]].line[0].function_id]  # leaf first in pprof
        leaves[leaf] = leaves.get(leaf, 0) + s.value[0]
        labels = {strings[lb.key] for lb in s.label}
        assert labels == {"pid", "tid", "comm"}
    assert leaves == {"work::Shapes::heavy()": 45, "work::Shapes::light()": 15, "ksys_write": 10}
    assert strings[msg.mapping[0].filename] == APP  # type: ignore[attr-defined]  # the main binary first


def test_go_tool_pprof_reads_it(tmp_path: Path) -> None:
    go = shutil.which("go")
    if go is None:
        pytest.skip("no Go toolchain (golang-go) to run `go tool pprof`")
    path = tmp_path / "p.pb.gz"
    profile().write(path)
    env = {**os.environ, "HOME": str(tmp_path), "GOCACHE": str(tmp_path / "cache"), "GOFLAGS": ""}
    out = subprocess.run([go, "tool", "pprof", "-top", "-sample_index=samples", str(path)], capture_output=True,
                         text=True, timeout=120, env=env, check=False)  # fmt: skip
    assert out.returncode == 0, out.stderr
    rows = [line.split() for line in out.stdout.splitlines() if "work::Shapes::" in line or "ksys_write" in line]
    flat = {row[-1]: int(row[0]) for row in rows}
    assert flat == {"work::Shapes::heavy": 45, "work::Shapes::light": 15, "ksys_write": 10}, out.stdout


def test_unknown_suffix_is_a_value_error_naming_it(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"p\.png.*\.folded"):
        profile().write(tmp_path / "p.png")
    assert not (tmp_path / "p.png").exists()


def test_svg_is_written_or_says_what_is_missing(tmp_path: Path) -> None:
    import importlib.util

    path = tmp_path / "p.svg"
    if importlib.util.find_spec("pyprobe.profile.flamegraph") is None:
        with pytest.raises(NotImplementedError, match="flamegraph"):
            profile().write(path)
    else:
        profile().write(path)
        assert "work::Shapes::heavy()" in path.read_text().replace("&amp;", "&")


def test_parse_maps_keeps_executable_mappings_sorted() -> None:
    text = (
        "7f0000002000-7f0000003000 r-xp 00002000 08:01 42   /usr/lib/libz.so.1\n"
        "55d000000000-55d000001000 r--p 00000000 08:01 7    /usr/bin/app\n"
        "55d000001000-55d000002000 r-xp 00001000 08:01 7    /usr/bin/app (deleted)\n"
        "7ffd00000000-7ffd00001000 r-xp 00000000 00:00 0    [vdso]\n"
        "garbage line\n"
        "zz-yy r-xp 0 0 0\n"
        "7f0000009000-7f000000a000 rwxp 00000000 00:00 0 \n"
    )
    maps = parse_maps(text)
    assert [(m.start, m.pgoff, m.path) for m in maps] == [
        (0x55D000001000, 0x1000, "/usr/bin/app (deleted)"),
        (0x7F0000002000, 0x2000, "/usr/lib/libz.so.1"),
        (0x7F0000009000, 0, ""),
        (0x7FFD00000000, 0, "[vdso]"),
    ]


def test_kallsyms_lookup_takes_text_symbols_and_modules(tmp_path: Path) -> None:
    path = tmp_path / "kallsyms"
    path.write_text(
        "ffffffff81000000 T _stext\n"
        "ffffffff81000100 t helper\n"
        "ffffffff81000200 D some_data\n"
        "ffffffffc0000000 t mod_fn\t[mymod]\n"
        "0000000000000000 T hidden\n"
        "not a line\n"
    )
    k = KernelSymbols(str(path))
    assert k.frame(0xFFFFFFFF81000150, leaf=True) == Frame("helper", "[kernel.kallsyms]", 0xFFFFFFFF81000150, 0x50,
                                                           "kernel")  # fmt: skip
    # a return address right after a call at the end of _stext's range is looked up one byte back
    assert k.frame(0xFFFFFFFF81000100, leaf=False).name == "_stext"
    assert k.frame(0xFFFFFFFFC0000010, leaf=True).module == "[mymod]"


def test_perf_map_names_jit_code_and_grows(tmp_path: Path) -> None:
    pid = 2**22 + os.getpid() % 1000  # a pid that no process has: only the perf map names its code
    path = Path(f"/tmp/perf-{pid}.map")
    try:
        path.write_text("1000 100 py::first:/a.py\n2000 10 py::second:/b.py\nnot hex at all\n")
        sym = Symbolizer()
        sym.new_generation()
        frames = sym.user_frames(pid, (0x1010, 0x2005))
        assert [(f.name, f.kind, f.module, f.offset) for f in frames] == [
            ("py::first:/a.py", "jit", f"[perf-{pid}.map]", 0x10), ("py::second:/b.py", "jit", f"[perf-{pid}.map]", 5),
        ]  # fmt: skip
        with path.open("a") as f:
            f.write("3000 10 py::third:/c.py\n")
        sym.new_generation()
        assert sym.user_frames(pid, (0x3001,))[0].name == "py::third:/c.py"
        assert sym.user_frames(pid, (0x5000,))[0] == Frame("[unknown]", None, 0x5000, 0, "user")
    finally:
        path.unlink(missing_ok=True)


def test_elf_symbols_of_a_running_process_demangled() -> None:
    proc = subprocess.Popen([str(target("proftarget_fp")), "3"], stdout=subprocess.PIPE)
    try:
        assert proc.stdout is not None
        proc.stdout.readline()
        from pyprobe.symbols import find

        heavy = find(str(target("proftarget_fp")), "*Shapes5heavy*")[0]
        maps = parse_maps(Path(f"/proc/{proc.pid}/maps").read_text())
        text = next(m for m in maps if m.path == str(target("proftarget_fp")))
        address = text.start + heavy.offset - text.pgoff + 7
        sym = Symbolizer()
        sym.new_generation()
        sym.watch(proc.pid)
        frame = sym.user_frames(proc.pid, (address,))[0]
        assert frame == Frame("work::Shapes::heavy(unsigned long)", str(target("proftarget_fp")), address, 7, "user")
    finally:
        proc.kill()
        proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()
