"""ebpf_exporter's YAML config format, read unchanged: which maps become which metrics.

A config directory holds ``NAME.yaml`` beside ``NAME.bpf.o``; the YAML has
``metrics:`` with ``counters:`` and ``histograms:``, each naming a map of the
object (the metric's ``name`` is the map's name) and the ``labels`` its key is
split into. Every error raised here is a :class:`ConfigError` naming the file
and the key at fault (``syscalls.yaml: metrics.counters[0].labels[1].decoders[0].name``).
Nothing here touches the kernel.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "BUCKET_TYPES",
    "ConfigError",
    "CounterConfig",
    "DecoderConfig",
    "HistogramConfig",
    "LabelConfig",
    "ProgramConfig",
    "config_from_dict",
    "load_config",
]

BUCKET_TYPES = ("exp2", "exp2zero", "linear", "fixed")
"""The histogram ``bucket_type`` values ebpf_exporter defines."""

_NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*\Z")
_LABEL = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*\Z")


class ConfigError(ValueError):
    """A config that cannot be used; ``file`` and ``key`` say where (``key`` is a dotted path)."""

    __module__ = "pyprobe.export"

    def __init__(self, file: str, key: str, message: str) -> None:
        self.file = file
        self.key = key
        self.message = message
        where = f"{file}: {key}" if key else file
        super().__init__(f"{where}: {message}")


@dataclass(frozen=True)
class DecoderConfig:
    """One step of a label's decoder chain (``name`` plus its own settings)."""

    name: str
    static_map: Mapping[str, str] | None = None
    regexps: tuple[str, ...] | None = None
    allow_unknown: bool = False


@dataclass(frozen=True)
class LabelConfig:
    """A slice of the map key: ``size`` bytes, then ``padding`` bytes skipped, decoded by ``decoders``."""

    name: str
    size: int
    padding: int = 0
    decoders: tuple[DecoderConfig, ...] = ()


@dataclass(frozen=True)
class CounterConfig:
    """A map read as a counter: its key gives the labels, its u64 value the count."""

    name: str
    help: str
    labels: tuple[LabelConfig, ...] = ()
    perf_event_array: bool = False
    key: str = ""
    """Where the counter is in its config (for error messages)."""


@dataclass(frozen=True)
class HistogramConfig:
    """A map read as a histogram: the key's last label is the bucket, the others the labels."""

    name: str
    help: str
    bucket_type: str
    bucket_min: int = 0
    bucket_max: int = 0
    bucket_multiplier: float = 1.0
    bucket_keys: tuple[float, ...] = ()
    labels: tuple[LabelConfig, ...] = ()
    key: str = ""


@dataclass(frozen=True)
class ProgramConfig:
    """One config: its ``name``, its metrics and the object (``bpf_path``) they come from."""

    name: str
    file: str
    """The YAML file (or ``<dict NAME>`` for a config given as a dict): named in errors."""
    counters: tuple[CounterConfig, ...] = ()
    histograms: tuple[HistogramConfig, ...] = ()
    bpf_path: str | None = None
    kaddrs: tuple[str, ...] = ()
    extra: Mapping[str, Any] = field(default_factory=dict)
    """Top-level keys this exporter reads but does not act on (``tracing``, ``cgroup_id_map``)."""

    @property
    def metrics(self) -> list[CounterConfig | HistogramConfig]:
        """The counters, then the histograms."""
        return [*self.counters, *self.histograms]

    @property
    def metric_maps(self) -> list[str]:
        """The names of the maps the metrics read (counters fed by perf event arrays excluded)."""
        names = [c.name for c in self.counters if not c.perf_event_array]
        return names + [h.name for h in self.histograms]


class _Reader:
    """Typed access to a parsed YAML node that raises ConfigError with the key's path."""

    def __init__(self, file: str) -> None:
        self.file = file

    def fail(self, key: str, message: str) -> ConfigError:
        return ConfigError(self.file, key, message)

    def mapping(self, node: object, key: str) -> Mapping[str, Any]:
        if not isinstance(node, Mapping):
            raise self.fail(key, f"must be a mapping, not {type(node).__name__}")
        for k in node:
            if not isinstance(k, str):
                raise self.fail(key, f"has a key that is not a string: {k!r}")
        return node

    def sequence(self, node: object, key: str) -> Sequence[Any]:
        if node is None:
            return ()
        if not isinstance(node, list):
            raise self.fail(key, f"must be a list, not {type(node).__name__}")
        return node

    def string(self, node: Mapping[str, Any], name: str, key: str, *, required: bool = True) -> str:
        value = node.get(name)
        if value is None:
            if required:
                raise self.fail(f"{key}.{name}", "is missing")
            return ""
        if not isinstance(value, str) or (required and not value):
            raise self.fail(f"{key}.{name}", f"must be a non-empty string, not {value!r}")
        return value

    def integer(self, node: Mapping[str, Any], name: str, key: str, *, default: int = 0, low: int = 0) -> int:
        value = node.get(name, default)
        if value is None:
            return default
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise self.fail(f"{key}.{name}", f"must be an integer >= {low}, not {value!r}")
        return value

    def number(self, node: Mapping[str, Any], name: str, key: str, default: float) -> float:
        value = node.get(name, default)
        if value is None:
            return default
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self.fail(f"{key}.{name}", f"must be a number, not {value!r}")
        return float(value)

    def known(self, node: Mapping[str, Any], allowed: Sequence[str], key: str) -> None:
        for name in node:
            if name not in allowed:
                raise self.fail(f"{key}.{name}", f"unknown key (known: {', '.join(allowed)})")


def _decoder(r: _Reader, node: object, key: str) -> DecoderConfig:
    from pyprobe.export.decoders import DECODERS

    d = r.mapping(node, key)
    r.known(d, ("name", "static_map", "regexps", "allow_unknown"), key)
    name = r.string(d, "name", key)
    if name not in DECODERS:
        raise r.fail(f"{key}.name", f"unknown decoder {name!r} (known: {', '.join(sorted(DECODERS))})")
    static_map: dict[str, str] | None = None
    if d.get("static_map") is not None:
        raw = d["static_map"]
        if not isinstance(raw, Mapping):
            raise r.fail(f"{key}.static_map", f"must be a mapping, not {type(raw).__name__}")
        # YAML reads `1: read` with an int key; ebpf_exporter's map[string]string reads it as "1"
        static_map = {str(k): str(v) for k, v in raw.items()} if raw else {}
    elif name == "static_map":
        raise r.fail(f"{key}.static_map", "is missing (the static_map decoder needs its mapping)")
    regexps: tuple[str, ...] | None = None
    if d.get("regexps") is not None:
        items = r.sequence(d["regexps"], f"{key}.regexps")
        for i, expr in enumerate(items):
            if not isinstance(expr, str):
                raise r.fail(f"{key}.regexps[{i}]", f"must be a string, not {expr!r}")
            try:
                re.compile(expr)
            except re.error as exc:
                raise r.fail(f"{key}.regexps[{i}]", f"is not a valid regular expression: {exc}") from exc
        regexps = tuple(items)
    elif name == "regexp":
        raise r.fail(f"{key}.regexps", "is missing (the regexp decoder needs a list of expressions)")
    allow = d.get("allow_unknown", False)
    if not isinstance(allow, bool):
        raise r.fail(f"{key}.allow_unknown", f"must be true or false, not {allow!r}")
    return DecoderConfig(name=name, static_map=static_map, regexps=regexps, allow_unknown=allow)


def _labels(r: _Reader, node: object, key: str) -> tuple[LabelConfig, ...]:
    labels: list[LabelConfig] = []
    seen: set[str] = set()
    for i, item in enumerate(r.sequence(node, key)):
        lkey = f"{key}[{i}]"
        d = r.mapping(item, lkey)
        r.known(d, ("name", "size", "padding", "decoders"), lkey)
        name = r.string(d, "name", lkey)
        if not _LABEL.match(name):
            raise r.fail(f"{lkey}.name", f"{name!r} is not a valid Prometheus label name")
        if name in seen:
            raise r.fail(f"{lkey}.name", f"label {name!r} appears twice")
        seen.add(name)
        if "size" not in d:
            raise r.fail(f"{lkey}.size", "is missing (the number of key bytes this label takes)")
        size = r.integer(d, "size", lkey, default=0, low=1)
        padding = r.integer(d, "padding", lkey)
        decs = r.sequence(d.get("decoders"), f"{lkey}.decoders")
        if not decs:
            raise r.fail(f"{lkey}.decoders", "is missing or empty (a label needs at least one decoder)")
        decoders = tuple(_decoder(r, dec, f"{lkey}.decoders[{j}]") for j, dec in enumerate(decs))
        labels.append(LabelConfig(name=name, size=size, padding=padding, decoders=decoders))
    return tuple(labels)


def _metric_name(r: _Reader, d: Mapping[str, Any], key: str) -> str:
    name = r.string(d, "name", key)
    if not _NAME.match(name):
        raise r.fail(f"{key}.name", f"{name!r} is not a valid Prometheus metric name")
    return name


def _counter(r: _Reader, node: object, key: str) -> CounterConfig:
    d = r.mapping(node, key)
    r.known(d, ("name", "help", "labels", "perf_event_array", "flush_interval"), key)
    pea = d.get("perf_event_array", False)
    if not isinstance(pea, bool):
        raise r.fail(f"{key}.perf_event_array", f"must be true or false, not {pea!r}")
    if pea:
        raise r.fail(f"{key}.perf_event_array", "counters fed by a perf event array are not supported")
    return CounterConfig(
        name=_metric_name(r, d, key),
        help=r.string(d, "help", key),
        labels=_labels(r, d.get("labels"), f"{key}.labels"),
        key=key,
    )


def _histogram(r: _Reader, node: object, key: str) -> HistogramConfig:
    d = r.mapping(node, key)
    r.known(
        d,
        ("name", "help", "labels", "bucket_type", "bucket_min", "bucket_max", "bucket_multiplier", "bucket_keys"),
        key,
    )
    name = _metric_name(r, d, key)
    bucket_type = r.string(d, "bucket_type", key)
    if bucket_type not in BUCKET_TYPES:
        raise r.fail(f"{key}.bucket_type", f"unknown bucket type {bucket_type!r} (known: {', '.join(BUCKET_TYPES)})")
    low = r.integer(d, "bucket_min", key)
    high = r.integer(d, "bucket_max", key)
    multiplier = r.number(d, "bucket_multiplier", key, 1.0)
    if multiplier == 0:
        multiplier = 1.0  # as ebpf_exporter: an unset (zero) multiplier means 1
    keys: tuple[float, ...] = ()
    if bucket_type == "fixed":
        raw = r.sequence(d.get("bucket_keys"), f"{key}.bucket_keys")
        if not raw:
            raise r.fail(f"{key}.bucket_keys", "is missing or empty (a fixed histogram lists its bucket keys)")
        for i, k in enumerate(raw):
            if isinstance(k, bool) or not isinstance(k, int | float):
                raise r.fail(f"{key}.bucket_keys[{i}]", f"must be a number, not {k!r}")
            if i and k <= raw[i - 1]:
                raise r.fail(f"{key}.bucket_keys[{i}]", "bucket keys must increase")
        keys = tuple(float(k) for k in raw)
    elif high <= low:
        raise r.fail(f"{key}.bucket_max", f"must be above bucket_min ({low}), not {high}")
    labels = _labels(r, d.get("labels"), f"{key}.labels")
    if not labels:
        raise r.fail(f"{key}.labels", "is missing (a histogram's last label is its bucket)")
    return HistogramConfig(
        name=name, help=r.string(d, "help", key), bucket_type=bucket_type, bucket_min=low, bucket_max=high,
        bucket_multiplier=multiplier, bucket_keys=keys, labels=labels, key=key,
    )  # fmt: skip


def config_from_dict(name: str, data: Mapping[str, Any], *, file: str | None = None) -> ProgramConfig:
    """Checks a config given as a dict (the YAML's shape) and returns it; raises :class:`ConfigError`.

    ``file`` is what errors name (default ``<config NAME>``). The result has no
    ``bpf_path``: use it with :meth:`Exporter.add_object` for an object the
    caller loaded.
    """
    r = _Reader(file or f"<config {name}>")
    d = r.mapping(data, "")
    r.known(d, ("metrics", "tracing", "kaddrs", "cgroup_id_map"), "(top level)")
    metrics = r.mapping(d.get("metrics") or {}, "metrics")
    r.known(metrics, ("counters", "histograms"), "metrics")
    counters = tuple(
        _counter(r, c, f"metrics.counters[{i}]")
        for i, c in enumerate(r.sequence(metrics.get("counters"), "metrics.counters"))
    )
    histograms = tuple(
        _histogram(r, h, f"metrics.histograms[{i}]")
        for i, h in enumerate(r.sequence(metrics.get("histograms"), "metrics.histograms"))
    )
    if not counters and not histograms:
        raise r.fail("metrics", "defines no counters and no histograms")
    seen: dict[str, str] = {}
    every: list[CounterConfig | HistogramConfig] = [*counters, *histograms]
    for metric in every:
        if metric.name in seen:
            raise r.fail(f"{metric.key}.name", f"map {metric.name!r} is already used by {seen[metric.name]}")
        seen[metric.name] = metric.key
    kaddrs_raw = r.sequence(d.get("kaddrs"), "kaddrs")
    for i, k in enumerate(kaddrs_raw):
        if not isinstance(k, str) or not k:
            raise r.fail(f"kaddrs[{i}]", f"must be a kernel symbol name, not {k!r}")
    extra = {k: d[k] for k in ("tracing", "cgroup_id_map") if d.get(k)}
    return ProgramConfig(
        name=name, file=r.file, counters=counters, histograms=histograms, kaddrs=tuple(kaddrs_raw), extra=extra
    )


def _read_yaml(path: str) -> object:
    try:
        import yaml
    except ImportError as exc:  # pragma: no cover - the extra is missing
        raise ImportError("pyprobe.export needs PyYAML: pip install pyprobe[export]") from exc
    try:
        with open(path, encoding="utf-8") as f:
            return yaml.safe_load(f)
    except OSError as exc:
        raise ConfigError(path, "", f"cannot read: {exc.strerror or exc}") from exc
    except yaml.YAMLError as exc:
        raise ConfigError(path, "", f"is not valid YAML: {exc}") from exc


def load_config(path: str | os.PathLike[str], names: Sequence[str] | None = None) -> list[ProgramConfig]:
    """Reads configs from a directory (``NAME.yaml`` beside ``NAME.bpf.o``) or one YAML file.

    ``names`` picks configs in a directory (default: every ``*.yaml`` that has
    its ``.bpf.o``); each named one must exist. Raises :class:`ConfigError`
    naming the file and key at fault; blocks only on reading the files.
    """
    path = os.fspath(path)
    if os.path.isdir(path):
        if names:
            chosen = list(dict.fromkeys(names))
        else:
            chosen = sorted(
                f.removesuffix(".yaml")
                for f in os.listdir(path)
                if f.endswith(".yaml") and os.path.exists(os.path.join(path, f.removesuffix(".yaml") + ".bpf.o"))
            )
            if not chosen:
                raise ConfigError(path, "", "holds no NAME.yaml beside a NAME.bpf.o")
        files = [os.path.join(path, f"{n}.yaml") for n in chosen]
    elif os.path.isfile(path):
        base = os.path.basename(path)
        name = base.removesuffix(".yaml").removesuffix(".yml")
        if names and name not in names:
            raise ConfigError(path, "", f"is config {name!r}, not one of --names {','.join(names)}")
        files = [path]
    else:
        raise ConfigError(path, "", "no such file or directory")
    configs: list[ProgramConfig] = []
    for file in files:
        name = os.path.basename(file).removesuffix(".yaml").removesuffix(".yml")
        if not os.path.exists(file):
            raise ConfigError(file, "", f"no config named {name!r} (no such file)")
        cfg = config_from_dict(name, _yaml_mapping(file), file=file)
        bpf = os.path.join(os.path.dirname(file), f"{name}.bpf.o")
        if not os.path.exists(bpf):
            raise ConfigError(file, "", f"its object {bpf} does not exist")
        configs.append(_with_path(cfg, bpf))
    return configs


def _yaml_mapping(file: str) -> Mapping[str, Any]:
    data = _read_yaml(file)
    if data is None:
        raise ConfigError(file, "", "is empty")
    if not isinstance(data, Mapping):
        raise ConfigError(file, "", f"must hold a mapping at the top, not {type(data).__name__}")
    return data


def _with_path(cfg: ProgramConfig, bpf: str) -> ProgramConfig:
    from dataclasses import replace

    return replace(cfg, bpf_path=bpf)
