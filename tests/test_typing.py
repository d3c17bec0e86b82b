"""Typed maps for type checkers: mypy --strict on code using them, and the generic classes at run time."""

from __future__ import annotations

import re
import subprocess
import sys
import typing
from pathlib import Path

import pytest

import pyprobe
from pyprobe.maps import KeyValueMap

ROOT = Path(__file__).resolve().parent.parent

PRELUDE = """\
import ctypes
from typing import Any

import pyprobe


class Event(ctypes.Structure):
    _fields_ = [("pid", ctypes.c_uint32), ("comm", ctypes.c_char * 16)]


def use(obj: pyprobe.BpfObject) -> None:
    counts = obj.maps.typed("counts", pyprobe.HashMap[int, int])
    lru = obj.maps.typed("lru", pyprobe.LruHashMap[int, Event])
    per_cpu = obj.maps.typed("per_cpu", pyprobe.PerCpuHashMap[int, int])
    array = obj.maps.typed("array", pyprobe.ArrayMap[Event])
    per_cpu_array = obj.maps.typed("per_cpu_array", pyprobe.PerCpuArrayMap[int])
    queue = obj.maps.typed("queue", pyprobe.QueueMap[int])
    stack = obj.maps.typed("stack", pyprobe.StackMap[bytes])
    bloom = obj.maps.typed("bloom", pyprobe.BloomFilterMap[int])
    ring = obj.maps.typed("events", pyprobe.RingBufMap[Event])
    perf = obj.maps.typed("perf", pyprobe.PerfEventArrayMap[Event])
    untyped = obj.maps.typed("other", pyprobe.HashMap)
"""

# (expression, the type mypy reveals for it, module prefixes left out)
REVEALED = [
    ("counts", "HashMap[int, int]"),
    ("counts[1]", "int"),
    ("counts.lookup(1)", "int | None"),
    ("counts.get(1, 0)", "int"),
    ("counts.lookup(1, 'none')", "int | str"),
    ("counts.items()", "list[tuple[int, int]]"),
    ("counts.items(batch=True)", "MapItems[int, int]"),
    ("counts.items(batch=True)[0]", "tuple[int, int]"),
    ("counts.items(batch=True).to_dict()", "dict[int, int]"),
    ("counts.keys()", "list[int]"),
    ("counts.values()", "list[int]"),
    ("[k for k in counts]", "list[int]"),
    ("counts.lookup_and_delete(1)", "int"),
    ("lru[3]", "Event"),
    ("per_cpu[1]", "list[int]"),
    ("per_cpu.items()", "list[tuple[int, list[int]]]"),
    ("array[0]", "Event"),
    ("array.keys()", "list[int]"),
    ("per_cpu_array[0]", "list[int]"),
    ("queue.pop()", "int"),
    ("stack.peek()", "bytes"),
    ("1 in bloom", "bool"),
    ("ring.reader()", "RingBuffer[Event]"),
    ("ring.reader(lambda e: print(e.pid))", "RingBuffer[Event]"),
    ("ring.reader(event_type=ctypes.c_uint64)", "RingBuffer[c_uint64]"),
    ("ring.reader(event_type=bytes)", "RingBuffer[bytes]"),
    ("ring.reader(event_type='event')", "RingBuffer[Any]"),
    ("ring.event_type", "type[Event] | None"),
    ("[ev for ev in ring.reader().events(timeout=1.0)]", "list[Event]"),
    ("ring.reader().read_batch()", "Batch[Event]"),
    ("ring.reader().read_batch()[0]", "Event"),
    ("ring.reader().read_batch()[1:]", "Batch[Event]"),
    ("ring.reader().read_batch().event_type", "type[Event] | None"),
    ("pyprobe.RingBuffer(ring)", "RingBuffer[Event]"),
    ("pyprobe.RingBuffer(obj.maps['events'], event_type=Event)", "RingBuffer[Event]"),
    ("pyprobe.RingBuffer(obj.maps['events'], event_type='event')", "RingBuffer[Any]"),
    ("pyprobe.RingBuffer()", "RingBuffer[Any]"),
    ("perf.reader()", "PerfBuffer[Event]"),
    ("perf.reader(lost=print, pages=8)", "PerfBuffer[Event]"),
    ("perf.reader(event_type=ctypes.c_uint32)", "PerfBuffer[c_uint32]"),
    ("[ev for ev in perf.reader().events()]", "list[Event]"),
    ("pyprobe.PerfBuffer(perf)", "PerfBuffer[Event]"),
    ("pyprobe.PerfBuffer(obj.maps['perf'], event_type='event')", "PerfBuffer[Any]"),
    ("untyped", "HashMap[Any, Any]"),
    ("obj.maps.typed('m', pyprobe.Map)", "Map"),
]

# (statement, a piece of the error mypy reports for it)
MISUSES = [
    ("counts[1] = 'x'", 'Incompatible types in assignment (expression has type "str", target has type "int")'),
    ("counts['k']", 'Invalid index type "str" for "HashMap[int, int]"'),
    ("counts.update(1, b'x')", 'Argument 2 to "update" of "KeyValueMap" has incompatible type "bytes"'),
    ("per_cpu[1] = 'x'", 'Incompatible types in assignment (expression has type "str"'),
    ("array['a'] = Event()", 'Invalid index type "str"'),
    ("queue.push('x')", 'Argument 1 to "push" of "QueueMap" has incompatible type "str"'),
    ("ring.reader(lambda e: e + 1)", 'Unsupported operand types for + ("Event" and "int")'),
    ("x: int = ring.reader().read_batch()[0]", 'expression has type "Event", variable has type "int"'),
    ("obj.maps['counts'].items()", '"Map" has no attribute "items"'),
    ("obj.maps.typed('c', int)", 'Value of type variable "M" of "typed" of "ObjectMaps" cannot be "int"'),
]


def _short(text: str) -> str:
    """A revealed type without module prefixes: ``pyprobe.ringbuf.RingBuffer[x.Event]`` -> ``RingBuffer[Event]``."""
    return re.sub(r"\b(?:[A-Za-z_]\w*\.)+(?=[A-Za-z_])", "", text)


def _readme_example() -> str:
    text = (ROOT / "README.md").read_text()
    match = re.search(r"```python\n(.*?)```", text, re.S)
    assert match is not None, "README.md has no python example"
    return match.group(1)


@pytest.fixture(scope="module")
def mypy_output(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[str]]:
    """mypy --strict's messages, per file, for code using the typed maps (one mypy run for every test here)."""
    pytest.importorskip("mypy")
    tmp = tmp_path_factory.mktemp("typing")
    good = PRELUDE + "".join(f"    reveal_type({expr})\n" for expr, _ in REVEALED)
    bad = PRELUDE + "".join(f"    {stmt}\n" for stmt, _ in MISUSES)
    (tmp / "good.py").write_text(good)
    (tmp / "bad.py").write_text(bad)
    (tmp / "readme.py").write_text(_readme_example())
    proc = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--cache-dir", str(tmp / ".cache"), "--hide-error-context",
         "--no-error-summary", "--show-error-codes", "good.py", "bad.py", "readme.py"],
        cwd=tmp, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert "error: Cannot find implementation or library stub" not in proc.stdout, proc.stdout
    out: dict[str, list[str]] = {"good.py": [], "bad.py": [], "readme.py": []}
    for line in proc.stdout.splitlines():
        name = line.split(":", 1)[0]
        out.setdefault(name, []).append(line)
    return out


def test_mypy_reveals_the_key_value_and_event_types(mypy_output: dict[str, list[str]]) -> None:
    first = PRELUDE.count("\n") + 1
    revealed: dict[int, str] = {}
    for line in mypy_output["good.py"]:
        found = re.match(r'good\.py:(\d+): note: Revealed type is "(.*)"$', line)
        assert found is not None, "\n".join(mypy_output["good.py"])
        revealed[int(found.group(1))] = _short(found.group(2))
    got = [(expr, revealed.get(first + i)) for i, (expr, _) in enumerate(REVEALED)]
    assert got == REVEALED


def test_mypy_rejects_misuse(mypy_output: dict[str, list[str]]) -> None:
    first = PRELUDE.count("\n") + 1
    errors = [line for line in mypy_output["bad.py"] if ": error:" in line]
    for i, (stmt, message) in enumerate(MISUSES):
        at = f"bad.py:{first + i}: error: "
        assert any(line.startswith(at) and message in line for line in errors), (stmt, errors)
    assert all(int(line.split(":")[1]) >= first for line in errors), errors


def test_readme_first_example_passes_mypy_strict(mypy_output: dict[str, list[str]]) -> None:
    assert mypy_output["readme.py"] == []


def test_classes_are_generic_at_run_time() -> None:
    parameters = {
        KeyValueMap: 2, pyprobe.HashMap: 2, pyprobe.LruHashMap: 2, pyprobe.PerCpuHashMap: 2,
        pyprobe.LruPerCpuHashMap: 2, pyprobe.ArrayMap: 1, pyprobe.PerCpuArrayMap: 1, pyprobe.QueueMap: 1,
        pyprobe.StackMap: 1, pyprobe.BloomFilterMap: 1, pyprobe.RingBufMap: 1, pyprobe.PerfEventArrayMap: 1,
        pyprobe.RingBuffer: 1, pyprobe.PerfBuffer: 1, pyprobe.Batch: 1, pyprobe.MapItems: 2,
    }  # fmt: skip
    for cls, count in parameters.items():
        assert len(cls.__parameters__) == count, cls  # type: ignore[attr-defined]
        alias = cls[(int,) * count]  # type: ignore[index]
        assert typing.get_origin(alias) is cls and typing.get_args(alias) == (int,) * count
    assert pyprobe.KeyValueMap is KeyValueMap
    assert issubclass(pyprobe.LruPerCpuHashMap, pyprobe.PerCpuHashMap)
    assert issubclass(pyprobe.PerCpuHashMap, pyprobe.HashMap)
    for cls in (pyprobe.ProgArrayMap, pyprobe.StackTraceMap, pyprobe.ArrayOfMaps, pyprobe.Map):
        assert not getattr(cls, "__parameters__", ()), cls
