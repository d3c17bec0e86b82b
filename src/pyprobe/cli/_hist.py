"""Log2 histograms: terminal bars, count, average and percentiles (pure functions)."""

from __future__ import annotations

from collections.abc import Sequence

__all__ = ["percentile", "render", "summary"]

_UNITS = ((1_000_000_000, "s"), (1_000_000, "ms"), (1_000, "us"), (1, "ns"))


def _human(ns: float) -> str:
    for scale, unit in _UNITS:
        if ns >= scale:
            value = ns / scale
            return f"{value:.0f}{unit}" if value >= 100 or value == int(value) else f"{value:.3g}{unit}"
    return f"{ns:.0f}ns"


def _bounds(slot: int) -> tuple[int, int]:
    """Slot i holds values in [2^i, 2^(i+1)); slot 0 also holds 0."""
    return (0 if slot == 0 else 1 << slot), (1 << (slot + 1)) - 1


def percentile(slots: Sequence[int], p: float) -> int:
    """The upper bound (ns) of the slot where the ``p``-th percentile (0-100) falls; 0 for no data."""
    total = sum(slots)
    if total == 0:
        return 0
    rank = max(1, -(-total * p // 100))
    seen = 0
    for i, n in enumerate(slots):
        seen += n
        if seen >= rank:
            return _bounds(i)[1]
    return _bounds(len(slots) - 1)[1]


def render(slots: Sequence[int], *, width: int = 40, unit: str = "nsecs") -> str:
    """The histogram as rows of ``low -> high : count |****|``, trimmed to the used slots."""
    used = [i for i, n in enumerate(slots) if n]
    if not used:
        return "(no calls)\n"
    first, last = used[0], used[-1]
    peak = max(slots)
    rows = [f"{unit:>24} : {'count':<9} distribution"]
    for i in range(first, last + 1):
        lo, hi = _bounds(i)
        n = slots[i]
        bar = "*" * (n * width // peak if peak else 0)
        if n and not bar:
            bar = "*" if n * width * 2 >= peak else ""
        rows.append(f"{lo:>11} -> {hi:<10} : {n:<9} |{bar:<{width}}|")
    return "\n".join(rows) + "\n"


def summary(slots: Sequence[int], count: int, total_ns: int) -> str:
    """``count N, avg T, p50 <= T, p90 <= T, p99 <= T, max < T``."""
    if count == 0:
        return "count 0"
    parts = [f"count {count}", f"avg {_human(total_ns / count)}"]
    for p in (50, 90, 99):
        parts.append(f"p{p} <= {_human(percentile(slots, p))}")
    return ", ".join(parts)
