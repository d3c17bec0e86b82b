"""Probes as Prometheus metrics: ebpf_exporter's configs served from Python.

``pyprobe export --config DIR`` runs it as a service; as a library:

>>> from pyprobe.export import Exporter, load_config
>>> exporter = Exporter()
>>> for config in load_config("/etc/pyprobe-exporter", names=["syscalls"]):
...     exporter.add(config)              # open, check, load, attach
>>> exporter.add_object(my_obj, {"metrics": {"counters": [...]}}, name="mytool")
>>> exporter.registry                     # a prometheus_client CollectorRegistry

Needs the optional packages of ``pip install pyprobe[export]``
(prometheus_client, PyYAML; bcrypt for basic auth); ``import pyprobe`` never
imports them.
"""

from __future__ import annotations

try:
    import prometheus_client  # noqa: F401
    import yaml  # noqa: F401
except ImportError as exc:  # pragma: no cover - depends on the installed extras
    raise ImportError(
        f"pyprobe.export needs the package {exc.name!r}: pip install pyprobe[export]", name=exc.name
    ) from exc

from pyprobe.export.collector import MetricMap, check_maps
from pyprobe.export.config import (
    ConfigError,
    CounterConfig,
    DecoderConfig,
    HistogramConfig,
    LabelConfig,
    ProgramConfig,
    config_from_dict,
    load_config,
)
from pyprobe.export.decoders import DECODERS, DecodeError, SkipLabelSet
from pyprobe.export.exporter import (
    NAMESPACE,
    ExportedProgram,
    Exporter,
    MapCollector,
    ProgramStats,
    bpf_stats_enabled,
    enable_bpf_stats,
)

__all__ = [
    "DECODERS",
    "NAMESPACE",
    "ConfigError",
    "CounterConfig",
    "DecodeError",
    "DecoderConfig",
    "ExportedProgram",
    "Exporter",
    "HistogramConfig",
    "LabelConfig",
    "MapCollector",
    "MetricMap",
    "ProgramConfig",
    "ProgramStats",
    "SkipLabelSet",
    "bpf_stats_enabled",
    "check_maps",
    "config_from_dict",
    "enable_bpf_stats",
    "load_config",
]
