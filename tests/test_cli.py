"""The pyprobe command run as a subprocess against the bundled targets, its output checked."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import target
from pyprobe import features

pytestmark = pytest.mark.bpf

PYPROBE = [sys.executable, "-m", "pyprobe"]


def pyprobe(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*PYPROBE, *args], capture_output=True, text=True, timeout=timeout, check=False)


def events(stdout: str) -> list[dict[str, object]]:
    return [json.loads(line) for line in stdout.splitlines() if line.startswith("{")]


def child_pid(stdout: str) -> int:
    m = re.search(r"(?:strtarget|utest) pid (\d+)", stdout)
    assert m, stdout
    return int(m.group(1))


def test_demo_shows_arguments_and_right_return_values() -> None:
    out = pyprobe("demo", "--duration", "1.5")
    assert out.returncode == 0, out.stderr
    calls = re.findall(r"(utest_add|utest_sub)\(a=(-?\d+), b=(-?\d+)\) = (-?\d+)", out.stdout)
    assert len(calls) >= 4, out.stdout
    for name, a, b, ret in calls:
        expect = int(a) + int(b) if name == "utest_add" else int(a) - int(b)
        assert int(ret) == expect, (name, a, b, ret)
    assert {c[0] for c in calls} == {"utest_add", "utest_sub"}
    assert re.search(r"utest_add: (\d+) calls, \1 returned a \+ b", out.stdout), out.stdout


def test_default_command_is_the_demo() -> None:
    out = pyprobe("--duration", "0.5")
    assert out.returncode == 0, out.stderr
    assert "utest_add(a=" in out.stdout


def test_string_argument_prints_its_text() -> None:
    st = target("strtarget")
    out = pyprobe("trace", "-c", f"{st} 3 1000", "int st_greet(const char *name, int n)")
    assert out.returncode == 0, out.stderr
    lines = re.findall(r'st_greet\(name="(\w+)", n=(\d+)\) = (\d+)', out.stdout)
    assert lines == [("alice", "0", "5"), ("bob", "1", "4"), ("carol", "2", "7")], out.stdout


def test_eight_arguments_all_print() -> None:
    st = target("strtarget")
    sig = "long st_eight(long a, long b, long c, long d, long e, long f, long g, long h)"
    out = pyprobe("trace", "--json", "-c", f"{st} 2 1000", f"{st}:{sig}")
    assert out.returncode == 0, out.stderr
    evs = events(out.stdout)
    assert [e["args"] for e in evs] == [
        {"a": 1, "b": 2, "c": 3, "d": 4, "e": 5, "f": 6, "g": 7 + i, "h": 8} for i in range(2)
    ]
    assert [e["ret"] for e in evs] == [36, 37]


def test_json_lines_parse_with_every_field() -> None:
    st = target("strtarget")
    out = pyprobe("trace", "--json", "-c", f"{st} 2 1000", "st_greet", "r:st_eight")
    assert out.returncode == 0, out.stderr
    evs = events(out.stdout)
    greet = [e for e in evs if e["function"] == "st_greet"]
    eight = [e for e in evs if e["function"] == "st_eight"]
    assert len(greet) == 2 and len(eight) == 2
    for e in greet:
        assert set(e) >= {"time", "pid", "tid", "comm", "function", "args", "ret", "latency_ns"}
        assert list(e["args"]) == [f"arg{i}" for i in range(1, 7)]  # type: ignore[arg-type]
        assert e["comm"] == "strtarget"
    assert all("args" not in e and isinstance(e["ret"], int) for e in eight)


def test_nested_calls_pair_with_their_own_return() -> None:
    st = target("strtarget")
    out = pyprobe("trace", "--json", "-c", f"{st} 1 1000", "int st_depth(int n)")
    evs = events(out.stdout)
    assert [(e["args"]["n"], e["ret"]) for e in evs] == [(0, 0), (1, 1), (2, 2), (3, 3)]  # type: ignore[index]
    lat = [e["latency_ns"] for e in evs]
    assert lat == sorted(lat)  # the outer call lasts longest


def test_dash_c_traces_only_the_child() -> None:
    st = target("strtarget")
    other = subprocess.Popen([str(st), "-1", "1000"], stdout=subprocess.DEVNULL)
    try:
        out = pyprobe("trace", "--json", "-c", f"{st} 20 1000", f"{st}:st_greet")
    finally:
        other.terminate()
        other.wait()
    assert out.returncode == 0, out.stderr
    pid = child_pid(out.stdout)
    evs = events(out.stdout)
    assert len(evs) == 20
    assert {e["pid"] for e in evs} == {pid}


def test_dash_p_traces_one_running_process() -> None:
    st = target("strtarget")
    proc = subprocess.Popen([str(st), "-1", "5000"], stdout=subprocess.DEVNULL)
    try:
        out = pyprobe("trace", "--json", "-p", str(proc.pid), "--duration", "1", f"{st}:st_greet")
    finally:
        proc.terminate()
        proc.wait()
    assert out.returncode == 0, out.stderr
    evs = events(out.stdout)
    assert evs and {e["pid"] for e in evs} == {proc.pid}
    assert re.search(r"\d+ events, 0 lost", out.stderr)


def test_histogram_counts_equal_the_calls() -> None:
    st = target("strtarget")
    out = pyprobe("funclatency", "-c", f"{st} 37 100", f"{st}:st_eight", f"{st}:st_depth")
    assert out.returncode == 0, out.stderr
    counts = [int(n) for n in re.findall(r"^count (\d+), avg", out.stdout, re.M)]
    assert counts == [37, 37 * 4], out.stdout
    bars = re.findall(r"^\s+\d+ -> \d+\s+: (\d+)", out.stdout, re.M)
    assert sum(int(b) for b in bars) == 37 * 5


def test_list_symbols_shows_demangled_names() -> None:
    out = pyprobe("list", "symbols", str(target("utest")), "utest_*")
    assert out.returncode == 0, out.stderr
    assert "utest_add(int, int)  [_Z9utest_addii]" in out.stdout
    assert "utest_sub(int, int)" in out.stdout


def test_list_progs_and_maps_see_a_loaded_object() -> None:
    import pyprobe as lib
    from pyprobe._data import probe_path

    with lib.load(probe_path("funclatency")):
        progs = [json.loads(x) for x in pyprobe("list", "progs", "--json").stdout.splitlines()]
        maps = [json.loads(x) for x in pyprobe("list", "maps", "--json").stdout.splitlines()]
    assert any(p["name"].startswith("funclatency_ent") for p in progs)
    assert any(m["name"] == "hists" and m["value_size"] == 528 and m["type"] == "array" for m in maps)


def test_run_streams_printk_from_an_object(tmp_path: Path) -> None:
    out = pyprobe("run", str(target("utest").parent.parent / "bpf" / "minimal.bpf.o"), "--duration", "0.5")
    assert out.returncode == 0, out.stderr
    assert re.search(r"\d+ events, \d+ printk lines", out.stderr)


def test_missing_function_exits_2_with_a_hint() -> None:
    out = pyprobe("trace", f"{target('strtarget')}:no_such_function")
    assert out.returncode == 2
    assert "no function 'no_such_function'" in out.stderr and "pyprobe list symbols" in out.stderr


def test_ctrl_c_detaches_and_prints_a_summary() -> None:
    ut = target("utest")
    proc = subprocess.Popen(
        [*PYPROBE, "trace", "-c", f"{ut} -1 2000", "utest_add"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    assert proc.stdout is not None and proc.stderr is not None
    for line in proc.stdout:
        if "utest_add(" in line:
            break
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert re.search(r"\d+ events, 0 lost \((interrupted|command exited[^)]*)\)", err), err


def test_usdt_probes_print_their_arguments() -> None:
    ut = target("usdt_target")
    gated = f"u:{ut}:pyprobe_test:gated(long i, int neg)"
    out = pyprobe("trace", "--json", "-c", f"{ut} 3 1000", f"u:{ut}:pyprobe_test:tick", gated)
    assert out.returncode == 0, out.stderr
    evs = events(out.stdout)
    ticks = [e["args"] for e in evs if e["function"] == "pyprobe_test:tick"]
    hits = [e["args"] for e in evs if e["function"] == "pyprobe_test:gated"]
    assert ticks == [{"arg1": i, "arg2": i, "arg3": 10**12 + i} for i in range(3)]
    assert hits == [{"i": i, "neg": -i} for i in range(3)]  # libbpf raised the probe's semaphore
    assert all("ret" not in e and e["comm"] == "usdt_target" for e in evs)


def test_unknown_usdt_probe_exits_2_and_names_the_listing() -> None:
    ut = target("usdt_target")
    out = pyprobe("trace", f"u:{ut}:pyprobe_test:nope")
    assert out.returncode == 2
    assert "pyprobe_test:tick" in out.stderr and f"pyprobe list usdt {ut}" in out.stderr


def test_glob_over_many_functions_attaches_one_uprobe_multi_link_per_direction() -> None:
    """One uprobe_multi link per direction where the kernel has them (6.6), a link per probe before (the matrix)."""
    st = target("strtarget")
    out = pyprobe("trace", "--json", "-c", f"{st} 2 1000", "*")
    assert out.returncode == 0, out.stderr
    m = re.search(r"Tracing (\d+) function\(s\) with (\d+) probe\(s\)", out.stderr)
    assert m and int(m[1]) > 4, out.stderr
    if features.available("uprobe_multi"):
        assert int(m[2]) == 2, out.stderr
    else:
        assert int(m[1]) < int(m[2]) <= 2 * int(m[1]), out.stderr
    evs = events(out.stdout)
    assert [e["ret"] for e in evs if e["function"] == "st_eight"] == [36, 37]
    assert [e["ret"] for e in evs if e["function"] == "st_greet"] == [5, 4]
    assert sorted(e["ret"] for e in evs if e["function"] == "st_depth") == [0, 0, 1, 1, 2, 2, 3, 3]
    assert "_start" not in {e["function"] for e in evs}  # a return probe there would overwrite argc


def test_funclatency_glob_over_many_functions_counts_every_call() -> None:
    st = target("strtarget")
    out = pyprobe("funclatency", "-c", f"{st} 5 100", f"{st}:*")
    assert out.returncode == 0, out.stderr
    counts = dict(re.findall(r"^total (\w+) \(.*?\):\n(?:.*\n)*?count (\d+),", out.stdout, re.M))
    assert (counts.get("st_eight"), counts.get("st_depth"), counts.get("main")) == ("5", "20", "1"), out.stdout


def _printed_names(binary: Path, prefix: str) -> list[str]:
    out = pyprobe("list", "symbols", str(binary))
    assert out.returncode == 0, out.stderr
    return [
        m.group(1)
        for m in re.finditer(r"^0x[0-9a-f]+\s+\d+ (.+?)  \[", out.stdout, re.M)
        if m.group(1).startswith(prefix)
    ]


def test_each_overload_is_traced_by_the_name_list_symbols_prints(tmp_path: Path) -> None:
    args8 = target("args8")
    names = _printed_names(args8, "ns::compute(")
    assert len(names) == 3, names
    with_binary = pyprobe("trace", "--json", "-c", f"{args8} 2 1000", *(f"{args8}:{n}" for n in names))
    assert with_binary.returncode == 0, with_binary.stderr
    # a FUNC alone with -c, the command's path holding a ':'
    odd = tmp_path / "a:b"
    odd.mkdir()
    (odd / "args8").write_bytes(args8.read_bytes())
    (odd / "args8").chmod(0o755)
    alone = pyprobe("trace", "--json", "-c", f"'{odd}/args8' 2 1000", *names)
    assert alone.returncode == 0, alone.stderr
    for out in (with_binary, alone):
        evs = events(out.stdout)
        assert sorted({str(e["function"]) for e in evs}) == sorted(names)  # overloads shown with their parameters
        assert [e["args"] for e in evs if e["function"] == "ns::compute(int, int)"] == [
            {"arg1": 0, "arg2": 3}, {"arg1": 1, "arg2": 3},
        ]  # fmt: skip
        assert [e["args"] for e in evs if e["function"] == "ns::compute(char const*, int)"] == [
            {"arg1": "x", "arg2": 1}
        ] * 2
        for n in names:
            assert f"{n}: 2" in out.stderr, out.stderr  # the summary tells the overloads apart


def test_one_overload_alone_keeps_its_short_name_and_a_near_name_is_suggested() -> None:
    args8 = target("args8")
    out = pyprobe("trace", "-c", f"{args8} 1 1000", "ns::compute(int,int)")
    assert out.returncode == 0, out.stderr
    assert "ns::compute(arg1=0, arg2=3) = 0" in out.stdout and "ns::compute: 1" in out.stderr
    typo = pyprobe("trace", "-c", f"{args8} 1 1000", "ns::compte")
    assert typo.returncode == 2
    assert "did you mean 'ns::compute'?" in typo.stderr, typo.stderr
    wrong = pyprobe("trace", f"{args8}:ns::compute(float)")
    assert wrong.returncode == 2
    assert "floating-point" in wrong.stderr and "'ns::compute(long)'" in wrong.stderr, wrong.stderr


def test_string_on_a_page_not_touched_yet_is_read_on_the_first_call() -> None:
    if not features.available("sleepable_uprobe"):
        assert features.probe("sleepable_uprobe").explained
        pytest.skip(str(features.probe("sleepable_uprobe")))
    cold = target("coldstr")
    probes = ("cold_greet(const char *name, int times)", "cold_peek(const char *where)")
    out = pyprobe("trace", "-c", f"{cold} 2", *probes)
    assert out.returncode == 0, out.stderr
    assert re.findall(r'cold_greet\(name="(.*?)", times=(\d)\)', out.stdout) == [
        ("cold-hello", "0"),
        ("cold-hello", "1"),
    ]
    # an address that cannot be read is shown as such, not as an empty string
    assert re.findall(r"cold_peek\(where=(.*?)\)", out.stdout) == ["<unreadable 0x10>"] * 2, out.stdout
    js = pyprobe("trace", "--json", "-c", f"{cold} 1", *probes)
    assert [e["args"] for e in events(js.stdout)] == [
        {"name": "cold-hello", "times": 0}, {"where": "<unreadable 0x10>"},
    ]  # fmt: skip


def test_a_script_target_is_named_as_a_script_with_its_interpreter(tmp_path: Path) -> None:
    shim = tmp_path / "python3"  # what a pyenv shim is: a shell script named like the program
    shim.write_text('#!/usr/bin/env bash\nexec /usr/bin/python3 "$@"\n')
    shim.chmod(0o755)
    env = {**os.environ, "PATH": f"{tmp_path}:{os.environ['PATH']}"}
    for args in (["trace", "u:python3:python:function__entry"], ["trace", "-c", "python3 -c pass", "main"]):
        out = subprocess.run([*PYPROBE, *args], capture_output=True, text=True, timeout=60, env=env, check=False)
        assert out.returncode == 2, out.stderr
        assert f"{shim} is not an ELF file: it is a script run by '/usr/bin/env bash'" in out.stderr, out.stderr
        assert "pyenv which" in out.stderr
