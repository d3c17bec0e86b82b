"""What a sampler hands the Profiler: raw stacks of addresses, before symbolization."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

__all__ = ["RawStack", "Sampler"]


@dataclass(frozen=True, slots=True)
class RawStack:
    """``count`` samples of one thread with the same stacks: user and kernel IPs, leaf first, absolute addresses."""

    pid: int
    tid: int
    comm: str
    user: tuple[int, ...]
    kernel: tuple[int, ...]
    count: int


class Sampler(Protocol):
    """A source of samples: perf events and a BPF program, drained every interval."""

    def start(self) -> None: ...
    def drain(self) -> list[RawStack]: ...
    def close(self) -> None: ...
