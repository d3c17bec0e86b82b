"""The exporter: configs' objects loaded and attached, their maps exposed as Prometheus metrics.

>>> with Exporter() as exporter:
...     for config in load_config("examples/exporter"):
...         exporter.add(config)
...     print(generate_latest(exporter.registry).decode())

``Exporter.add(config)`` opens the config's ``.bpf.o``, checks every metric
map against the config (before anything is loaded or attached), loads it and
attaches its programs: what libbpf knows through pyprobe's attach, and the
sections ebpf_exporter handles itself (``xdp/IFACE``, ``perf_event/type=T,
config=C,frequency=F``). ``Exporter.add_object(obj, config)`` exposes the
maps of an object the caller loaded and keeps owning. Metrics are read from
the maps when the registry is collected (a scrape).
"""

from __future__ import annotations

import ctypes
import os
import platform
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, cast

from prometheus_client.core import (
    CollectorRegistry,
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.utils import floatToGoString as _go_float

import pyprobe
from pyprobe.enums import AttachType, ProgramType
from pyprobe.export.collector import MetricMap, check_maps
from pyprobe.export.config import ConfigError, CounterConfig, ProgramConfig, config_from_dict
from pyprobe.perf_event import HARDWARE_EVENTS, PERF_TYPE_HARDWARE, PERF_TYPE_SOFTWARE, SOFTWARE_EVENTS, open_sampling

if TYPE_CHECKING:
    from pyprobe.link import Link
    from pyprobe.object import BpfObject
    from pyprobe.program import Program

__all__ = [
    "NAMESPACE",
    "Exporter",
    "ExportedProgram",
    "MapCollector",
    "ProgramStats",
    "bpf_stats_enabled",
    "enable_bpf_stats",
]

NAMESPACE = "ebpf_exporter"
"""The prefix of every metric name, ebpf_exporter's (so its dashboards and queries work unchanged)."""

_float_text = cast("Callable[[float], str]", _go_float)  # how Go (and Prometheus) writes an `le` bound

BPF_STATS_FILE = "/proc/sys/kernel/bpf_stats_enabled"


@dataclass
class ProgramStats:
    """A loaded program's id, tag and (when BPF stats are on) run count and run time, from its fdinfo."""

    id: int = 0
    tag: str = ""
    run_count: int = 0
    run_time_ns: int = 0


def program_stats(prog: Program) -> ProgramStats:
    """Reads ``/proc/self/fdinfo/FD`` of a loaded program (no system call beyond the read)."""
    stats = ProgramStats()
    try:
        with open(f"/proc/self/fdinfo/{prog.fd}", encoding="ascii") as f:
            for line in f:
                key, _, value = line.partition(":")
                value = value.strip()
                if key == "prog_id":
                    stats.id = int(value)
                elif key == "prog_tag":
                    stats.tag = value
                elif key == "run_cnt":
                    stats.run_count = int(value)
                elif key == "run_time_ns":
                    stats.run_time_ns = int(value)
    except (OSError, ValueError):
        pass
    return stats


def bpf_stats_enabled() -> bool:
    """Whether the kernel counts programs' runs and run time (``kernel.bpf_stats_enabled`` or a BPF_ENABLE_STATS fd)."""
    try:
        with open(BPF_STATS_FILE, encoding="ascii") as f:
            return f.read(1) == "1"
    except OSError:
        return False


_BPF_SYSCALL = {"x86_64": 321, "aarch64": 280}
_BPF_ENABLE_STATS = 32


def enable_bpf_stats() -> int:
    """Turns on BPF run statistics with BPF_ENABLE_STATS; returns the fd that keeps them on (close it to stop).

    Needs CAP_SYS_ADMIN and kernel 5.8; raises :class:`pyprobe.BpfError` otherwise.
    """
    number = _BPF_SYSCALL.get(platform.machine())
    if number is None:
        raise pyprobe.UnsupportedError(0, f"BPF_ENABLE_STATS on {platform.machine()}", context="enable BPF stats")
    libc = ctypes.CDLL(None, use_errno=True)
    attr = (ctypes.c_uint32 * 4)(0)  # enable_stats.type = BPF_STATS_RUN_TIME (0)
    fd = int(libc.syscall(ctypes.c_long(number), ctypes.c_int(_BPF_ENABLE_STATS), attr, ctypes.c_uint(16)))
    if fd < 0:
        err = ctypes.get_errno()
        raise pyprobe.errors.error_from_errno(err, "enable BPF stats (BPF_ENABLE_STATS)", pyprobe.BpfError)
    return fd


@dataclass
class ExportedProgram:
    """One config's object as exported: its links, metric maps and whether the exporter owns the object."""

    config: ProgramConfig
    obj: BpfObject
    owned: bool
    links: list[Link] = field(default_factory=list)
    metrics: list[MetricMap] = field(default_factory=list)

    @property
    def decode_errors(self) -> int:
        """Map keys that failed to decode so far, over all the config's metrics."""
        return sum(m.decode_errors for m in self.metrics)


def _perf_section(config: ProgramConfig, prog: Program) -> tuple[str, int]:
    """(event name, frequency) of a ``perf_event/type=T,config=C,frequency=F`` section."""
    key = f'program {prog.name!r} (SEC("{prog.section}"))'
    values: dict[str, int] = {}
    for item in prog.section.removeprefix("perf_event/").split(","):
        name, sep, text = item.partition("=")
        if not sep or name not in ("type", "config", "frequency"):
            raise ConfigError(config.file, key, f"invalid perf_event item {item!r} (type=, config=, frequency=)")
        try:
            values[name] = int(text, 0)
        except ValueError:
            raise ConfigError(config.file, key, f"perf_event item {item!r} is not an integer") from None
    ptype, pconfig = values.get("type", PERF_TYPE_SOFTWARE), values.get("config", 0)
    table = {PERF_TYPE_SOFTWARE: SOFTWARE_EVENTS, PERF_TYPE_HARDWARE: HARDWARE_EVENTS}.get(ptype, {})
    event = next((n for n, c in table.items() if c == pconfig), None)
    if event is None:
        raise ConfigError(
            config.file, key, f"perf event type={ptype} config={pconfig} is not a known software or hardware event"
        )
    return event, values.get("frequency", 99)


class Exporter:
    """Loaded objects and their maps as Prometheus metrics (``registry``, ``collector``).

    Owns the objects it loads (:meth:`add`), their links and perf events;
    objects given to :meth:`add_object` stay the caller's. ``close()`` (or
    leaving a ``with`` block) detaches and closes what it owns. Thread-safe:
    scrapes may come from several HTTP threads.
    """

    def __init__(self, *, batch: bool = True, bpf_stats: bool = False) -> None:
        """``batch=False`` reads maps one lookup per key (slower; for comparison).

        ``bpf_stats=True`` turns on the kernel's run statistics for the
        exporter's life (BPF_ENABLE_STATS) so run counts and times are exported.
        """
        self.programs: list[ExportedProgram] = []
        self.batch = batch
        self._lock = threading.RLock()
        self._closed = False
        self._stats_fd = enable_bpf_stats() if bpf_stats else -1
        self.collector = MapCollector(self)
        """The prometheus_client collector reading the maps at each collect()."""
        self.registry = CollectorRegistry(auto_describe=False)
        """A registry holding :attr:`collector` (the maps' metrics and the exporter's own)."""
        self.registry.register(self.collector)

    # --- adding programs -------------------------------------------------------------------
    def _check_name(self, name: str, file: str) -> None:
        if any(p.config.name == name for p in self.programs):
            raise ConfigError(file, "", f"a config named {name!r} is already exported")

    def add(self, config: ProgramConfig) -> ExportedProgram:
        """Opens ``config.bpf_path``, checks its maps against the config, loads it and attaches its programs.

        Raises :class:`ConfigError` (file and key at fault) before anything is
        loaded when the object does not match the config, and pyprobe's
        LoadError / AttachError / UnsupportedError when the kernel refuses; on
        any error nothing stays attached. Blocks on the verifier and attaches.
        """
        if config.bpf_path is None:
            raise ConfigError(config.file, "", "has no object (bpf_path): use add_object() with a loaded object")
        with self._lock:
            self._check_open()
            self._check_name(config.name, config.file)
            obj = pyprobe.open(config.bpf_path)
            try:
                check_maps(config, dict(obj.maps))
                custom = self._prepare(config, obj)
                self._set_kaddrs(config, obj)
                obj.load()
                exported = ExportedProgram(config, obj, owned=True)
                exported.links = self._attach(config, obj, custom)
                exported.metrics = self._metric_maps(config, obj)
            except BaseException:
                obj.close()
                raise
            self.programs.append(exported)
            return exported

    def add_object(
        self, obj: BpfObject, config: ProgramConfig | Mapping[str, Any], *, name: str | None = None
    ) -> ExportedProgram:
        """Exposes the maps of a loaded object ``obj`` with a config (a :class:`ProgramConfig` or its dict).

        The caller keeps owning ``obj`` and its links; ``close()`` leaves them
        alone. ``name`` names a dict config (default: the object's name).
        Raises :class:`ConfigError` when a map does not match.
        """
        if not isinstance(config, ProgramConfig):
            config = config_from_dict(name or obj.name, config)
        with self._lock:
            self._check_open()
            self._check_name(config.name, config.file)
            if obj.state != "loaded":
                raise ConfigError(config.file, "", f"object {obj.name!r} is {obj.state}, not loaded")
            check_maps(config, dict(obj.maps))
            exported = ExportedProgram(config, obj, owned=False, links=obj.links)
            exported.metrics = self._metric_maps(config, obj)
            self.programs.append(exported)
            return exported

    @staticmethod
    def _metric_maps(config: ProgramConfig, obj: BpfObject) -> list[MetricMap]:
        return [MetricMap(config.name, m, obj.maps[m.name]) for m in config.metrics]

    @staticmethod
    def _prepare(config: ProgramConfig, obj: BpfObject) -> dict[str, tuple[str, Any]]:
        """Sets the type of programs in sections libbpf does not know; returns those attached here."""
        custom: dict[str, tuple[str, Any]] = {}
        for prog in obj.programs.values():
            if prog.section.startswith("xdp/"):
                iface = prog.section.removeprefix("xdp/")
                prog.type = ProgramType.XDP
                prog.attach_type = AttachType.XDP  # what libbpf sets for SEC("xdp"); XDP links need it
                custom[prog.name] = ("xdp", iface)
            elif prog.section.startswith("perf_event/"):
                custom[prog.name] = ("perf_event", _perf_section(config, prog))
                prog.type = ProgramType.PERF_EVENT
            else:
                continue
            prog.autoattach = False
        return custom

    @staticmethod
    def _set_kaddrs(config: ProgramConfig, obj: BpfObject) -> None:
        if not config.kaddrs:
            return
        addrs: dict[str, int] = {}
        with open("/proc/kallsyms", encoding="utf-8", errors="replace") as f:
            for line in f:
                parts = line.split()
                if len(parts) >= 3 and parts[2] in config.kaddrs:
                    addrs.setdefault(parts[2], int(parts[0], 16))
        for i, sym in enumerate(config.kaddrs):
            if sym not in addrs:
                raise ConfigError(config.file, f"kaddrs[{i}]", f"kernel symbol {sym!r} is not in /proc/kallsyms")
            try:
                setattr(obj.rodata, f"kaddr_{sym}", addrs[sym])
            except (AttributeError, KeyError) as exc:
                raise ConfigError(
                    config.file, f"kaddrs[{i}]", f"the object has no `const volatile u64 kaddr_{sym}` to set"
                ) from exc

    @staticmethod
    def _attach(config: ProgramConfig, obj: BpfObject, custom: dict[str, tuple[str, Any]]) -> list[Link]:
        links: list[Link] = []
        try:
            links.extend(obj.attach())
            for prog_name, (kind, target) in custom.items():
                prog = obj.programs[prog_name]
                if prog.fd < 0:
                    continue
                if kind == "xdp":
                    links.append(prog.attach_xdp(target))
                    continue
                event, frequency = target
                events = open_sampling(event, frequency=frequency)
                try:
                    links.extend(prog.attach_perf_event(ev) for ev in events)
                finally:
                    for ev in events:  # each link holds its own duplicate of the fd
                        ev.close()
        except BaseException:
            for link in links:
                link.detach()
            raise
        return links

    # --- life -------------------------------------------------------------------------------
    def _check_open(self) -> None:
        if self._closed:
            raise pyprobe.ClosedError(0, "used after close()", context="exporter")

    @property
    def stats_enabled(self) -> bool:
        """Whether programs' run counts and times are counted: the sysctl, or this exporter's ``bpf_stats``."""
        return self._stats_fd >= 0 or bpf_stats_enabled()

    @property
    def closed(self) -> bool:
        """True once :meth:`close` ran."""
        return self._closed

    def close(self) -> None:
        """Detaches the links and closes the objects the exporter loaded; later scrapes give no map metrics."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            for exported in self.programs:
                if exported.owned:
                    for link in exported.links:
                        link.detach()
                    exported.obj.close()
            self.programs = []
            if self._stats_fd >= 0:
                os.close(self._stats_fd)
                self._stats_fd = -1

    def __enter__(self) -> Exporter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _counter(name: str, help_text: str, labels: Iterable[str]) -> CounterMetricFamily:
    return CounterMetricFamily(f"{NAMESPACE}_{name}", help_text, labels=list(labels))


class MapCollector:
    """A prometheus_client collector: each :meth:`collect` reads every metric map of the exporter."""

    def __init__(self, exporter: Exporter) -> None:
        self._exporter = exporter
        self.last_duration = 0.0
        """Seconds the last collect spent reading and decoding maps."""

    def collect(self) -> Iterator[Metric]:
        """The maps' metrics, then the exporter's own. Blocks on the map reads (one batch dump per map)."""
        exporter = self._exporter
        with exporter._lock:
            if exporter.closed:
                return iter(())
            out: list[Metric] = []
            start = time.perf_counter()
            for exported in exporter.programs:
                for mm in exported.metrics:
                    out.append(self._metric(mm, exporter.batch))
            self.last_duration = time.perf_counter() - start
            out.extend(self._own(exporter.programs, exporter.stats_enabled))
            return iter(out)

    @staticmethod
    def _metric(mm: MetricMap, batch: bool) -> Metric:
        metric = mm.metric
        name = f"{NAMESPACE}_{metric.name}"
        if isinstance(metric, CounterConfig):
            family: Metric = CounterMetricFamily(name, metric.help, labels=mm.label_names)
            for labels, value in mm.read(batch=batch).items():
                family.add_metric(list(labels), float(value))  # type: ignore[attr-defined]
            return family
        hist = HistogramMetricFamily(name, metric.help, labels=mm.label_names)
        for labels, buckets, count, total in mm.histograms(batch=batch):
            pairs = [(_float_text(le), float(c)) for le, c in buckets]
            pairs.append(("+Inf", float(count)))
            hist.add_metric(list(labels), pairs, total)
        return hist

    def _own(self, programs: list[ExportedProgram], stats_on: bool) -> list[Metric]:
        enabled = GaugeMetricFamily(f"{NAMESPACE}_enabled_configs", "The set of enabled configs", labels=["name"])
        info = GaugeMetricFamily(
            f"{NAMESPACE}_ebpf_program_info", "Info about ebpf programs", labels=["config", "program", "tag", "id"]
        )
        attached = GaugeMetricFamily(
            f"{NAMESPACE}_ebpf_program_attached", "Whether a program is attached", labels=["id"]
        )
        run_time = _counter("ebpf_program_run_time_seconds", "How long has the program been executing", ["id"])
        run_count = _counter("ebpf_program_run_count_total", "How many times has the program been executed", ["id"])
        errors = _counter("decoder_errors_total", "How many times has decoders encountered errors", ["config"])
        entries = GaugeMetricFamily(
            f"{NAMESPACE}_map_entries", "Entries in each metric map at the last scrape", labels=["config", "map"]
        )
        capacity = GaugeMetricFamily(
            f"{NAMESPACE}_map_max_entries", "Capacity (max_entries) of each metric map", labels=["config", "map"]
        )
        for exported in programs:
            name = exported.config.name
            enabled.add_metric([name], 1)
            errors.add_metric([name], float(exported.decode_errors))
            linked = {id(link.program) for link in exported.links if not link.closed}
            for prog in exported.obj.programs.values():
                if prog.fd < 0:
                    continue
                stats = program_stats(prog)
                pid = str(stats.id)
                info.add_metric([name, prog.name, stats.tag, pid], 1)
                attached.add_metric([pid], 1.0 if id(prog) in linked else 0.0)
                if stats_on:
                    run_time.add_metric([pid], stats.run_time_ns / 1e9)
                    run_count.add_metric([pid], float(stats.run_count))
            for mm in exported.metrics:
                entries.add_metric([name, mm.metric.name], mm.entries)
                capacity.add_metric([name, mm.metric.name], mm.map.max_entries)
        duration = GaugeMetricFamily(
            f"{NAMESPACE}_scrape_duration_seconds", "Seconds this scrape spent reading and decoding the maps"
        )
        duration.add_metric([], self.last_duration)
        own: list[Metric] = [enabled, info, attached, errors, entries, capacity, duration]
        if stats_on:
            own[3:3] = [run_time, run_count]
        return own
