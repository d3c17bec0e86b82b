"""``--call-graph dwarf``: DwarfSampler on the bundled truth target, built with and without frame pointers.

Real kernel, real perf events: each sample carries both the DWARF unwind (user
space, from .eh_frame) and the kernel's frame-pointer walk of the same moment,
so the two modes are compared on the same samples.
"""

from __future__ import annotations

import io
import os
import random
import struct
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from conftest import target

pytestmark = pytest.mark.bpf

HZ = 199


class Ranges:
    """Address ranges of a target's functions in one running process."""

    def __init__(self, binary: Path, pid: int, names: list[str]) -> None:
        from pyprobe import symbols

        self.syms = {n: symbols.resolve(str(binary), n) for n in names}
        real = os.path.realpath(binary)
        self.maps: list[tuple[int, int, int]] = []
        with open(f"/proc/{pid}/maps") as f:
            for line in f:
                parts = line.split()
                if len(parts) >= 6 and os.path.realpath(parts[5]) == real:
                    lo, hi = (int(x, 16) for x in parts[0].split("-"))
                    self.maps.append((lo, hi, int(parts[2], 16)))
        assert self.maps, f"{binary} is not mapped in {pid}"

    def name(self, address: int) -> str | None:
        for lo, hi, off in self.maps:
            if lo <= address < hi:
                file_off = address - lo + off
                for n, s in self.syms.items():
                    if s.offset <= file_off < s.offset + s.size:
                        return n
        return None


NAMES = ["work::Shapes::heavy", "work::Shapes::light", "work::run", "main"]


@pytest.fixture
def running() -> Iterator[tuple[subprocess.Popen[bytes], Path]]:
    procs: list[subprocess.Popen[bytes]] = []

    def start(name: str, seconds: float) -> tuple[subprocess.Popen[bytes], Path]:
        binary = target(name)
        p = subprocess.Popen([str(binary), str(seconds)], stdout=subprocess.PIPE)
        assert p.stdout is not None
        assert p.stdout.readline().startswith(b"proftarget pid")
        procs.append(p)
        return p, binary

    yield start  # type: ignore[misc]
    for p in procs:
        p.kill()
        p.wait()
        if p.stdout:
            p.stdout.close()


def sample(pid: int, want: int = 300, **kw: object) -> tuple[list[tuple[object, tuple[int, ...]]], object]:
    """Samples ``pid`` until ``want`` samples came (the target's CPU share depends on the machine's load) or 30 s."""
    from pyprobe.profile.dwarf import DwarfSampler

    got: list[tuple[object, tuple[int, ...]]] = []
    deadline = time.monotonic() + 30
    with DwarfSampler(pids=[pid], frequency=HZ, fp_stacks=True, **kw) as s:  # type: ignore[arg-type]
        s.start()
        while time.monotonic() < deadline and s.stats.user_records < want:
            time.sleep(0.25)
            got += s.drain_with_fp()
        return got, s.stats


def callers(stacks: list[tuple[object, tuple[int, ...]]], ranges: Ranges) -> dict[str, float]:
    """Of the samples whose leaf is heavy() or light(): the share whose DWARF / FP stack holds run() and main."""
    leaf = {"heavy": 0, "light": 0}
    total = dwarf_ok = fp_ok = 0
    for raw, fp in stacks:
        user = raw.user  # type: ignore[attr-defined]
        count = raw.count  # type: ignore[attr-defined]
        first = ranges.name(user[0]) if user else None
        if first not in ("work::Shapes::heavy", "work::Shapes::light"):
            continue
        leaf["heavy" if first.endswith("heavy") else "light"] += count
        total += count
        names = [ranges.name(a) for a in user]
        if "work::run" in names and "main" in names:
            dwarf_ok += count
        fp_names = [ranges.name(a) for a in fp]
        if "work::run" in fp_names and "main" in fp_names:
            fp_ok += count
    assert total > 100, f"too few samples in heavy/light: {total}"
    return {
        "total": total,
        "dwarf": dwarf_ok / total,
        "fp": fp_ok / total,
        "heavy": leaf["heavy"] / total,
    }


def test_nofp_build_unwinds_through_dwarf_not_frame_pointers(running) -> None:  # type: ignore[no-untyped-def]
    p, binary = running("proftarget_nofp", 60)
    ranges = Ranges(binary, p.pid, NAMES)
    stacks, stats = sample(p.pid)
    share = callers(stacks, ranges)
    assert share["dwarf"] >= 0.97, share
    assert share["fp"] < 0.5, share  # what the DWARF mode is for
    assert abs(share["heavy"] - 0.75) < 0.06, share
    assert stats.outermost >= 0.97 * stats.user_records, stats  # type: ignore[attr-defined]


def test_fp_build_unwinds_in_both_modes(running) -> None:  # type: ignore[no-untyped-def]
    p, binary = running("proftarget_fp", 60)
    ranges = Ranges(binary, p.pid, NAMES)
    stacks, _ = sample(p.pid)
    share = callers(stacks, ranges)
    assert share["dwarf"] >= 0.97, share
    assert share["fp"] >= 0.9, share
    assert abs(share["heavy"] - 0.75) < 0.06, share


def test_short_stack_copy_stops_without_crashing(running) -> None:  # type: ignore[no-untyped-def]
    from pyprobe.profile._unwind import F_STACK_END

    p, binary = running("proftarget_nofp", 60)
    ranges = Ranges(binary, p.pid, NAMES)
    stacks, stats = sample(p.pid, 50, stack_bytes=8)
    assert stacks
    for raw, _ in stacks:
        assert 1 <= len(raw.user) <= 2  # type: ignore[attr-defined]
    leaves = {ranges.name(raw.user[0]) for raw, _ in stacks}  # type: ignore[attr-defined]
    assert leaves & {"work::Shapes::heavy", "work::Shapes::light"}
    assert any(flags & F_STACK_END for flags in stats.stopped)  # type: ignore[attr-defined]


def test_largest_stack_copy(running) -> None:  # type: ignore[no-untyped-def]
    from pyprobe.profile.dwarf import MAX_STACK_BYTES

    p, binary = running("proftarget_nofp", 60)
    ranges = Ranges(binary, p.pid, NAMES)
    stacks, stats = sample(p.pid, 50, stack_bytes=MAX_STACK_BYTES)
    assert share_with_main(stacks, ranges) >= 0.97
    assert stats.truncated == stats.user_records  # type: ignore[attr-defined]  # the main thread's stack is short


def share_with_main(stacks: list[tuple[object, tuple[int, ...]]], ranges: Ranges) -> float:
    total = sum(raw.count for raw, _ in stacks)  # type: ignore[attr-defined]
    deep = sum(raw.count for raw, _ in stacks if "main" in [ranges.name(a) for a in raw.user])  # type: ignore[attr-defined]
    return deep / max(total, 1)


def _cpu_ticks(pid: int) -> int:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])  # utime + stime


def test_process_exiting_mid_profile_keeps_its_stacks(running, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """Samples of a process killed before they are unwound: its modules, read at start, still unwind them."""
    from pyprobe.profile import dwarf

    monkeypatch.setattr(dwarf, "_POLL", 3600.0)  # the worker stays asleep: only drain() reads the ring
    p, binary = running("proftarget_nofp", 60)
    ranges = Ranges(binary, p.pid, NAMES)
    with dwarf.DwarfSampler(pids=[p.pid], frequency=HZ) as s:
        s.start()
        start, deadline = _cpu_ticks(p.pid), time.monotonic() + 30
        while _cpu_ticks(p.pid) - start < 50 and time.monotonic() < deadline:  # half a CPU second
            time.sleep(0.1)
        p.kill()
        p.wait()
        stacks = s.drain()
        assert s.drain() == []
    total = sum(r.count for r in stacks)
    assert total >= 30
    deep = [r for r in stacks if "main" in [ranges.name(a) for a in r.user]]
    assert sum(r.count for r in deep) >= 0.9 * total
    assert all(r.pid == p.pid and r.comm == "proftarget_nofp"[:15] for r in stacks)


def test_kernel_stacks_of_a_syscall_loop() -> None:
    from pyprobe.profile.dwarf import DwarfSampler

    p = subprocess.Popen(["dd", "if=/dev/zero", "of=/dev/null", "bs=1", "count=50000000"], stderr=subprocess.DEVNULL)
    try:
        with DwarfSampler(pids=[p.pid], frequency=HZ) as s:
            s.start()
            time.sleep(1.0)
            stacks = s.drain()
    finally:
        p.kill()
        p.wait()
    kernel = sum(r.count for r in stacks if r.kernel)
    assert kernel > 0.3 * sum(r.count for r in stacks)
    # a kernel sample still has its user stack, unwound from the registers saved at the syscall
    assert any(r.kernel and len(r.user) >= 3 for r in stacks)


@pytest.mark.parametrize(
    ("kw", "match"),
    [
        ({"stack_bytes": 100}, "stack_bytes"),
        ({"stack_bytes": 0}, "stack_bytes"),
        ({"stack_bytes": 61440}, "stack_bytes"),
        ({"frequency": 0}, "frequency"),
        ({"pids": []}, "pids"),
        ({"pids": [-3]}, "pids"),
        ({"user": False, "kernel": False}, "no stack"),
        ({"max_frames": 0}, "max_frames"),
    ],
)
def test_bad_arguments_raise_value_error(kw: dict[str, object], match: str) -> None:
    from pyprobe.profile.dwarf import DwarfSampler

    args: dict[str, object] = {"pids": None, "frequency": 99}
    args.update(kw)
    with pytest.raises(ValueError, match=match):
        DwarfSampler(**args)  # type: ignore[arg-type]


def _record(pid: int, regs: list[int], stack: bytes, stack_len: int | None = None, flags: int = 1) -> bytes:
    from pyprobe.profile._unwind import HEADER_SIZE

    head = struct.pack("<IIiIIi", pid, pid, -1, len(stack) if stack_len is None else stack_len, flags, -1)
    head += struct.pack("<17Q", *regs) + b"comm".ljust(16, b"\0")
    assert len(head) == HEADER_SIZE
    return head + stack


def _unwind(unwinder: object, records: list[bytes], pid: int) -> list[tuple[int, ...]]:
    from pyprobe._ffi import ffi

    raw = b"".join(records)
    offsets = [0]
    for r in records:
        offsets.append(offsets[-1] + len(r))
    buf = ffi.from_buffer("uint8_t[]", raw)
    offs = ffi.new("uint32_t[]", offsets)
    ips, nips, _ = unwinder.unwind(buf, offs, len(records), [pid] * len(records))  # type: ignore[attr-defined]
    mf = unwinder.max_frames  # type: ignore[attr-defined]
    return [tuple(ips[i * mf : i * mf + nips[i]]) for i in range(len(records))]


def test_garbage_registers_and_stacks_never_crash(running) -> None:  # type: ignore[no-untyped-def]
    """Random registers and stack bytes against the real modules of a live process: bounded, no crash."""
    from pyprobe.profile._unwind import Unwinder

    p, _binary = running("proftarget_nofp", 60)
    unwinder = Unwinder(max_frames=64)
    proc = unwinder.refresh(p.pid)
    assert proc.nmods >= 3  # the target, libc, ld.so, the vDSO
    rng = random.Random(13)
    text = [(m.start, m.end) for m in proc.mappings]
    records = []
    for i in range(3000):
        sp = rng.choice([0, 2**64 - 8, rng.randrange(2**47)]) & ~7
        lo, hi = rng.choice(text)
        ip = rng.randrange(lo, hi) if i % 3 else rng.randrange(2**64)
        regs = [rng.randrange(2**64) for _ in range(17)]
        regs[7], regs[16] = sp, ip
        n = rng.choice([0, 8, 64, 4096])
        # stacks made of addresses inside the modules, so the walk goes on for a while
        words = [
            rng.choice([rng.randrange(lo, hi), (sp + rng.randrange(4096)) % 2**64, rng.randrange(2**64)])
            for _ in range(n // 8)
        ]
        stack = struct.pack(f"<{len(words)}Q", *words)
        claimed = rng.choice([None, n + 1000, 2**32 - 1])  # a stack_len past the record's end
        records.append(_record(p.pid, regs, stack, claimed))
    records.append(b"\x01" * 10)  # shorter than a header
    records.append(b"")
    out = _unwind(unwinder, records, p.pid)
    assert all(len(f) <= 64 for f in out)
    assert out[-1] == () and out[-2] == ()
    assert any(len(f) > 1 for f in out)


def test_corrupt_cfi_never_crashes(running) -> None:  # type: ignore[no-untyped-def]
    """A process whose module tables point at random or truncated CFI bytes."""
    from pyprobe._ffi import ffi
    from pyprobe.profile._unwind import Unwinder

    p, _ = running("proftarget_nofp", 60)
    unwinder = Unwinder(max_frames=32)
    proc = unwinder.refresh(p.pid)
    rng = random.Random(7)
    for trial in range(40):
        keep = []
        for i in range(proc.nmods):
            e = proc.array[i]
            frame = bytes(ffi.buffer(e.eh_frame, e.eh_frame_len))
            hdr = bytes(ffi.buffer(e.hdr, e.hdr_len))
            if trial % 2:  # flip one byte in twenty
                frame, hdr = _flip(rng, frame), _flip(rng, hdr)
            else:  # cut short
                frame, hdr = frame[: rng.randrange(len(frame) + 1)], hdr[: rng.randrange(len(hdr) + 1)]
            fb, hb = ffi.from_buffer("uint8_t[]", frame), ffi.from_buffer("uint8_t[]", hdr)
            keep += [fb, hb]
            e.eh_frame, e.eh_frame_len, e.hdr, e.hdr_len = fb, len(frame), hb, len(hdr)
        lo = proc.mappings[0].start
        records = []
        for _ in range(50):
            regs = [rng.randrange(2**64) for _ in range(17)]
            sp = rng.randrange(2**47) & ~7
            regs[7], regs[16] = sp, rng.choice([m.start for m in proc.mappings]) + rng.randrange(4096)
            words = [rng.choice([lo + rng.randrange(8192), sp + rng.randrange(512)]) for _ in range(256)]
            records.append(_record(p.pid, regs, struct.pack("<256Q", *words)))
        out = _unwind(unwinder, records, p.pid)
        assert all(1 <= len(f) <= 32 for f in out)
        unwinder.refresh(p.pid)  # the real tables again
        proc = unwinder.procs[p.pid]


def _flip(rng: random.Random, data: bytes) -> bytes:
    out = bytearray(data)
    for i in rng.sample(range(len(out)), len(out) // 20):
        out[i] ^= rng.randrange(1, 256)
    return bytes(out)


def test_load_cfi_rejects_non_elf_and_truncated_files() -> None:
    from pyprobe.profile._unwind import load_cfi

    assert load_cfi(io.BytesIO(b"")) is None
    assert load_cfi(io.BytesIO(b"not an elf file at all" * 10)) is None
    data = Path("/bin/true").read_bytes()
    assert load_cfi(io.BytesIO(data)) is not None
    for cut in (16, 64, 1000, len(data) // 2):
        load_cfi(io.BytesIO(data[:cut]))  # None or tables: never an exception


@pytest.mark.parametrize("name", ["proftarget_nofp", "proftarget_fp"])
def test_profiler_dwarf_mode_finds_the_truth(name: str) -> None:
    """Through the Profiler (call_graph="dwarf"): the demangled methods 3:1, run() and main in every stack."""
    from pyprobe.profile import Profiler

    binary = target(name)
    p = subprocess.Popen([str(binary), "60"], stdout=subprocess.PIPE)
    try:
        assert p.stdout is not None and p.stdout.readline().startswith(b"proftarget pid")
        profiler = Profiler(pids=[p.pid], frequency=HZ, call_graph="dwarf", kernel=False, interval=0.2)
        profiler.start()
        deadline = time.monotonic() + 120
        while profiler.samples < 600 and time.monotonic() < deadline:  # by count: the load sets the time it takes
            time.sleep(0.2)
        profile = profiler.stop()
    finally:
        p.kill()
        p.wait()
        if p.stdout:
            p.stdout.close()
    heavy = light = other = 0
    for sample in profile.samples:
        names = [f.name for f in sample.frames]
        leaf = names[-1] if names else ""
        if leaf.startswith("work::Shapes::heavy"):
            heavy += sample.count
        elif leaf.startswith("work::Shapes::light"):
            light += sample.count
        else:
            other += sample.count
            continue
        assert any(n.startswith("work::run(") for n in names), names
        assert "main" in names, names
    assert heavy + light > 500, (heavy, light, other)
    assert other < 0.05 * (heavy + light + other)
    assert abs(heavy / (heavy + light) - 0.75) < 0.04, (heavy, light)
