"""Reading metric maps at scrape time: raw key blobs in bulk, labels decoded once per distinct key.

A :class:`MetricMap` binds one counter or histogram of a config to its map.
:meth:`MetricMap.read` dumps the map with one batch lookup (BPF_MAP_LOOKUP_BATCH
in C; ``batch=False`` reads it the per-key way, for comparison), splits the
key blob into keys, decodes each distinct key's labels once (then from a
cache) and sums values that decode to the same labels, as ebpf_exporter
does. Values are u64; a per-CPU map's values are summed over CPUs unless the
last label is ``cpu``, which then takes the CPU index (a u16 appended to the
key, as ebpf_exporter appends it).
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from typing import TYPE_CHECKING

from pyprobe.enums import MapType
from pyprobe.export.config import ConfigError, CounterConfig, HistogramConfig, LabelConfig, ProgramConfig
from pyprobe.export.decoders import DecodeError, SkipLabelSet, decode_chain
from pyprobe.export.histogram import transform

if TYPE_CHECKING:
    from pyprobe.maps import Map

__all__ = ["MetricMap", "check_maps"]

PERCPU_TYPES = (MapType.PERCPU_HASH, MapType.PERCPU_ARRAY, MapType.LRU_PERCPU_HASH)
_ZERO4 = b"\0\0\0\0"
_SKIP: tuple[str, ...] = ("\0skip",)
_CACHE_LIMIT = 1 << 18


def _expected_key_size(labels: tuple[LabelConfig, ...], percpu: bool) -> tuple[int, str]:
    """The key size a label list implies for a map, and how it was worked out (for the error)."""
    total = sum(label.size + label.padding for label in labels)
    if not labels:
        return 4, "a map without labels has a single u32 key"
    if percpu and labels[-1].name == "cpu":
        if len(labels) == 1:
            return 4, "a per-CPU map whose only label is cpu has a u32 key"
        return total - labels[-1].size - labels[-1].padding, "the last label (cpu) comes from the CPU index"
    return total, "the label sizes plus paddings"


def check_maps(config: ProgramConfig, maps: dict[str, Map]) -> None:
    """Checks that each metric's map exists, holds u64 values and has the key size its labels add up to.

    Works on an opened or loaded object's maps; raises :class:`ConfigError`
    naming the config file and the metric's key.
    """
    for metric in config.metrics:
        if metric.name not in maps:
            known = ", ".join(sorted(maps)) or "none"
            raise ConfigError(
                config.file, f"{metric.key}.name", f"map {metric.name!r} is not in the object (its maps: {known})"
            )
        m = maps[metric.name]
        if m.value_size != 8:
            raise ConfigError(
                config.file, f"{metric.key}.name",
                f"map {metric.name!r} has {m.value_size}-byte values; a metric's map holds u64 values (8 bytes)",
            )  # fmt: skip
        percpu = m.type in PERCPU_TYPES
        expected, why = _expected_key_size(metric.labels, percpu)
        if expected != m.key_size:
            sizes = " + ".join(
                f"{lb.name} {lb.size}" + (f"+{lb.padding}" if lb.padding else "") for lb in metric.labels
            )
            raise ConfigError(
                config.file, f"{metric.key}.labels",
                f"map {metric.name!r} has {m.key_size}-byte keys but the labels take {expected} bytes "
                f"({sizes or 'no labels'}; {why})",
            )  # fmt: skip


class MetricMap:
    """One counter or histogram and the map it reads; :meth:`read` returns its samples."""

    def __init__(self, program: str, metric: CounterConfig | HistogramConfig, bpf_map: Map) -> None:
        self.program = program
        self.metric = metric
        self.map = bpf_map
        self.percpu = bpf_map.type in PERCPU_TYPES
        labels = metric.labels
        self.add_cpu = self.percpu and bool(labels) and labels[-1].name == "cpu"
        self.strip_u32 = self.add_cpu and len(labels) == 1
        self.key_size = bpf_map.key_size
        self._cache: dict[bytes, tuple[str, ...]] = {}
        # keys share parts (one syscall for many processes): each label's slice decodes once too
        self._slices: list[dict[bytes, str | None]] = [{} for _ in labels]
        self._layout = [(lb.size, lb.size + lb.padding, lb) for lb in labels]
        self._key_len = sum(step for _, step, _ in self._layout)
        self.decode_errors = 0
        """Keys whose labels failed to decode, over the exporter's life."""
        self.last_error = ""
        self.entries = 0
        """The number of entries the last read found."""

    @property
    def label_names(self) -> list[str]:
        """The Prometheus label names (a histogram's bucket label excluded)."""
        names = [lb.name for lb in self.metric.labels]
        return names[:-1] if isinstance(self.metric, HistogramConfig) else names

    def _labels(self, raw: bytes) -> tuple[str, ...]:
        found = self._cache.get(raw)
        if found is not None:
            return found
        if not self.metric.labels:
            if raw != _ZERO4:
                raise DecodeError(f"a map without labels has the single key 0, not {raw.hex()}")
            found = ()
        else:
            found = self._split(raw)
        if len(self._cache) > _CACHE_LIMIT:
            self._cache.clear()
        self._cache[raw] = found
        return found

    def _split(self, raw: bytes) -> tuple[str, ...]:
        if len(raw) != self._key_len:
            raise DecodeError(f"the labels take {self._key_len} bytes but the key has {len(raw)}")
        values: list[str] = []
        off = 0
        for (size, step, label), cache in zip(self._layout, self._slices, strict=True):
            part = raw[off : off + size]
            off += step
            if part in cache:
                text = cache[part]
            else:
                try:
                    text = decode_chain(part, label)
                except SkipLabelSet:
                    text = None
                if len(cache) > _CACHE_LIMIT:
                    cache.clear()
                cache[part] = text
            if text is None:
                return _SKIP
            values.append(text)
        return tuple(values)

    def _entries(self, batch: bool) -> tuple[bytes, list[int], int]:
        """(key blob, values as u64, entry count); per-CPU maps give ``count * ncpus`` values."""
        ks = self.key_size
        if batch:
            items = self.map.items(batch=True)  # type: ignore[attr-defined]
            n = len(items)
            keys = bytes(items.raw_keys)
            values = memoryview(items.raw_values).cast("B").cast("Q").tolist() if n else []
            return keys, values, n
        key_parts: list[bytes] = []
        values = []
        for raw in self.map._raw_keys():
            value = self.map.lookup_bytes(raw)
            if value is None:
                continue
            key_parts.append(raw)
            values.extend(memoryview(value).cast("Q").tolist())
        del ks
        return b"".join(key_parts), values, len(key_parts)

    def read(self, *, batch: bool = True) -> dict[tuple[str, ...], int]:
        """Reads the map: ``{label values: summed value}`` (histograms: the bucket value is the last label).

        Blocks on the map dump (one batch call per 4096 entries, or one lookup
        per key with ``batch=False``). Keys that do not decode are counted in
        :attr:`decode_errors` and left out; raises :class:`pyprobe.MapError`
        when the map cannot be read.
        """
        keys, values, n = self._entries(batch)
        self.entries = n
        ks = self.key_size
        out: dict[tuple[str, ...], int] = {}
        get = out.get
        if n == 0:
            return out
        if self.percpu:
            ncpus = len(values) // n
            for i in range(n):
                raw = keys[i * ks : (i + 1) * ks]
                row = values[i * ncpus : (i + 1) * ncpus]
                if self.add_cpu:
                    base = raw[4:] if self.strip_u32 and raw[:4] == _ZERO4 else raw
                    for cpu, v in enumerate(row):
                        labels = self._decoded(base + cpu.to_bytes(2, sys.byteorder))
                        if labels is not None:
                            out[labels] = get(labels, 0) + v
                else:
                    labels = self._decoded(raw)
                    if labels is not None:
                        out[labels] = get(labels, 0) + sum(row)
            return out
        for i in range(n):
            labels = self._decoded(keys[i * ks : (i + 1) * ks])
            if labels is not None:
                out[labels] = get(labels, 0) + values[i]
        return out

    def _decoded(self, raw: bytes) -> tuple[str, ...] | None:
        try:
            labels = self._labels(raw)
        except DecodeError as exc:
            self.decode_errors += 1
            self.last_error = str(exc)
            return None
        return None if labels is _SKIP else labels

    def histograms(
        self, *, batch: bool = True
    ) -> Iterator[tuple[tuple[str, ...], list[tuple[float, int]], int, float]]:
        """For a histogram: ``(labels, cumulative buckets, count, sum)`` per label set."""
        metric = self.metric
        assert isinstance(metric, HistogramConfig)
        groups: dict[tuple[str, ...], dict[float, int]] = {}
        for labels, value in self.read(batch=batch).items():
            try:
                bucket = float(int(labels[-1], 0))
            except ValueError:
                self.decode_errors += 1
                self.last_error = f"bucket label {labels[-1]!r} is not an unsigned integer"
                continue
            group = groups.setdefault(labels[:-1], {})
            group[bucket] = group.get(bucket, 0) + value
        for labels, counts in groups.items():
            buckets = transform(metric, counts)
            yield labels, buckets.buckets, buckets.count, buckets.sum
