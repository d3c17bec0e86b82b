"""The examples gallery (examples/): each probe compiled with its skeleton, each loader run against the real kernel.

A session fixture compiles every ``examples/NAME/NAME.bpf.c`` into a temporary
directory and generates ``NAME_skel.py`` there; each test runs the loader as
a user would (``python examples/NAME/NAME.py ...`` with that directory on
PYTHONPATH) and checks the values it prints against what the traced program
did. ``mypy --strict`` checks every loader against the generated skeletons.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from conftest import BUILD, ROOT, start, stop, target

EXAMPLES = ROOT / "examples"
NAMES = sorted(p.name for p in EXAMPLES.iterdir() if (p / f"{p.name}.bpf.c").is_file())
TIMEOUT = 60


def _build(name: str, out: Path) -> None:
    """``pyprobe build NAME.bpf.c -o OUT/NAME.bpf.o --skeleton OUT/NAME_skel.py``, as the README says."""
    src = EXAMPLES / name / f"{name}.bpf.c"
    argv = [sys.executable, "-m", "pyprobe", "build", str(src), "-o", str(out / f"{name}.bpf.o")]
    argv += ["--skeleton", str(out / f"{name}_skel.py")]
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=TIMEOUT, check=False)
    assert proc.returncode == 0, f"pyprobe build {src} failed ({proc.returncode}):\n{proc.stdout}{proc.stderr}"


@pytest.fixture(scope="session")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The directory holding every example's object and generated skeleton module."""
    out = tmp_path_factory.mktemp("examples")
    for name in NAMES:
        _build(name, out)
    return out


def _env(built: Path) -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(built), "PYTHONUNBUFFERED": "1"}


def _loader(name: str) -> str:
    return str(EXAMPLES / name / f"{name}.py")


def run_example(built: Path, name: str, *args: str) -> str:
    """Runs example NAME's loader to its end; returns its output (fails the test on a non-zero exit)."""
    argv = [sys.executable, _loader(name), *args]
    proc = subprocess.run(argv, env=_env(built), capture_output=True, text=True, timeout=TIMEOUT, check=False)
    assert proc.returncode == 0, f"{name}.py exited {proc.returncode}:\n{proc.stdout}{proc.stderr}"
    return proc.stdout


class Running:
    """A loader started in the background, read up to its ``Tracing ...`` line (its probes are attached)."""

    def __init__(self, built: Path, name: str, *args: str) -> None:
        self.name = name
        self.proc = subprocess.Popen(
            [sys.executable, _loader(name), *args],
            env=_env(built), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        assert self.proc.stdout is not None
        self.head = ""
        for line in self.proc.stdout:
            self.head += line
            if line.startswith("Tracing"):
                return
        self.finish()
        pytest.fail(f"{name}.py ended before tracing:\n{self.head}")

    def finish(self) -> str:
        """Waits for the loader to exit by itself; returns all it printed."""
        out, err = self.proc.communicate(timeout=TIMEOUT)
        assert self.proc.returncode == 0, f"{self.name}.py exited {self.proc.returncode}:\n{self.head}{out}{err}"
        return self.head + out


@pytest.fixture
def running_utest() -> Iterator[subprocess.Popen[bytes]]:
    proc = start("utest", "-1", "10000")
    yield proc
    stop(proc)


@pytest.mark.bpf
def test_cpp_method_by_demangled_name(built: Path) -> None:
    account = BUILD / "examples" / "account"
    assert account.exists(), f"{account} is missing: build the project first (see README.md)"
    out = run_example(built, "cpp_method", str(account), "-c", f"{account} 5 0")
    pid = int(re.search(r"^account pid (\d+)", out, re.M).group(1))  # type: ignore[union-attr]
    calls = re.findall(r"^pid (\d+) tid \d+: this=(0x[0-9a-f]+) deposit\((-?\d+)\) = (-?\d+)", out, re.M)
    assert [(int(p), int(a), int(r)) for p, _, a, r in calls] == [
        (pid, 1, 101), (pid, 2, 103), (pid, 3, 106), (pid, 4, 110), (pid, 5, 115)
    ], out  # fmt: skip
    assert len({this for _, this, _, _ in calls}) == 1  # one object: `this` is the same each call


@pytest.mark.bpf
def test_loader_names_a_missing_method(built: Path) -> None:
    account = BUILD / "examples" / "account"
    argv = [sys.executable, _loader("cpp_method"), str(account), "--method", "Account::withdraw(long)"]
    proc = subprocess.run(argv, env=_env(built), capture_output=True, text=True, timeout=TIMEOUT, check=False)
    assert proc.returncode == 1
    assert proc.stderr.startswith("cpp_method: ") and "no function 'Account::withdraw(long)'" in proc.stderr
    assert "Traceback" not in proc.stderr, proc.stderr


@pytest.mark.bpf
def test_opensnoop_sees_this_process_open_a_file(built: Path, tmp_path: Path) -> None:
    path = tmp_path / "opened-by-the-test"
    path.write_text("x")
    snoop = Running(built, "opensnoop", "-p", str(os.getpid()), "--duration", "1.5")
    for _ in range(3):
        with open(path) as f:
            f.read()
    out = snoop.finish()
    mine = re.findall(rf"^ *{os.getpid()} +\d+ +\d+ +\S+ +(.*)$", out, re.M)
    assert mine.count(str(path)) == 3, out
    counts = dict(re.findall(r"^ *(\d+) (\d+)$", out.split("per process:")[1], re.M))
    assert counts == {str(os.getpid()): str(len(mine))}, out  # -p: only this process, each call counted


@pytest.mark.bpf
def test_funclatency_counts_every_call(built: Path) -> None:
    utest = target("utest")
    out = run_example(built, "funclatency", str(utest), "utest_add", "-c", f"{utest} 50 0")
    assert re.search(r"^calls: 50$", out, re.M), out
    rows = re.findall(r"^ *(\d+) -> (\d+) *: (\d+) ", out, re.M)
    assert rows and sum(int(n) for _, _, n in rows) == 50, out
    assert all(int(hi) == 2 * int(lo) - 1 for lo, hi, _ in rows), out


@pytest.mark.bpf
def test_tailcall_dispatches_by_slot(built: Path) -> None:
    out = run_example(built, "tailcall", "--repeat", "5")
    verdicts = re.findall(r"^(\w+) +packet -> (\w+)$", out, re.M)
    assert verdicts == [("ipv4", "XDP_PASS"), ("ipv6", "XDP_DROP"), ("arp", "XDP_PASS"), ("arp", "XDP_TX")], out
    counts = dict(re.findall(r"^  (\w+) +(\d+)$", out, re.M))
    assert counts == {"ipv4": "5", "ipv6": "5", "arp": "5", "unhandled": "5"}, out


@pytest.mark.bpf
def test_stack_args_reads_the_7th_and_8th(built: Path) -> None:
    args8 = target("args8")
    out = run_example(built, "stack_args", str(args8), "-c", f"{args8} 3 0")
    pid = re.search(r"^args8 pid (\d+)", out, re.M).group(1)  # type: ignore[union-attr]
    assert re.findall(r"^pid (\d+): args8\((.*)\)$", out, re.M) == [
        (pid, f"1, 2, 3, 4, 5, 6, {7 + i}, {8000 + i}") for i in range(3)
    ], out


@pytest.mark.bpf
def test_printk_lines_from_trace_pipe(built: Path, running_utest: subprocess.Popen[bytes]) -> None:
    pid = running_utest.pid
    argv = [sys.executable, _loader("printk"), str(target("utest")), "-p", str(pid), "--duration", "1"]
    for _ in range(10):  # trace_pipe is shared by the machine: wait while another process reads it
        proc = subprocess.run(argv, env=_env(built), capture_output=True, text=True, timeout=TIMEOUT, check=False)
        if "trace_pipe is open in another reader" not in proc.stderr:
            break
        time.sleep(1)
    assert proc.returncode == 0, f"printk.py exited {proc.returncode}:\n{proc.stdout}{proc.stderr}"
    out = proc.stdout
    # the kernel prints "<...>" for a comm missing from its saved_cmdlines cache
    lines = re.findall(rf"^\d+\.\d+ (?:utest|<\.\.\.>)-{pid} cpu \d+: a=(\d+) b=(-?\d+)$", out, re.M)
    assert lines, out
    assert all(b == "3" and 0 <= int(a) < 100 for a, b in lines), out
    other = [ln for ln in out.splitlines()[1:] if not re.match(rf"^\S+ (?:utest|<\.\.\.>)-{pid} ", ln)]
    assert not other, out  # -p: the uprobe fires for this process only


@pytest.mark.bpf
def test_usdt_arguments(built: Path) -> None:
    usdt_target = target("usdt_target")
    out = run_example(built, "usdt", str(usdt_target), "-c", f"{usdt_target} 3 0")
    assert re.search(r"^pyprobe_test:tick at 0x[0-9a-f]+, semaphore 0x[0-9a-f]+, arguments: \S+ \S+ \S+$", out, re.M)
    pid = re.search(r"^usdt_target pid (\d+)", out, re.M).group(1)  # type: ignore[union-attr]
    assert re.findall(r"^pid (\d+): tick\((.*)\)$", out, re.M) == [
        (pid, f"i={i}, small={i}, big={10**12 + i}") for i in range(3)
    ], out


@pytest.mark.bpf
def test_async_consumer_gets_each_exec(built: Path) -> None:
    snoop = Running(built, "async_execsnoop", "--ppid", str(os.getpid()), "--count", "3", "--duration", "30")
    children = []
    for _ in range(3):
        child = subprocess.Popen(["true"])
        child.wait()
        children.append(child.pid)
    out = snoop.finish()
    events = re.findall(r"^ *(\d+) +(\d+) +(\S+) +(\S+)$", out, re.M)
    assert [(int(p), int(pp), comm) for p, pp, comm, _ in events] == [(c, os.getpid(), "true") for c in children]
    assert all(filename.endswith("/true") for *_, filename in events), out
    assert re.search(r"^events: 3$", out, re.M), out


def test_loaders_pass_mypy_strict(built: Path, tmp_path: Path) -> None:
    loaders = [_loader(name) for name in NAMES]
    proc = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--no-incremental", "--cache-dir", str(tmp_path), *loaders],
        env={**os.environ, "MYPYPATH": str(built)}, cwd=ROOT, capture_output=True, text=True, timeout=300,
        check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_readme_lists_every_example() -> None:
    readme = (EXAMPLES / "README.md").read_text()
    for name in NAMES:
        assert f"{name}/" in readme and f"python {name}.py" in readme, f"examples/README.md does not list {name}"
