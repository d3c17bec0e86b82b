"""A sampling CPU profiler."""

from pyprobe.profile._sampler import RawStack, Sampler

__all__ = ["RawStack", "Sampler"]
