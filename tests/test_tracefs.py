"""trace_pipe: line parsing, partial lines, the tracefs mount point, and bpf_printk from the real kernel."""

from __future__ import annotations

import errno
import os
import struct
import threading
import time
from pathlib import Path

import pytest

import pyprobe
from conftest import test_object
from pyprobe.tracefs import follow_lines, parse_line, tracefs_root


def test_parse_a_bpf_printk_line() -> None:
    line = "          python-16540   [001] ...11   750.320528: bpf_trace_printk: pyprobe-trace-test 7"
    assert parse_line(line) == pyprobe.TraceLine("python", 16540, 1, 750.320528, "pyprobe-trace-test 7")


def test_parse_task_names_with_dashes_and_spaces_tgid_and_no_flags() -> None:
    assert parse_line("  kworker/u8:2-my-task-77  ( 70) [000] d..3. 12.5: bpf_trace_printk: a: b") == (
        pyprobe.TraceLine("kworker/u8:2-my-task", 77, 0, 12.5, "a: b")
    )
    assert parse_line("Web Content-1234 [003] 99.000001: bpf_trace_printk: hi") == (
        pyprobe.TraceLine("Web Content", 1234, 3, 99.000001, "hi")
    )
    assert parse_line("<...>-5 [002] .... 1.0: bpf_trace_printk: ") == pyprobe.TraceLine("<...>", 5, 2, 1.0, "")


def test_other_events_keep_their_name_and_unparsable_lines_pass_through() -> None:
    assert parse_line("bash-9 [000] ..... 3.25: sched_switch: prev=bash").message == "sched_switch: prev=bash"
    odd = parse_line("CPU:1 [LOST 12 EVENTS]")
    assert odd == pyprobe.TraceLine("", 0, -1, 0.0, "CPU:1 [LOST 12 EVENTS]")


def test_follow_lines_joins_partial_lines_and_ends_after_the_timeout() -> None:
    r, w = os.pipe()
    os.set_blocking(r, False)

    def writer() -> None:
        for part in (b"first li", b"ne\nsecond", b" line\nthi", b"rd\n"):
            os.write(w, part)
            time.sleep(0.02)

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        lines = list(follow_lines(r, timeout=0.3))
    finally:
        thread.join()
        os.close(w)
        os.close(r)
    assert lines == ["first line", "second line", "third"]


def test_follow_lines_gives_a_last_partial_line_when_the_writer_is_gone() -> None:
    r, w = os.pipe()
    os.write(w, b"a\nb")
    os.close(w)
    try:
        assert list(follow_lines(r, timeout=1.0)) == ["a", "b"]
    finally:
        os.close(r)


def test_tracefs_root_prefers_tracing_then_debugfs(tmp_path: Path) -> None:
    tracing, debug = tmp_path / "tracing", tmp_path / "debug" / "tracing"
    debug.mkdir(parents=True)
    (debug / "trace_pipe").touch()
    tracing.mkdir()
    assert tracefs_root([str(tracing), str(debug)]) == str(debug)
    (tracing / "trace_pipe").touch()
    assert tracefs_root([str(tracing), str(debug)]) == str(tracing)


def test_tracefs_root_falls_back_to_proc_mounts_or_says_how_to_mount(tmp_path: Path) -> None:
    with open("/proc/mounts") as f:
        mounted = [line.split()[1] for line in f if line.split()[2] == "tracefs"]
    if mounted:
        assert tracefs_root([str(tmp_path / "none")]) in mounted
    else:
        with pytest.raises(pyprobe.BpfError, match="mount -t tracefs"):
            tracefs_root([str(tmp_path / "none")])


@pytest.mark.bpf
def test_a_busy_trace_pipe_gets_a_clear_error() -> None:
    fd = os.open(os.path.join(tracefs_root(), "trace_pipe"), os.O_RDONLY | os.O_NONBLOCK)
    try:
        try:
            lines = list(pyprobe.trace_pipe(timeout=0.05))
        except pyprobe.BpfError as exc:
            assert exc.errno == errno.EBUSY
            assert "another reader" in str(exc)
        else:  # a kernel that lets several readers in
            assert all(isinstance(line, pyprobe.TraceLine) for line in lines)
    finally:
        os.close(fd)


def test_trace_pipe_rejects_a_bad_timeout() -> None:
    with pytest.raises(ValueError, match="timeout"):
        next(pyprobe.trace_pipe(timeout=-1))


def _find_printk(obj: pyprobe.BpfObject, tag: int) -> pyprobe.TraceLine | None:
    want = f"pyprobe-trace-test {tag}"
    for _ in range(10):  # another reader of trace_pipe on this machine may hold it or take a line
        try:
            lines = pyprobe.trace_pipe(timeout=2.0)
            obj.programs["printk"].test_run(ctx=struct.pack("<Q", tag))
            try:
                found = next((line for line in lines if line.message == want), None)
            finally:
                lines.close()
        except pyprobe.BpfError as exc:
            if exc.errno != errno.EBUSY:
                raise
            time.sleep(0.3)
            continue
        if found is not None:
            return found
    return None


@pytest.mark.bpf
def test_trace_pipe_yields_bpf_printk_lines() -> None:
    tag = int.from_bytes(os.urandom(4), "little")
    with pyprobe.load(test_object("events")) as obj:
        found = _find_printk(obj, tag)
    assert found is not None, f"printk tag {tag} never appeared in trace_pipe"
    assert found.pid == os.getpid()
    # tracefs shows "<...>" for a pid missing from its saved_cmdlines cache
    assert found.task in (Path("/proc/self/comm").read_text().strip()[:15], "<...>")
    assert found.cpu >= 0
    assert found.timestamp > 0


@pytest.mark.bpf
def test_run_keeps_trace_pipe_open_instead_of_reopening_it(tmp_path: Path) -> None:
    """`pyprobe run` on an object that traces openat must see its own trace_pipe open once, not every 0.2 s."""
    import json
    import subprocess
    import sys

    src = Path(__file__).parent.parent / "examples" / "opensnoop" / "opensnoop.bpf.c"
    obj = tmp_path / "opensnoop.bpf.o"
    pyprobe_cmd = [sys.executable, "-m", "pyprobe"]
    subprocess.run([*pyprobe_cmd, "build", str(src), "-o", str(obj)], check=True, capture_output=True, timeout=120)
    with subprocess.Popen(
        [*pyprobe_cmd, "run", str(obj), "--json", "--duration", "1.5"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True,
    ) as proc:  # fmt: skip
        out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    if "trace_pipe is open in another reader" in err:
        pytest.skip("trace_pipe is busy (another reader holds it)")
    opens = [json.loads(line)["event"] for line in out.splitlines() if line.startswith('{"map"')]
    mine = [e for e in opens if e["path"].endswith("/trace_pipe") and e["pid"] == proc.pid]
    assert len(mine) == 1, mine
