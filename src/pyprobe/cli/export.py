"""``pyprobe export``: ebpf_exporter-format configs served as Prometheus metrics until SIGTERM or Ctrl-C."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry

    from pyprobe.export.otlp import OtlpPusher

__all__ = ["add_parser", "run"]

DEFAULT_OTLP_INTERVAL = 15.0


def add_parser(sub: Any) -> None:
    p = sub.add_parser(
        "export", help="serve ebpf_exporter-format configs as Prometheus metrics",
        description="Load each config's NAME.bpf.o beside NAME.yaml (ebpf_exporter's format), attach it, and serve "
        "its maps as Prometheus metrics on /metrics (/ lists the programs, /healthz answers ok).",
    )  # fmt: skip
    p.add_argument("--config", required=True, metavar="DIR_OR_FILE", help="a config directory or one NAME.yaml")
    p.add_argument("--names", metavar="a,b", help="the configs of the directory to load (default: all)")
    p.add_argument("--listen", default=":9435", metavar="ADDR:PORT", help="where to serve (default :9435)")
    p.add_argument("--web.config.file", dest="web_config", metavar="FILE",
                   help="exporter-toolkit web config: TLS and basic auth users")  # fmt: skip
    p.add_argument("--bpf-stats", action="store_true",
                   help="turn on the kernel's BPF run statistics (programs' run counts and times)")  # fmt: skip
    p.add_argument("--per-key", action="store_true", help="read maps one lookup per key instead of in batches")
    p.add_argument("--otlp", metavar="URL",
                   help="also push the metrics over OTLP/HTTP to URL (http://collector:4318/v1/metrics) every "
                   "--otlp-interval seconds and at exit (resource attributes: OTEL_RESOURCE_ATTRIBUTES)")  # fmt: skip
    p.add_argument("--otlp-interval", type=float, default=DEFAULT_OTLP_INTERVAL, metavar="S",
                   help=f"seconds between OTLP pushes (default {DEFAULT_OTLP_INTERVAL:g})")  # fmt: skip
    p.add_argument("--otlp-header", action="append", default=[], metavar="K=V",
                   help="an HTTP header of every push (repeatable), e.g. Authorization='Bearer TOKEN'")  # fmt: skip
    p.set_defaults(run=run)


def _otlp_headers(args: argparse.Namespace) -> dict[str, str]:
    """``--otlp-header K=V`` options as a dict; ValueError for a malformed one or without ``--otlp``."""
    if (args.otlp_header or args.otlp_interval != DEFAULT_OTLP_INTERVAL) and not args.otlp:
        raise ValueError("--otlp-header and --otlp-interval need --otlp URL")
    headers: dict[str, str] = {}
    for item in args.otlp_header:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"--otlp-header {item!r} is not KEY=VALUE")
        headers[key.strip()] = value
    return headers


def _pusher(registry: CollectorRegistry, args: argparse.Namespace, headers: dict[str, str]) -> OtlpPusher | None:
    """The OTLP pusher of ``--otlp`` (not started), or None; ValueError for a bad URL or interval."""
    if not args.otlp:
        return None
    from pyprobe.export.otlp import OtlpPusher, logger

    if not logger.handlers:  # failed pushes are reported on stderr, as the service's log
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("pyprobe: %(message)s"))
        logger.addHandler(handler)
    return OtlpPusher(registry, args.otlp, interval=args.otlp_interval, headers=headers)


def run(args: argparse.Namespace) -> int:
    from pyprobe.cli.main import EXIT_FAILURE, EXIT_USAGE

    try:
        from pyprobe.export import ConfigError, Exporter, load_config
        from pyprobe.export.web import ExporterServer, load_web_config, parse_listen
    except ImportError as exc:  # the optional packages of the export extra are missing
        print(f"pyprobe: {exc}", file=sys.stderr)
        return EXIT_FAILURE

    names = [n for n in (args.names or "").split(",") if n]
    try:
        parse_listen(args.listen)
        configs = load_config(args.config, names or None)
        web = load_web_config(args.web_config) if args.web_config else None
        headers = _otlp_headers(args)
    except (ConfigError, ValueError) as exc:
        print(f"pyprobe: {exc}", file=sys.stderr)
        return EXIT_USAGE
    stop = threading.Event()

    def on_signal(signum: int, frame: object) -> None:
        stop.set()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        with Exporter(batch=not args.per_key, bpf_stats=args.bpf_stats) as exporter:
            try:
                pusher = _pusher(exporter.registry, args, headers)
            except ValueError as exc:
                print(f"pyprobe: {exc}", file=sys.stderr)
                return EXIT_USAGE
            try:
                for config in configs:
                    if stop.is_set():
                        return 0
                    try:
                        exporter.add(config)
                    except ConfigError as exc:
                        print(f"pyprobe: {exc}", file=sys.stderr)
                        return EXIT_USAGE
                    except Exception:
                        print(f"pyprobe: config {config.name!r} ({config.file}):", file=sys.stderr)
                        raise
                with ExporterServer(exporter, args.listen, web_config=web) as server:
                    host, port = server.address
                    programs = ", ".join(c.name for c in configs)
                    print(f"pyprobe: serving {programs} on {server.scheme}://{host}:{port}/metrics", file=sys.stderr)
                    if pusher is not None:
                        pusher.start()
                        print(f"pyprobe: pushing to {pusher.url} every {pusher.interval:g} s", file=sys.stderr)
                    sys.stderr.flush()
                    stop.wait()
            finally:
                if pusher is not None:
                    pusher.close()  # the last push, while the maps are still there
            print("pyprobe: stopping: links detached, objects closed", file=sys.stderr)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return 0
