"""Property tests: a hash map and a per-CPU array driven by random operations against a dict model.

Hypothesis runs each state machine for a bounded, derandomized number of
examples (so CI sees the same cases every run): inserts and updates with
every flag, deletes, lookups, batches, clears and values out of range, each
checked against what a dict says the map must hold and which error
(KeyExistsError, KeyNotFoundError, MapFullError, MapIndexError, ValueError)
it must raise; after every step the whole map is read back three ways and
compared with the model.
"""

from __future__ import annotations

import ctypes
import errno
import functools
from typing import Any

import pytest
from hypothesis import HealthCheck, event, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

import pyprobe
from conftest import test_object
from pyprobe import KeyExistsError, KeyNotFoundError, MapFullError, MapIndexError, UpdateFlags
from pyprobe.btf import Btf

pytestmark = pytest.mark.bpf

BOUNDS = settings(
    max_examples=100,
    stateful_step_count=50,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
FLAGS = st.sampled_from([UpdateFlags.ANY, UpdateFlags.NOEXIST, UpdateFlags.EXIST])
U32 = 2**32 - 1


@functools.cache
def value16() -> Any:
    """struct value16 {u64 count; u32 pid; u32 flags;} from the test object's BTF."""
    return Btf.from_file(test_object("maps")).type_by_name("struct value16")


Record = tuple[int, int, int]
MEMBER_BITS = {"count": 64, "pid": 32, "flags": 32}


def record(value: dict[str, int]) -> Record:
    return (value.get("count", 0), value.get("pid", 0), value.get("flags", 0))


def members(**bits: int) -> st.SearchStrategy[dict[str, int]]:
    return st.fixed_dictionaries({}, optional={name: st.integers(0, 2**n - 1) for name, n in bits.items()})


VALUES = members(**MEMBER_BITS)
OUT_OF_RANGE = st.sampled_from(sorted(MEMBER_BITS)).flatmap(
    lambda name: st.tuples(st.just(name), st.sampled_from([-1, 2 ** MEMBER_BITS[name], 2 ** MEMBER_BITS[name] + 5]))
)


class HashModel(RuleBasedStateMachine):
    """A BPF_MAP_TYPE_HASH of 8 entries (u32 -> struct value16), keys drawn from 0..11 so it fills up."""

    MAX = 8
    KEYS = st.integers(0, 11)

    def __init__(self) -> None:
        super().__init__()
        self.map = pyprobe.Map.create(
            "hash", key_type=ctypes.c_uint32, value_type=value16(), max_entries=self.MAX, name="model_hash"
        )
        self.model: dict[int, Record] = {}

    def teardown(self) -> None:
        self.map.close()

    def refusal(self, key: int, flags: int) -> type[Exception] | None:
        """The error the kernel gives for storing at ``key`` now, as the model sees it."""
        present = key in self.model
        if flags == UpdateFlags.NOEXIST and present:
            return KeyExistsError
        if flags == UpdateFlags.EXIST and not present:
            return KeyNotFoundError
        if not present and len(self.model) >= self.MAX:
            return MapFullError
        return None

    @rule(key=KEYS, value=VALUES, flags=FLAGS)
    def update(self, key: int, value: dict[str, int], flags: UpdateFlags) -> None:
        refused = self.refusal(key, flags)
        event(f"update {flags.name}: {refused.__name__ if refused else 'stored'}")
        if refused is None:
            self.map.update(key, value, flags)
            self.model[key] = record(value)
        else:
            with pytest.raises(refused):
                self.map.update(key, value, flags)

    @rule(key=KEYS, bad=OUT_OF_RANGE)
    def update_out_of_range(self, key: int, bad: tuple[str, int]) -> None:
        name, number = bad
        with pytest.raises(ValueError, match=rf"value of map 'model_hash': member '{name}'.*{number}"):
            self.map[key] = {name: number}

    @rule(key=KEYS)
    def delete(self, key: int) -> None:
        if key in self.model:
            del self.map[key]
            del self.model[key]
        else:
            with pytest.raises(KeyNotFoundError):
                del self.map[key]

    @rule(key=KEYS)
    def lookup(self, key: int) -> None:
        expected = self.model.get(key)
        found = self.map.get(key)
        assert (None if found is None else (found.count, found.pid, found.flags)) == expected
        assert (key in self.map) == (expected is not None)
        if expected is None:
            with pytest.raises(KeyNotFoundError):
                self.map[key]

    @rule(key=KEYS)
    def lookup_and_delete(self, key: int) -> None:
        if key in self.model:
            found = self.map.lookup_and_delete(key)
            assert (found.count, found.pid, found.flags) == self.model.pop(key)
        else:
            with pytest.raises(KeyNotFoundError):
                self.map.lookup_and_delete(key)

    @rule(pairs=st.lists(st.tuples(KEYS, VALUES), max_size=6), flags=FLAGS)
    def update_batch(self, pairs: list[tuple[int, dict[str, int]]], flags: UpdateFlags) -> None:
        refused: type[Exception] | None = None
        stored = 0
        for key, value in pairs:  # the kernel stores pair after pair and stops at the first refusal
            refused = self.refusal(key, flags)
            if refused is not None:
                break
            self.model[key] = record(value)
            stored += 1
        event(f"update_batch {flags.name}: {refused.__name__ if refused else 'stored'}")
        if refused is None:
            assert self.map.update_batch(pairs, flags) == len(pairs)
        else:
            with pytest.raises(refused, match=rf"; {stored} of {len(pairs)} pairs were stored before the error"):
                self.map.update_batch(pairs, flags)

    @rule(keys=st.lists(KEYS, max_size=6))
    def delete_batch(self, keys: list[int]) -> None:
        for deleted, key in enumerate(keys):  # the kernel deletes key after key and stops at the first missing one
            if key not in self.model:
                event("delete_batch: KeyNotFoundError")
                with pytest.raises(KeyNotFoundError, match=rf"{deleted} of {len(keys)} keys were deleted"):
                    self.map.delete_batch(keys)
                return
            del self.model[key]
        assert self.map.delete_batch(keys) == len(keys)

    @rule()
    def clear(self) -> None:
        self.map.clear()
        self.model.clear()

    @invariant()
    def holds_what_the_model_holds(self) -> None:
        per_key = {k: (v.count, v.pid, v.flags) for k, v in self.map.items()}
        batch = {k: (v.count, v.pid, v.flags) for k, v in self.map.items(batch=True)}
        assert per_key == batch == self.model
        assert len(self.map) == len(self.model)
        assert sorted(self.map) == sorted(self.model)


class PerCpuArrayModel(RuleBasedStateMachine):
    """A BPF_MAP_TYPE_PERCPU_ARRAY of 4 u32 slots; indexes drawn from 0..5, so some are past the end."""

    MAX = 4
    INDEXES = st.integers(0, 5)

    def __init__(self) -> None:
        super().__init__()
        self.map = pyprobe.Map.create("percpu_array", value_type=ctypes.c_uint32, max_entries=self.MAX)
        self.name = self.map.name
        self.ncpus = len(self.map[0])
        self.model: dict[int, list[int]] = {i: [0] * self.ncpus for i in range(self.MAX)}

    def teardown(self) -> None:
        self.map.close()

    def values(self) -> st.SearchStrategy[int | list[int]]:
        return st.integers(0, U32) | st.lists(st.integers(0, U32), min_size=self.ncpus, max_size=self.ncpus)

    def refusal(self, index: int, flags: int) -> type[Exception] | None:
        if index >= self.MAX:
            return MapIndexError
        if flags == UpdateFlags.NOEXIST:  # every index of an array always holds a value
            return KeyExistsError
        return None

    def stored(self, value: int | list[int]) -> list[int]:
        return list(value) if isinstance(value, list) else [value] * self.ncpus

    @rule(index=INDEXES, data=st.data(), flags=FLAGS)
    def update(self, index: int, data: st.DataObject, flags: UpdateFlags) -> None:
        value = data.draw(self.values())
        refused = self.refusal(index, flags)
        event(f"update {flags.name}: {refused.__name__ if refused else 'stored'}")
        if refused is None:
            self.map.update(index, value, flags)
            self.model[index] = self.stored(value)
        else:
            with pytest.raises(refused):
                self.map.update(index, value, flags)

    @rule(index=st.integers(0, MAX - 1), bad=st.sampled_from([-1, 2**32, 2**40]), data=st.data())
    def update_out_of_range(self, index: int, bad: int, data: st.DataObject) -> None:
        per_cpu = data.draw(st.booleans())
        value: int | list[int] = [0] * (self.ncpus - 1) + [bad] if per_cpu else bad
        with pytest.raises(ValueError, match=rf"value of map '{self.name}'.*{bad} (is out of range|does not fit)"):
            self.map[index] = value

    @rule(index=st.integers(0, MAX - 1), extra=st.sampled_from([-1, 1]))
    def update_wrong_cpu_count(self, index: int, extra: int) -> None:
        with pytest.raises(ValueError, match=rf"one value per possible CPU \({self.ncpus}\)"):
            self.map[index] = [1] * (self.ncpus + extra)

    @rule(index=INDEXES)
    def lookup(self, index: int) -> None:
        assert self.map.get(index) == self.model.get(index)
        assert (index in self.map) == (index < self.MAX)
        if index >= self.MAX:
            with pytest.raises(MapIndexError, match=rf"index {index} is out of range 0\.\.{self.MAX - 1}"):
                self.map[index]

    @rule(index=INDEXES)
    def delete(self, index: int) -> None:
        with pytest.raises(pyprobe.MapError) as info:
            del self.map[index]
        assert info.value.errno == errno.EINVAL

    @rule(data=st.data(), flags=FLAGS)
    def update_batch(self, data: st.DataObject, flags: UpdateFlags) -> None:
        pairs = data.draw(st.lists(st.tuples(self.INDEXES, self.values()), max_size=6))
        refused: type[Exception] | None = None
        stored = 0
        for index, value in pairs:
            refused = self.refusal(index, flags)
            if refused is not None:
                break
            self.model[index] = self.stored(value)
            stored += 1
        event(f"update_batch {flags.name}: {refused.__name__ if refused else 'stored'}")
        if refused is None:
            assert self.map.update_batch(pairs, flags) == len(pairs)
        else:
            with pytest.raises(refused, match=rf"; {stored} of {len(pairs)} pairs were stored before the error"):
                self.map.update_batch(pairs, flags)

    @rule(indexes=st.lists(INDEXES, min_size=1, max_size=3))
    def delete_batch(self, indexes: list[int]) -> None:
        with pytest.raises(pyprobe.MapError, match=rf"0 of {len(indexes)} keys were deleted") as info:
            self.map.delete_batch(indexes)
        assert info.value.errno == errno.EINVAL

    @rule()
    def clear(self) -> None:
        self.map.clear()
        self.model = {i: [0] * self.ncpus for i in range(self.MAX)}

    @invariant()
    def holds_what_the_model_holds(self) -> None:
        assert dict(self.map.items()) == self.map.items(batch=True).to_dict() == self.model
        assert len(self.map) == self.MAX and list(self.map) == list(range(self.MAX))


TestHashModel = HashModel.TestCase
TestHashModel.settings = BOUNDS
TestPerCpuArrayModel = PerCpuArrayModel.TestCase
TestPerCpuArrayModel.settings = BOUNDS
