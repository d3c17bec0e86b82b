"""Push a prometheus_client registry's metrics over OTLP/HTTP with OpenTelemetry's SDK.

:class:`OtlpPusher` reads ``registry.collect()`` once per interval, turns that
snapshot of Prometheus metric families into the OpenTelemetry SDK's metric data
model (``opentelemetry.sdk.metrics.export``: :class:`Metric` with :class:`Sum`,
:class:`Gauge` and :class:`Histogram` data, inside a :class:`MetricsData` with an
SDK :class:`Resource`) and hands it to the official
``opentelemetry.exporter.otlp.proto.http.OTLPMetricExporter``, which encodes it
with the OpenTelemetry protobuf definitions and sends it (retries with backoff,
headers, TLS and compression as configured through its own environment
variables, ``OTEL_EXPORTER_OTLP_METRICS_*``).

Why the data model and not the SDK's instruments: the metrics are already
aggregated by the time they are read (a BPF map holds a count, a histogram's
cumulative bucket counts), and OpenTelemetry's API has no observable
histogram, so re-recording them into instruments would either lose the
buckets or count every event twice. Observable counters and gauges would also
fold every series past the SDK's default cardinality limit (2000 attribute
sets per instrument) into one ``otel.metric.overflow`` point, where an
exporter of BPF maps routinely has more. Building the data points from the
snapshot keeps every series exact and still uses the official encoder and
transport; this is the "Prometheus metric points to OTLP" mapping of
OpenTelemetry's Prometheus compatibility specification:

- counter: a monotonic cumulative Sum named as the series in ``/metrics``
  (``<name>_total``: the specification keeps the Prometheus name unaltered by
  default, and an OTLP-to-Prometheus conversion leaves a name that already ends
  in ``_total`` as it is, so the name round-trips);
- gauge and untyped: a Gauge;
- histogram: a cumulative explicit-bucket Histogram named as the family
  (``le`` bounds become ``explicit_bounds``, cumulative bucket counts become
  per-bucket counts, ``_count`` and ``_sum`` the count and sum; min and max stay
  unset, as Prometheus does not know them);
- info and stateset: a non-monotonic cumulative Sum (``<name>_info`` for info);
  the ``target_info`` family's labels become resource attributes instead;
- summary and gaugehistogram: dropped (the SDK's data model has no summary and
  the specification drops gauge histograms), each logged once.

Attributes are the Prometheus label names and values, unchanged. A series'
start time is its ``_created`` sample where the family has one, otherwise the
time the pusher was created (every value is cumulative since then at the
latest). Units come from the family's OpenMetrics unit, abbreviated as the
specification asks (``seconds`` -> ``s``, ``bytes`` -> ``By``, ``ratio`` -> ``1``,
``a_per_b`` -> ``a/b``). Values are sent as doubles, as Prometheus holds them.

The resource carries the SDK's defaults (``telemetry.sdk.*``,
``service.instance.id``, anything in ``OTEL_RESOURCE_ATTRIBUTES`` and
``OTEL_SERVICE_NAME``), ``service.name`` ``pyprobe-export`` unless the
environment names one, ``host.name``, and the caller's ``resource_attributes``,
which take precedence over all of these.

Failures never stop the pusher: a push the endpoint does not accept (refused,
unreachable, timed out, an HTTP error) and a collection that raises are logged
on the ``pyprobe.export`` logger and the next interval tries again.
"""

from __future__ import annotations

import logging
import math
import socket
import threading
import time
from collections.abc import Iterable, Mapping
from types import TracebackType
from typing import TYPE_CHECKING, Protocol, cast
from urllib.parse import urlsplit, urlunsplit

try:
    from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
    from opentelemetry.sdk.metrics.export import (
        AggregationTemporality,
        Gauge,
        Histogram,
        HistogramDataPoint,
        Metric,
        MetricExportResult,
        MetricsData,
        NumberDataPoint,
        ResourceMetrics,
        ScopeMetrics,
        Sum,
    )
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.util.instrumentation import InstrumentationScope
except ImportError as exc:  # pragma: no cover - the extra is missing
    raise ImportError(
        "pyprobe.export.otlp needs opentelemetry-sdk and opentelemetry-exporter-otlp-proto-http: "
        "pip install pyprobe[export]"
    ) from exc

if TYPE_CHECKING:
    from prometheus_client.metrics_core import Metric as PromMetric

__all__ = ["DEFAULT_INTERVAL", "DEFAULT_TIMEOUT", "MetricSource", "OtlpPusher", "to_metrics_data"]

logger = logging.getLogger("pyprobe.export")

DEFAULT_INTERVAL = 15.0
"""Seconds between pushes (Prometheus' default scrape interval)."""
DEFAULT_TIMEOUT = 10.0
"""Seconds one push may take at most, retries included (the OTLP exporter's default)."""
SERVICE_NAME = "pyprobe-export"
SCOPE_NAME = "pyprobe.export"

_CUMULATIVE = AggregationTemporality.CUMULATIVE
_UNITS = {
    "seconds": "s",
    "milliseconds": "ms",
    "microseconds": "us",
    "nanoseconds": "ns",
    "minutes": "min",
    "hours": "h",
    "days": "d",
    "bytes": "By",
    "kilobytes": "kBy",
    "megabytes": "MBy",
    "gigabytes": "GBy",
    "bits": "bit",
    "meters": "m",
    "volts": "V",
    "amperes": "A",
    "joules": "J",
    "watts": "W",
    "grams": "g",
    "celsius": "Cel",
    "hertz": "Hz",
    "percent": "%",
    "ratio": "1",
}


class MetricSource(Protocol):
    """Anything with prometheus_client's ``collect()``: a CollectorRegistry or a single Collector."""

    def collect(self) -> Iterable[PromMetric]: ...


def _otel_unit(unit: str) -> str:
    if not unit:
        return ""
    if unit in _UNITS:
        return _UNITS[unit]
    if "_per_" in unit:
        top, _, bottom = unit.partition("_per_")
        return f"{_otel_unit(top)}/{_otel_unit(bottom)}"
    return unit


def _ns(seconds: float) -> int:
    return int(seconds * 1e9)


def _sample_ns(timestamp: object, default: int) -> int:
    """A sample's own timestamp (a float or prometheus_client's Timestamp) in ns, or ``default``."""
    if timestamp is None:
        return default
    if isinstance(timestamp, (int, float)):
        return _ns(timestamp)
    sec = getattr(timestamp, "sec", None)
    nsec = getattr(timestamp, "nsec", 0)
    if isinstance(sec, (int, float)) and isinstance(nsec, (int, float)):
        return int(sec) * 1_000_000_000 + int(nsec)
    return default


_LabelKey = tuple[tuple[str, str], ...]


def _key(labels: Mapping[str, str]) -> _LabelKey:
    return tuple(sorted(labels.items()))


class _Converter:
    """One snapshot's conversion; ``start_ns`` is used where a series has no ``_created`` sample."""

    def __init__(self, start_ns: int, now_ns: int) -> None:
        self.start_ns = start_ns
        self.now_ns = now_ns
        self.dropped: list[tuple[str, str]] = []
        self.target_attributes: dict[str, str] = {}

    def _created(self, family: PromMetric) -> dict[_LabelKey, int]:
        suffix = family.name + "_created"
        return {_key(s.labels): _ns(s.value) for s in family.samples if s.name == suffix}

    def convert(self, family: PromMetric) -> list[Metric]:
        kind = family.type
        if kind == "counter":
            return self._sum(family, monotonic=True)
        if kind in ("gauge", "unknown", "untyped"):
            return self._gauge(family)
        if kind == "histogram":
            return self._histogram(family)
        if kind == "info" and family.name == "target":
            for sample in family.samples:
                self.target_attributes.update(sample.labels)
            return []
        if kind in ("info", "stateset"):
            return self._sum(family, monotonic=False)
        self.dropped.append((family.name, kind))
        return []

    def _metric(self, family: PromMetric, name: str, data: Sum | Gauge | Histogram) -> Metric:
        return Metric(
            name=name, description=family.documentation, unit=_otel_unit(getattr(family, "unit", "")), data=data
        )

    def _sum(self, family: PromMetric, *, monotonic: bool) -> list[Metric]:
        created = self._created(family) if monotonic else {}
        by_name: dict[str, list[NumberDataPoint]] = {}
        created_name = family.name + "_created"
        for sample in family.samples:
            if sample.name == created_name:
                continue
            key = _key(sample.labels)
            by_name.setdefault(sample.name, []).append(
                NumberDataPoint(
                    attributes=dict(key),
                    start_time_unix_nano=created.get(key, self.start_ns),
                    time_unix_nano=_sample_ns(sample.timestamp, self.now_ns),
                    value=float(sample.value),
                )
            )
        return [
            self._metric(
                family, name, Sum(data_points=pts, aggregation_temporality=_CUMULATIVE, is_monotonic=monotonic)
            )
            for name, pts in by_name.items()
        ]

    def _gauge(self, family: PromMetric) -> list[Metric]:
        by_name: dict[str, list[NumberDataPoint]] = {}
        for sample in family.samples:
            by_name.setdefault(sample.name, []).append(
                NumberDataPoint(
                    attributes=dict(_key(sample.labels)),
                    start_time_unix_nano=0,
                    time_unix_nano=_sample_ns(sample.timestamp, self.now_ns),
                    value=float(sample.value),
                )
            )
        return [self._metric(family, name, Gauge(data_points=points)) for name, points in by_name.items()]

    def _histogram(self, family: PromMetric) -> list[Metric]:
        name = family.name
        buckets: dict[_LabelKey, list[tuple[float, float]]] = {}
        counts: dict[_LabelKey, float] = {}
        sums: dict[_LabelKey, float] = {}
        created: dict[_LabelKey, int] = {}
        times: dict[_LabelKey, int] = {}
        for sample in family.samples:
            suffix = sample.name[len(name) :] if sample.name.startswith(name) else ""
            if suffix == "_bucket":
                labels = dict(sample.labels)
                le = labels.pop("le", "+Inf")
                key = _key(labels)
                try:
                    bound = float(le)
                except ValueError:
                    continue
                buckets.setdefault(key, []).append((bound, sample.value))
                times.setdefault(key, _sample_ns(sample.timestamp, self.now_ns))
            elif suffix == "_count":
                counts[_key(sample.labels)] = sample.value
            elif suffix == "_sum":
                sums[_key(sample.labels)] = sample.value
            elif suffix == "_created":
                created[_key(sample.labels)] = _ns(sample.value)
        points: list[HistogramDataPoint] = []
        for key, series in buckets.items():
            series.sort(key=lambda pair: pair[0])
            bounds = [bound for bound, _ in series if not math.isinf(bound)]
            cumulative = [round(value) for bound, value in series if not math.isinf(bound)]
            total = counts.get(key)
            inf_bucket = next((value for bound, value in series if math.isinf(bound) and bound > 0), None)
            count = round(total if total is not None else inf_bucket if inf_bucket is not None else 0)
            cumulative.append(max(count, cumulative[-1] if cumulative else 0))
            per_bucket = [
                max(0, value - previous) for previous, value in zip([0, *cumulative[:-1]], cumulative, strict=True)
            ]
            # min and max are unknown to Prometheus; the sum may be absent: None leaves the
            # encoder's optional protobuf fields unset
            points.append(
                HistogramDataPoint(
                    attributes=dict(key),
                    start_time_unix_nano=created.get(key, self.start_ns),
                    time_unix_nano=times[key],
                    count=count,
                    sum=cast(float, sums.get(key)),
                    bucket_counts=per_bucket,
                    explicit_bounds=bounds,
                    min=cast(float, None),
                    max=cast(float, None),
                )
            )
        if not points:
            return []
        return [self._metric(family, name, Histogram(data_points=points, aggregation_temporality=_CUMULATIVE))]


def _default_resource(resource_attributes: Mapping[str, str] | None) -> Resource:
    base = Resource.create({})
    extra: dict[str, str] = {}
    if str(base.attributes.get("service.name", "")).startswith("unknown_service"):
        extra["service.name"] = SERVICE_NAME
    if "host.name" not in base.attributes:
        extra["host.name"] = socket.gethostname()
    extra.update(resource_attributes or {})
    return base.merge(Resource(extra))


def to_metrics_data(
    families: Iterable[PromMetric],
    *,
    resource: Resource | None = None,
    start_time_ns: int | None = None,
    time_ns: int | None = None,
) -> MetricsData:
    """Convert Prometheus metric families into the OpenTelemetry SDK's :class:`MetricsData`.

    ``start_time_ns`` is the start of series without a ``_created`` sample
    (default: now); ``time_ns`` the time of samples without a timestamp
    (default: now). Families the SDK's data model cannot carry (summary,
    gaugehistogram) are left out. Pure computation; raises nothing of its own.
    """
    now = time.time_ns() if time_ns is None else time_ns
    converter = _Converter(now if start_time_ns is None else start_time_ns, now)
    return _metrics_data(converter, families, resource if resource is not None else _default_resource(None))


def _metrics_data(converter: _Converter, families: Iterable[PromMetric], resource: Resource) -> MetricsData:
    """The families converted, in one ResourceMetrics (``target_info``'s labels merged into ``resource``)."""
    from pyprobe import __version__

    metrics = [metric for family in families for metric in converter.convert(family)]
    if converter.target_attributes:
        resource = resource.merge(Resource(dict(converter.target_attributes)))
    scope = InstrumentationScope(SCOPE_NAME, __version__)
    return MetricsData(
        resource_metrics=[
            ResourceMetrics(
                resource=resource,
                scope_metrics=[ScopeMetrics(scope=scope, metrics=metrics, schema_url="")],
                schema_url=resource.schema_url,
            )
        ]
    )


def _check_url(url: str) -> str:
    """The OTLP/HTTP metrics URL, ``/v1/metrics`` appended to a URL without a path; ValueError otherwise."""
    if not isinstance(url, str):
        raise ValueError(f"OTLP endpoint {url!r}: expected a URL string")
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError as exc:
        raise ValueError(f"OTLP endpoint {url!r}: {exc}") from exc
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"OTLP endpoint {url!r}: expected http://HOST[:PORT][/PATH] or https://...")
    if port == 0:
        raise ValueError(f"OTLP endpoint {url!r}: port 0")
    if parts.path in ("", "/"):
        parts = parts._replace(path="/v1/metrics")
    return urlunsplit(parts)


def _positive(name: str, value: float) -> float:
    number = float(value)
    if not (number > 0 and math.isfinite(number)):
        raise ValueError(f"OTLP {name} must be a positive number of seconds, not {value!r}")
    return number


class OtlpPusher:
    """Push ``registry``'s metrics to an OTLP/HTTP endpoint every ``interval`` seconds.

    ``url`` is the endpoint's metrics URL (``http://collector:4318/v1/metrics``;
    a URL without a path gets ``/v1/metrics``, the OTLP/HTTP default); a URL that
    is not ``http``/``https`` with a host raises ValueError naming it.
    ``headers`` go with every request (authentication tokens); ``timeout`` bounds
    one push, the OTLP exporter's retries included (default: 10 s, or the
    interval when shorter). ``resource_attributes`` are
    added to the resource (see the module's documentation).

    The pusher owns a background thread (after :meth:`start`) and the
    OTLPMetricExporter (its HTTP session); :meth:`close` stops the thread, makes
    a final push (when the pusher was started) and shuts the exporter down. It is a context manager: entering
    starts it, leaving closes it. A push that fails is logged on the
    ``pyprobe.export`` logger and retried at the next interval; the pusher never
    raises from its thread. The registry's ``collect()`` is called from the
    pusher's thread, so it must be thread-safe (prometheus_client's registry is).
    """

    def __init__(
        self,
        registry: MetricSource,
        url: str,
        *,
        interval: float = DEFAULT_INTERVAL,
        resource_attributes: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
        timeout: float | None = None,
    ) -> None:
        self.url = _check_url(url)
        self.interval = _positive("interval", interval)
        self.timeout = min(DEFAULT_TIMEOUT, self.interval) if timeout is None else _positive("timeout", timeout)
        for key in headers or {}:
            if not key or not isinstance(key, str) or any(c in key for c in ":\r\n "):
                raise ValueError(f"OTLP header name {key!r} is not a valid HTTP header name")
        self._registry = registry
        self.resource = _default_resource(resource_attributes)
        self.start_time_ns = time.time_ns()
        self._exporter = OTLPMetricExporter(endpoint=self.url, headers=dict(headers or {}), timeout=self.timeout)
        self._lock = threading.Lock()
        self._push_lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._closed = False
        self._dropped_logged: set[str] = set()
        self.pushes = 0
        """Pushes the endpoint accepted."""
        self.failures = 0
        """Pushes that failed (not accepted, or the collection raised)."""

    def snapshot(self) -> MetricsData:
        """Collect the registry once and convert it; blocks on the collection (map reads); raises what it raises."""
        converter = _Converter(self.start_time_ns, time.time_ns())
        data = _metrics_data(converter, self._registry.collect(), self.resource)
        for name, kind in converter.dropped:
            if name not in self._dropped_logged:
                self._dropped_logged.add(name)
                logger.warning("OTLP push leaves out %s: Prometheus %s metrics have no OTLP form here", name, kind)
        return data

    def push_now(self) -> bool:
        """Collect and push once, synchronously; True when the endpoint accepted it.

        Blocks for the collection and the request (at most ``timeout`` seconds with
        the exporter's retries). A failure is logged and counted, never raised.
        Raises RuntimeError once the pusher is closed.
        """
        if self._closed:
            raise RuntimeError(f"OTLP pusher to {self.url} is closed")
        return self._push()

    def _push(self) -> bool:
        with self._push_lock:
            try:
                data = self.snapshot()
            except Exception:
                self.failures += 1
                logger.exception("OTLP push to %s: collecting the metrics failed", self.url)
                return False
            try:
                result = self._exporter.export(data, timeout_millis=self.timeout * 1000)
            except Exception:  # the exporter reports failures by result; anything else is logged too
                logger.exception("OTLP push to %s failed", self.url)
                result = MetricExportResult.FAILURE
            if result is not MetricExportResult.SUCCESS:
                self.failures += 1
                if self._closed:
                    logger.warning("OTLP push to %s failed (final push at shutdown)", self.url)
                else:
                    logger.warning("OTLP push to %s failed; trying again in %g s", self.url, self.interval)
                return False
            self.pushes += 1
            return True

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self._push()

    def start(self) -> OtlpPusher:
        """Start pushing every ``interval`` seconds in a daemon thread (the first push after one interval).

        Calling it again while running does nothing; RuntimeError once closed.
        """
        with self._lock:
            if self._closed:
                raise RuntimeError(f"OTLP pusher to {self.url} is closed")
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="pyprobe-otlp", daemon=True)
                self._thread.start()
        return self

    def close(self) -> None:
        """Stop the thread, push once more (if :meth:`start` ran) and shut the exporter down; idempotent.

        Blocks until a push in flight ends and for the final push (each at most
        ``timeout`` seconds); a failed final push is logged, not raised.
        """
        with self._lock:
            if self._closed:
                return
            self._closed = True
            thread = self._thread
        self._stop.set()
        try:
            if thread is not None:
                thread.join()
                self._push()
        finally:
            self._exporter.shutdown()

    @property
    def closed(self) -> bool:
        return self._closed

    def __enter__(self) -> OtlpPusher:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self._closed else "running" if self._thread is not None else "idle"
        return f"<OtlpPusher {self.url} every {self.interval:g}s {state}>"
