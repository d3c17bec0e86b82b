"""pyprobe.profile against the real kernel: the bundled truth target's 3:1 split, kernel syscall paths, JIT
frames from a perf map, processes that exit, the writers on a real profile and the ``pyprobe profile`` command."""

from __future__ import annotations

import collections
import gzip
import json
import mmap
import os
import platform
import re
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from conftest import target
from pyprobe.profile import Frame, Profile, Profiler, Sample

pytestmark = pytest.mark.bpf

PYPROBE = [sys.executable, "-m", "pyprobe"]
HEAVY, LIGHT, RUN = "work::Shapes::heavy", "work::Shapes::light", "work::run"


def bare(frame: Frame) -> str:
    return frame.name.split("(", 1)[0]


def profile_target(name: str, call_graph: str = "fp", samples: int = 1000, limit: float = 60.0) -> tuple[Profile, int]:
    """Profiles the target in 2 s rounds, merged, until ``samples`` samples of it came (a loaded machine
    gives the target less CPU: a fixed duration would give too few to judge a split)."""
    proc = subprocess.Popen([str(target(name)), str(limit + 5)], stdout=subprocess.PIPE)
    try:
        assert proc.stdout is not None
        proc.stdout.readline()
        rounds: list[Profile] = []
        deadline = time.monotonic() + limit
        while not rounds or sum(p.filter(pid=proc.pid).total for p in rounds) < samples:
            assert time.monotonic() < deadline, f"fewer than {samples} samples of {name} in {limit} s"
            rounds.append(Profiler(pids=[proc.pid], frequency=999, duration=2.0, call_graph=call_graph,  # type: ignore[arg-type]
                                   interval=0.5).run())  # fmt: skip
    finally:
        proc.kill()
        proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()
    return rounds[0].merge(*rounds[1:]), proc.pid


@pytest.mark.parametrize(
    ("binary", "call_graph"),
    [
        ("proftarget_fp", "fp"),
        ("proftarget_nofp", "dwarf"),
    ],
)  # fmt: skip
def test_truth_target_split_3_to_1_with_demangled_names_under_the_common_caller(binary: str, call_graph: str) -> None:
    from pyprobe.symbols import find

    sizes = {s.demangled.split("(", 1)[0]: s.size for s in find(str(target(binary)), "*Shapes*")}
    prof, pid = profile_target(binary, call_graph)
    samples = prof.filter(pid=pid).samples
    assert samples and all(s.comm == binary[:15] for s in samples)
    leaf_counts: collections.Counter[str] = collections.Counter()
    for s in samples:
        user = [f for f in s.frames if f.kind == "user"]
        names = [bare(f) for f in user]
        hot = [n for n in names if n in (HEAVY, LIGHT)]
        if not hot:
            continue
        leaf_counts[hot[-1]] += s.count
        i = names.index(hot[-1])
        assert user[i].module == str(target(binary))
        # A frame-pointer walk from the first two instructions (push %rbp; mov %rsp,%rbp) or the last
        # one (ret) of a method skips its caller: there %rbp is still, or again, the caller's.
        edge = call_graph == "fp" and (user[i].offset < 4 or user[i].offset == sizes[names[i]] - 1)
        # elsewhere the common caller is right above, and main above it: every stack is whole
        assert edge or (names[i - 1] == RUN and "main" in names[: i - 1]), (names, user[i].offset)
    total = leaf_counts[HEAVY] + leaf_counts[LIGHT]
    assert total >= 0.9 * prof.filter(pid=pid).total, (leaf_counts, prof.filter(pid=pid).total)
    assert total >= 500, f"too few samples to judge the split: {leaf_counts}"
    share = leaf_counts[HEAVY] / total
    assert abs(share - 0.75) < 0.04, f"heavy:light = {leaf_counts[HEAVY]}:{leaf_counts[LIGHT]} ({share:.1%})"
    names = {f.name for s in samples for f in s.frames}
    assert "work::Shapes::heavy(unsigned long)" in names and "work::run(work::Shapes&, unsigned long)" in names


def test_kernel_stacks_of_a_write_loop_show_the_syscall_path() -> None:
    dd = shutil.which("dd") or "/bin/dd"
    prof = Profiler(command=[dd, "if=/dev/zero", "of=/dev/null", "bs=1", "count=400000000"], frequency=499,
                    duration=2.0, interval=0.5).run()  # fmt: skip
    assert prof.total > 50
    syscall = 0
    for s in prof.samples:
        kinds = [f.kind for f in s.frames]
        assert kinds == sorted(kinds, key=lambda k: k == "kernel"), kinds  # user frames, then kernel frames
        kernel = [f.name for f in s.frames if f.kind == "kernel"]
        if {"ksys_write", "__x64_sys_write", "ksys_read", "__x64_sys_read"} & set(kernel):
            syscall += s.count
            assert kernel[0].startswith(("entry_SYSCALL", "do_syscall")) or "do_syscall_64" in kernel, kernel
    assert syscall > 0.2 * prof.total, prof.top(10)
    assert any(f.name in {"ksys_write", "__x64_sys_write"} for s in prof.samples for f in s.frames)


def test_kernel_only_and_user_only_take_one_part() -> None:
    dd = shutil.which("dd") or "/bin/dd"
    argv = [dd, "if=/dev/zero", "of=/dev/null", "bs=1", "count=400000000"]
    kern = Profiler(command=argv, frequency=299, duration=1.0, user=False).run()
    assert kern.total > 0 and all(f.kind == "kernel" for s in kern.samples for f in s.frames)
    usr = Profiler(command=argv, frequency=299, duration=1.0, kernel=False).run()
    assert usr.total > 0 and all(f.kind == "user" for s in usr.samples for f in s.frames)


JIT_SCRIPT = textwrap.dedent("""
    import ctypes, mmap, os, sys, time
    # push rbp; mov rbp,rsp; mov rcx,rdi; 1: dec rcx; jnz 1b; pop rbp; ret
    code = bytes.fromhex("554889e54889f948ffc975fb5dc3")
    buf = mmap.mmap(-1, mmap.PAGESIZE, prot=mmap.PROT_READ | mmap.PROT_WRITE | mmap.PROT_EXEC)
    buf.write(code)
    address = ctypes.addressof(ctypes.c_char.from_buffer(buf))
    with open(f"/tmp/perf-{os.getpid()}.map", "w") as f:
        f.write(f"{address:x} {len(code):x} jit_spin\\n")
    spin = ctypes.CFUNCTYPE(None, ctypes.c_long)(address)
    print("ready", flush=True)
    end = time.time() + float(sys.argv[1])
    while time.time() < end:
        spin(20_000_000)
""")


@pytest.mark.skipif(platform.machine() != "x86_64", reason="the JIT'd loop is x86-64 code")
def test_jit_code_is_named_from_the_perf_map(tmp_path: Path) -> None:
    if not hasattr(mmap, "PROT_EXEC"):
        pytest.skip("mmap.PROT_EXEC is missing")
    script = tmp_path / "jit.py"
    script.write_text(JIT_SCRIPT)
    proc = subprocess.Popen([sys.executable, str(script), "10"], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "ready"
        prof = Profiler(pids=[proc.pid], frequency=499, duration=2.0, interval=0.5).run()
    finally:
        proc.kill()
        proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()
        Path(f"/tmp/perf-{proc.pid}.map").unlink(missing_ok=True)
    jit = sum(s.count for s in prof.samples if s.frames and s.frames[-1].kind != "kernel"
              and [f for f in s.frames if f.kind != "kernel"][-1].name == "jit_spin")  # fmt: skip
    assert jit > 0.5 * prof.total, prof.top(5)
    frame = next(f for s in prof.samples for f in s.frames if f.name == "jit_spin")
    assert frame.kind == "jit" and frame.module == f"[perf-{proc.pid}.map]"
    assert "jit_spin_[j]" in {name for stack in prof.folded() for name in stack}


def test_a_command_that_exits_before_the_first_drain_keeps_its_frames() -> None:
    # the first drain would come after 5 s: the command is symbolized after it has exited
    prof = Profiler(command=[str(target("proftarget_fp")), "1.5"], frequency=499, interval=5.0).run()
    assert 1.4 <= prof.duration < 5
    assert prof.total > 0
    named = sum(s.count for s in prof.samples if any(bare(f) in (HEAVY, LIGHT) for f in s.frames))
    assert named > 0.8 * prof.total, prof.top(5)


def test_context_manager_and_every_process() -> None:
    proc = subprocess.Popen([str(target("proftarget_fp")), "3"], stdout=subprocess.DEVNULL)
    try:
        with Profiler(frequency=199, interval=0.2) as profiler:
            time.sleep(1.0)
        prof = profiler.profile
    finally:
        proc.kill()
        proc.wait()
    assert prof is not None and prof.duration >= 1.0
    assert proc.pid in {s.pid for s in prof.samples}
    assert len({s.pid for s in prof.samples}) >= 1
    assert prof.filter(pid=proc.pid).total > 0
    assert os.getpid() not in {s.pid for s in prof.samples} or True  # this process may be sampled too


def test_bad_inputs_raise_typed_errors_naming_the_input() -> None:
    with pytest.raises(ProcessLookupError, match="999999999"):
        Profiler(pids=[999999999])
    for bad in (0, -5, 10**9, "99", 1.5, True):
        with pytest.raises(ValueError, match="frequency"):
            Profiler(frequency=bad)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="call_graph"):
        Profiler(call_graph="lbr")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="pids or a command"):
        Profiler(pids=[os.getpid()], command=["true"])
    with pytest.raises(ValueError, match="interval"):
        Profiler(interval=0)
    with pytest.raises(ValueError, match="user or kernel"):
        Profiler(user=False, kernel=False)
    with pytest.raises(FileNotFoundError, match="no-such-program"):
        Profiler(command=["/no-such-program"]).start()
    with pytest.raises(RuntimeError, match="not started"):
        Profiler().stop()


@pytest.fixture(scope="module")
def real_profile() -> Profile:
    prof = Profiler(command=[str(target("proftarget_fp")), "1.5"], frequency=499, interval=0.5).run()
    assert prof.total > 0
    return prof


def test_real_profile_writers(real_profile: Profile, tmp_path: Path) -> None:
    from test_profile_model import check_speedscope

    folded = tmp_path / "p.folded"
    real_profile.write(folded)
    back = {}
    for line in folded.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        back[tuple(stack.split(";"))] = int(count)
    assert back == real_profile.folded()
    # before exec the held child runs as this interpreter: a few samples
    assert sum(n for stack, n in back.items() if stack[0] == "proftarget_fp") > 0.9 * real_profile.total

    speedscope = tmp_path / "p.json"
    real_profile.write(speedscope)
    check_speedscope(json.loads(speedscope.read_text()), real_profile.total)

    pprof = tmp_path / "p.pb.gz"
    real_profile.write(pprof)
    from pyprobe.profile._proto import profile_pb2

    msg = profile_pb2.Profile()
    msg.ParseFromString(gzip.decompress(pprof.read_bytes()))
    assert sum(s.value[0] for s in msg.sample) == real_profile.total
    assert any("work::Shapes::heavy" in name for name in msg.string_table)
    go = shutil.which("go")
    if go is not None:
        env = {**os.environ, "HOME": str(tmp_path), "GOCACHE": str(tmp_path / "cache")}
        out = subprocess.run([go, "tool", "pprof", "-top", str(pprof)], capture_output=True, text=True, timeout=120,
                             env=env, check=False)  # fmt: skip
        assert out.returncode == 0, out.stderr
        assert "work::Shapes::heavy" in out.stdout


def pyprobe(*args: str, timeout: float = 90) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*PYPROBE, *args], capture_output=True, text=True, timeout=timeout, check=False)


def test_cli_writes_the_file_its_suffix_names(tmp_path: Path) -> None:
    out = tmp_path / "cli.folded"
    r = pyprobe("profile", "-c", f"{target('proftarget_fp')} 1.5", "-F", "499", "-o", str(out))
    assert r.returncode == 0, r.stderr
    assert re.search(r"\d+ samples in [\d.]+ s \(command exited with status 0\); wrote .*cli\.folded", r.stderr)
    text = out.read_text()
    assert "work::run(work::Shapes&, unsigned long);work::Shapes::heavy(unsigned long) " in text


def test_cli_prints_the_top_table_without_output() -> None:
    pid_target = subprocess.Popen([str(target("proftarget_fp")), "120"], stdout=subprocess.DEVNULL)
    try:
        r = pyprobe("profile", "-p", str(pid_target.pid), "-F", "499", "--duration", "1.5", "--top", "5",
                    "--user-only")  # fmt: skip
    finally:
        pid_target.kill()
        pid_target.wait()
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0].split()[:4] == ["SELF", "SELF%", "TOTAL", "TOTAL%"]
    assert "work::Shapes::heavy(unsigned long) (proftarget_fp)" in lines[1]
    assert len(lines) <= 6
    assert "duration reached" in r.stderr


def test_cli_sigterm_ends_sampling_with_the_output_written(tmp_path: Path) -> None:
    out = tmp_path / "all.json"
    proc = subprocess.Popen([*PYPROBE, "profile", "--all", "-F", "99", "-o", str(out)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)  # fmt: skip
    assert proc.stderr is not None
    assert "Sampling every process" in proc.stderr.readline()
    time.sleep(1.0)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert "ended by SIGTERM" in err and out.exists()
    assert json.loads(out.read_text())["profiles"]


def test_cli_bad_inputs_exit_2_with_the_reason(tmp_path: Path) -> None:
    r = pyprobe("profile", "-p", "999999999", "--duration", "1")
    assert r.returncode == 2 and "no process with pid 999999999" in r.stderr
    r = pyprobe("profile", "-F", "0", "--duration", "1")
    assert r.returncode == 2 and "frequency" in r.stderr
    r = pyprobe("profile", "-o", str(tmp_path / "x.png"), "--duration", "1")
    assert r.returncode == 2 and "x.png" in r.stderr and ".folded" in r.stderr
    r = pyprobe("profile", "-o", str(tmp_path / "no" / "x.folded"), "--duration", "1")
    assert r.returncode == 2 and "no such directory" in r.stderr
    r = pyprobe("profile", "-p", "abc")
    assert r.returncode == 2 and "not a pid" in r.stderr
    r = pyprobe("profile", "-c", "/no-such-program-here")
    assert r.returncode == 2 and "no-such-program-here" in r.stderr


def test_sample_frames_are_root_first() -> None:
    s = Sample(1, 1, "x", (Frame("main", "/x", 1, 0, "user"), Frame("leaf", "/x", 2, 0, "user")), 1)
    assert Profile([s]).folded() == {("x", "main", "leaf"): 1}


def cpython_with_perf_maps() -> str | None:
    """A CPython 3.12+ (``-X perf`` writes /tmp/perf-PID.map), from pyenv or PATH."""
    root = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv")) / "versions"
    for version in ("3.13", "3.12"):
        found = sorted(root.glob(f"{version}.*/bin/python{version}"), reverse=True)
        if found:
            return str(found[0])
        on_path = shutil.which(f"python{version}")
        if on_path:
            return on_path
    return None


PY_HOT = textwrap.dedent("""
    import sys, time
    def hot_python_function(n):
        s = 0
        for i in range(n):
            s += i * i
        return s
    print("ready", flush=True)
    end = time.time() + float(sys.argv[1])
    while time.time() < end:
        hot_python_function(100000)
""")


def test_cpython_perf_map_names_python_functions(tmp_path: Path) -> None:
    python = cpython_with_perf_maps()
    if python is None:
        pytest.skip("no CPython 3.12 or later (pyenv or PATH) to run with -X perf")
    from pyprobe.profile._symbolize import Symbolizer

    script = tmp_path / "hot.py"
    script.write_text(PY_HOT)
    proc = subprocess.Popen([python, "-X", "perf", str(script), "10"], stdout=subprocess.PIPE, text=True)
    perf_map = Path(f"/tmp/perf-{proc.pid}.map")
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "ready"
        time.sleep(0.2)
        entry = next(line.split(None, 2) for line in perf_map.read_text().splitlines()
                     if line.endswith(f"hot_python_function:{script}"))  # fmt: skip
        address = int(entry[0], 16) + 1
        sym = Symbolizer()
        sym.new_generation()
        frame = sym.user_frames(proc.pid, (address,))[0]
        assert frame == Frame(f"py::hot_python_function:{script}", f"[perf-{proc.pid}.map]", address, 1, "jit")
        # sampled: the interpreter itself is named from its ELF symbols
        prof = Profiler(pids=[proc.pid], frequency=499, duration=1.0, interval=0.5).run()
        names = {f.name for s in prof.samples for f in s.frames}
        assert any(n.startswith("_PyEval_EvalFrameDefault") for n in names), prof.top(5)
    finally:
        proc.kill()
        proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()
        perf_map.unlink(missing_ok=True)
