"""Iterate a 1,000,000-entry map without batch=True, on every key-value map type, against a ctypes loop.

The baseline is the loop bcc runs: ctypes on libbpf.so.1 calling
bpf_map_get_next_key + bpf_map_lookup_elem per entry, building the same
Python objects pyprobe returns (int keys, bytes values, a list of them per
CPU on per-CPU maps). pyprobe: ``dict(m.items())``, ``list(m.keys())``,
``list(m.values())``, ``for k in m``, ``for k, v in m.items()``, each read in
chunks of BPF_MAP_LOOKUP_BATCH. Keys are u32, values 16 bytes left as bytes.
Prints ns/entry (CPU time of this process, the kernel's share included,
which the other jobs on the machine do not change; wall time beside it) and
the ratio to the ctypes loop measured in the same run.

usage: bench_iter.py [--entries N] [--types hash,array,...] [--repeat R]
(``--entries 10000000`` for the growth figures).
"""

from __future__ import annotations

import argparse
import ctypes
import subprocess
import time
from collections.abc import Callable
from typing import Any

from _common import helper

import pyprobe

TYPES = ["hash", "lru_hash", "array", "percpu_hash", "percpu_array", "lru_percpu_hash"]
VALUE_SIZE = 16


def ctypes_loop(fd: int, key_size: int, value_size: int, ncpus: int) -> dict[int, Any]:
    """bcc's way: one get_next_key and one lookup through ctypes per entry."""
    libbpf = ctypes.CDLL("libbpf.so.1", use_errno=True)
    get_next_key, lookup = libbpf.bpf_map_get_next_key, libbpf.bpf_map_lookup_elem
    get_next_key.argtypes = lookup.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p]
    get_next_key.restype = lookup.restype = ctypes.c_int
    stride = (value_size + 7) // 8 * 8
    key, next_key = ctypes.c_uint32(), ctypes.c_uint32()
    value = ctypes.create_string_buffer(stride * ncpus if ncpus else value_size)
    out: dict[int, Any] = {}
    prev = None
    while get_next_key(fd, prev, ctypes.byref(next_key)) == 0:
        if lookup(fd, ctypes.byref(next_key), value) == 0:
            raw = value.raw
            if ncpus:
                out[next_key.value] = [raw[i * stride : i * stride + value_size] for i in range(ncpus)]
            else:
                out[next_key.value] = raw
        key.value = next_key.value
        prev = ctypes.byref(key)
    return out


def timed(fn: Callable[[], object], repeat: int) -> tuple[float, float]:
    """Best (CPU seconds, wall seconds) of ``repeat`` runs."""
    cpu, wall = [], []
    for _ in range(repeat):
        c, w = time.process_time(), time.perf_counter()
        fn()
        cpu.append(time.process_time() - c)
        wall.append(time.perf_counter() - w)
    return min(cpu), min(wall)


def per_key(m: Any) -> dict[Any, Any]:
    """The former default of items(): get_next_key and lookup per entry, each decoded alone."""
    decode_k, decode_v = m._codec[0].decode, m._codec[1].decode
    out = {}
    for raw in m._raw_keys():
        value = m._lookup_raw(raw)
        if value is not None:
            out[decode_k(raw)] = decode_v(value)
    return out


def for_keys(m: Any) -> None:
    for _k in m:
        pass


def for_items(m: Any) -> None:
    for _k, _v in m.items():
        pass


def bench_type(kind: str, n: int, repeat: int) -> list[float]:
    room = n * 5 // 4 if "lru" in kind else n  # an LRU map evicts before it is full
    m = pyprobe.Map.create(kind, key_type=ctypes.c_uint32, key_size=4, value_size=VALUE_SIZE, max_entries=room)
    assert isinstance(m, pyprobe.KeyValueMap)
    ratios = []
    with m:
        if "array" not in kind:
            chunk = 200_000
            for base in range(0, n, chunk):
                m.update_batch({k: k.to_bytes(VALUE_SIZE, "little") for k in range(base, min(base + chunk, n))})
        ncpus = len(m.values()[0]) if "percpu" in kind else 0  # possible CPUs
        expected = ctypes_loop(m.fd, 4, VALUE_SIZE, ncpus)
        assert len(expected) == n, f"{kind}: {len(expected):,} entries, not {n:,}"
        assert dict(m.items()) == expected
        base_cpu, base_wall = timed(lambda: ctypes_loop(m.fd, 4, VALUE_SIZE, ncpus), max(1, repeat // 2))
        print(f"{kind} ({n:,} entries)")
        name = "ctypes get_next_key + lookup loop"
        print(f"  {name:32s} {base_cpu / n * 1e9:8.0f} ns/entry  (wall {base_wall / n * 1e9:6.0f})")
        cases: list[tuple[str, Callable[[], object]]] = [
            ("dict(m.items())", lambda: dict(m.items())),
            ("list(m.keys())", lambda: list(m.keys())),
            ("list(m.values())", lambda: list(m.values())),
            ("for k in m", lambda: for_keys(m)),
            ("for k, v in m.items()", lambda: for_items(m)),
        ]
        for name, fn in cases:
            cpu, wall = timed(fn, repeat)
            ratios.append(cpu / base_cpu)
            print(
                f"  {name:32s} {cpu / n * 1e9:8.0f} ns/entry  (wall {wall / n * 1e9:6.0f})"
                f"  {cpu / base_cpu:5.3f}x the ctypes loop ({base_cpu / cpu:.1f}x faster)"
            )
        if ncpus == 0:  # bench/c/maps.c sizes its buffers for one value per entry
            out = subprocess.run([str(helper("maps")), str(m.id), "3"], check=True, capture_output=True, text=True)
            c_wall = float(out.stdout.split()[0]) / 1e3
            name = "C libbpf batch dump, no decoding"
            print(f"  {name:32s} {'':8s} ns/entry  (wall {c_wall / n * 1e9:6.0f})  (reference)")
        for name, fn in [
            ("dict(m.items(batch=True))", lambda: dict(m.items(batch=True))),
            ("per key, as items() did before", lambda: per_key(m)),
        ]:
            cpu, wall = timed(fn, 1)
            print(
                f"  {name:32s} {cpu / n * 1e9:8.0f} ns/entry  (wall {wall / n * 1e9:6.0f})"
                f"  {cpu / base_cpu:5.3f}x the ctypes loop (reference, not in the worst ratio)"
            )
    return ratios


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--entries", type=int, default=1_000_000)
    parser.add_argument("--types", default=",".join(TYPES))
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    worst = 0.0
    for kind in args.types.split(","):
        worst = max(worst, *bench_type(kind, args.entries, args.repeat))
    print(f"worst ratio to the ctypes loop over every type and way: {worst:.3f}x")


if __name__ == "__main__":
    main()
