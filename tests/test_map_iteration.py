"""Iteration without batch=True: chunks of BPF_MAP_LOOKUP_BATCH (or of get_next_key + lookup), on real maps.

Every test walks both ways: the batch walk the kernel offers since 5.6 and the
get_next_key walk used where it does not. Keys present during the whole
iteration come exactly once; keys inserted or deleted meanwhile at most once.
"""

from __future__ import annotations

import ctypes
import random
import threading
from collections import Counter
from collections.abc import Iterator

import pytest

import pyprobe
from pyprobe._ffi import ffi, lib
from pyprobe.maps import _kinds

pytestmark = pytest.mark.bpf

KINDS = ["hash", "lru_hash", "array", "percpu_hash", "percpu_array", "lru_percpu_hash"]
WALKS = {"batch": lib.PYPROBE_WALK_BATCH, "keys": lib.PYPROBE_WALK_KEYS}


def make(kind: str, entries: int, max_entries: int) -> pyprobe.KeyValueMap[int, int]:
    if "lru" in kind:
        max_entries *= 2  # an LRU map evicts before it is full
    m = pyprobe.Map.create(kind, key_type=ctypes.c_uint32, value_type=ctypes.c_uint64, max_entries=max_entries)
    assert isinstance(m, pyprobe.KeyValueMap)
    m.update_batch({k: 3 * k for k in range(entries)})
    return m


@pytest.fixture(params=list(WALKS))
def walk(request: pytest.FixtureRequest) -> Iterator[int]:
    yield WALKS[request.param]


@pytest.mark.parametrize("kind", KINDS)
def test_every_entry_once_on_every_map_type(kind: str, walk: int) -> None:
    entries = 9_000  # three chunks of 4096 and a part
    with make(kind, entries, 10_000) as m:
        m._walk_start = walk
        present = range(10_000) if "array" in kind else range(entries)
        per_cpu = "percpu" in kind

        def value(k: int) -> object:
            v = 3 * k if k < entries else 0
            return [v] * len(m[k]) if per_cpu else v  # type: ignore[arg-type]

        keys = list(m)
        assert sorted(keys) == list(present)
        assert m.keys() == keys
        assert m.items() == [(k, value(k)) for k in keys]
        assert m.values() == [value(k) for k in keys]
        assert dict(m.items()) == {k: value(k) for k in present}


def test_empty_and_one_entry_maps(walk: int) -> None:
    m = pyprobe.Map.create("hash", key_type=ctypes.c_uint32, value_type=ctypes.c_uint64, max_entries=1)
    assert isinstance(m, pyprobe.HashMap)
    with m:
        m._walk_start = walk
        assert list(m) == [] and m.items() == [] and m.values() == []
        m[7] = 8
        assert list(m) == [7] and m.items() == [(7, 8)] and m.values() == [8]


def test_struct_keys_and_values(walk: int) -> None:
    class Key(ctypes.Structure):
        _fields_ = [("pid", ctypes.c_uint32), ("cpu", ctypes.c_uint32)]

    class Value(ctypes.Structure):
        _fields_ = [("count", ctypes.c_uint64), ("name", ctypes.c_char * 8)]

    m = pyprobe.Map.create("hash", key_type=Key, value_type=Value, max_entries=10_000)
    assert isinstance(m, pyprobe.HashMap)
    with m:
        m._walk_start = walk
        m.update_batch([(Key(k, k % 2), Value(k, b"n%d" % k)) for k in range(5_000)])
        got = {(k.pid, k.cpu): (v.count, v.name) for k, v in m.items()}
        assert got == {(k, k % 2): (k, b"n%d" % k) for k in range(5_000)}


def test_a_bucket_larger_than_a_chunk_grows_the_chunk(monkeypatch: pytest.MonkeyPatch) -> None:
    """BPF_MAP_LOOKUP_BATCH refuses (ENOSPC) a chunk that cannot hold one whole hash bucket."""
    monkeypatch.setattr(_kinds, "_WALK_CHUNK", 1)
    with make("hash", 1_000, 1_024) as m:  # 1,024 buckets for 1,000 keys: some hold two or more
        keys = list(m)
        assert sorted(keys) == list(range(1_000))
        assert dict(m.items()) == {k: 3 * k for k in range(1_000)}


def test_deleting_and_inserting_in_the_loop(walk: int) -> None:
    """The loop deletes each key it gets, deletes keys it has not got yet, and inserts new ones."""
    n = 20_000
    with make("hash", n, 2 * n) as m:
        m._walk_start = walk
        got: list[int] = []
        deleted_early: set[int] = set()
        inserted: set[int] = set()
        for k in m:
            got.append(k)
            if k in m:
                del m[k]
            if k < n and k % 3 == 0 and k + 1 < n and (k + 1) in m:
                del m[k + 1]  # maybe not yielded yet
                deleted_early.add(k + 1)
            if k < n and k % 5 == 0:
                m[n + k] = 1  # inserted during the walk
                inserted.add(n + k)
        counts = Counter(got)
        assert max(counts.values()) == 1, "a key came twice"
        untouched = set(range(n)) - deleted_early
        assert untouched <= counts.keys(), "a key present during the whole walk was missed"
        assert counts.keys() <= set(range(n)) | inserted
        assert sorted(m) == sorted(inserted - counts.keys())  # every key the loop got, it deleted


@pytest.mark.parametrize("kind", ["hash", "lru_hash", "percpu_hash"])
def test_concurrent_writer_thread(kind: str, walk: int) -> None:
    """A thread inserts and deletes keys 0..9,999 while the main thread walks; keys 10,000.. stay put."""
    stable = range(10_000, 30_000)
    churn = 10_000
    with make(kind, 0, 50_000) as m:
        m._walk_start = walk
        m.update_batch({k: k for k in stable})
        stop = threading.Event()
        writes = 0
        failed: list[BaseException] = []

        def writer() -> None:
            nonlocal writes
            rng = random.Random(1)
            try:
                while not stop.is_set():
                    k = rng.randrange(churn)
                    if rng.random() < 0.5:
                        m[k] = k
                    elif k in m:
                        del m[k]
                    writes += 1
            except BaseException as exc:  # reported by the main thread
                failed.append(exc)

        thread = threading.Thread(target=writer)
        thread.start()
        try:
            rounds = 20
            for r in range(rounds):
                got = [k for k, _ in m.items()] if r % 2 else list(m)
                counts = Counter(got)
                assert max(counts.values()) == 1, "a key came twice"
                assert set(stable) <= counts.keys(), "a key present during the whole walk was missed"
                assert counts.keys() <= set(stable) | set(range(churn))
        finally:
            stop.set()
            thread.join()
        assert not failed, failed
        assert writes > 0


@pytest.mark.parametrize("kind", KINDS)
def test_the_default_walk_is_batch_lookups_of_whole_chunks(kind: str) -> None:
    """On this kernel (5.6+) every key-value map type walks with BPF_MAP_LOOKUP_BATCH, 4096 entries a call."""
    with make(kind, 9_000, 9_000) as m:
        vsize = m._codec[1].size
        keys, values = ffi.new("char[]", 4096 * 4), ffi.new("char[]", 4096 * vsize)
        token = ffi.new("char[]", 16)
        state = ffi.new("int *", lib.PYPROBE_WALK_BATCH)
        count = ffi.new("__u32 *")
        counts, states = [], []
        while state[0] != lib.PYPROBE_WALK_BATCH_DONE:
            assert len(counts) < 10
            count[0] = 4096
            assert lib.pyprobe_map_walk(m.fd, 4, vsize, token, state, keys, values, count) == 0
            counts.append(int(count[0]))
            states.append(int(state[0]))
        assert sum(counts) == 9_000
        assert len(counts) <= 4 and all(c <= 4096 for c in counts)  # hash chunks stop at a bucket's edge
        assert lib.PYPROBE_WALK_KEYS not in states
