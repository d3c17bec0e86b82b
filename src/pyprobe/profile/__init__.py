"""A sampling CPU profiler: on-CPU stacks through perf events and BPF, symbolized, written as flame graphs.

>>> from pyprobe.profile import Profiler
>>> with Profiler(pids=[1234], frequency=99) as profiler:
...     time.sleep(10)
>>> profiler.profile.write("out.svg")

See :class:`Profiler` (sampling), :class:`Profile` (the samples, ``folded()``,
``merge()``, ``filter()``, ``top()`` and the writers: ``.folded``, speedscope
``.json``, pprof ``.pb.gz``, ``.svg``). Needs root; kernel 4.9 or later.
"""

from __future__ import annotations

from pyprobe.profile._model import Frame, FrameKind, FunctionStats, Profile, Sample
from pyprobe.profile._profiler import CallGraph, Profiler
from pyprobe.profile._sampler import FramePointerSampler, RawStack, Sampler

__all__ = [
    "CallGraph", "Frame", "FrameKind", "FramePointerSampler", "FunctionStats", "Profile", "Profiler", "RawStack",
    "Sample", "Sampler",
]  # fmt: skip
