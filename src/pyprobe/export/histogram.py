"""ebpf_exporter's histogram semantics: map buckets to Prometheus' cumulative ``le`` buckets.

The map key's last label is a bucket index (``exp2``: the bucket of values up
to 2^i, ``exp2zero``: bucket 0 holds zeros and bucket i values up to
2^(i-1), ``linear``: i, ``fixed``: the listed ``bucket_keys``), scaled by
``bucket_multiplier``. Every bucket from ``bucket_min`` to ``bucket_max`` is
reported (missing ones as empty), counts are cumulative, the count is the
total of those buckets, and the sum is the value stored under the key one
past the last bucket (``bucket_max + 1``, or the last ``bucket_keys`` + 1)
times the multiplier, 0 when the program stores none. Entries in other
buckets are left out, as ebpf_exporter leaves them out.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from pyprobe.export.config import HistogramConfig

__all__ = ["Buckets", "bucket_bounds", "transform"]


@dataclass(frozen=True)
class Buckets:
    """A histogram ready for Prometheus: ``(upper bound, cumulative count)`` pairs, count and sum."""

    buckets: list[tuple[float, int]]
    count: int
    sum: float


def _bound(config: HistogramConfig, key: float) -> float:
    m = config.bucket_multiplier
    if config.bucket_type == "exp2":
        return float(2.0**key * m)
    if config.bucket_type == "exp2zero":
        return 0.0 if key == 0 else float(2.0 ** (key - 1) * m)
    return key * m  # linear and fixed


def _keys(config: HistogramConfig) -> list[float]:
    if config.bucket_type == "fixed":
        return list(config.bucket_keys)
    return [float(i) for i in range(config.bucket_min, config.bucket_max + 1)]


def bucket_bounds(config: HistogramConfig) -> list[float]:
    """The upper bounds (``le``) a histogram reports, in order (without +Inf)."""
    return [_bound(config, k) for k in _keys(config)]


def transform(config: HistogramConfig, counts: Mapping[float, int]) -> Buckets:
    """Turns ``{bucket key: count}`` read from a map into cumulative buckets, count and sum."""
    keys = _keys(config)
    total = 0
    out: list[tuple[float, int]] = []
    for key in keys:
        total += counts.get(key, 0)
        out.append((_bound(config, key), total))
    sum_key = keys[-1] + 1
    return Buckets(out, total, counts.get(sum_key, 0) * config.bucket_multiplier)
