"""The exporter's HTTP server: ``/metrics``, ``/`` (the programs), ``/healthz``; TLS and basic auth.

TLS and basic auth come from a web config file in the format of Prometheus'
exporter-toolkit (``--web.config.file``)::

    tls_server_config:
      cert_file: server.crt
      key_file: server.key
      client_ca_file: ca.crt              # optional
      client_auth_type: RequireAndVerifyClientCert   # or NoClientCert (default)
      min_version: TLS12                  # TLS10 .. TLS13
    basic_auth_users:
      alice: $2y$10$...                   # bcrypt hash (htpasswd -nBC 10 "" | tr -d ':')

Relative paths are read from the config file's directory. Errors name the
file and key (:class:`ConfigError`). ``/metrics`` uses prometheus_client's
exposition (text format, or OpenMetrics when the scraper asks for it).
"""

from __future__ import annotations

import hashlib
import html
import os
import ssl
import threading
from base64 import b64decode
from collections.abc import Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from prometheus_client.exposition import choose_encoder

from pyprobe.export.config import ConfigError, _read_yaml
from pyprobe.export.exporter import Exporter, program_stats

__all__ = ["DEFAULT_LISTEN", "ExporterServer", "WebConfig", "load_web_config", "parse_listen"]

DEFAULT_LISTEN = ":9435"
"""ebpf_exporter's default listen address."""

_TLS_VERSIONS = {
    "TLS10": ssl.TLSVersion.TLSv1,
    "TLS11": ssl.TLSVersion.TLSv1_1,
    "TLS12": ssl.TLSVersion.TLSv1_2,
    "TLS13": ssl.TLSVersion.TLSv1_3,
}
_CLIENT_AUTH = {
    "NoClientCert": ssl.CERT_NONE,
    "RequestClientCert": ssl.CERT_OPTIONAL,
    "RequireAnyClientCert": ssl.CERT_REQUIRED,
    "VerifyClientCertIfGiven": ssl.CERT_OPTIONAL,
    "RequireAndVerifyClientCert": ssl.CERT_REQUIRED,
}


@dataclass
class WebConfig:
    """TLS settings (``cert_file`` set means HTTPS) and basic auth users (name -> bcrypt hash)."""

    cert_file: str | None = None
    key_file: str | None = None
    client_ca_file: str | None = None
    client_auth_type: str = "NoClientCert"
    min_version: str = "TLS12"
    users: dict[str, bytes] = field(default_factory=dict)

    def ssl_context(self) -> ssl.SSLContext | None:
        """The server's TLS context, or None for plain HTTP."""
        if not self.cert_file or not self.key_file:
            return None
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.minimum_version = _TLS_VERSIONS[self.min_version]
        ctx.load_cert_chain(self.cert_file, self.key_file)
        if self.client_ca_file:
            ctx.load_verify_locations(self.client_ca_file)
        ctx.verify_mode = _CLIENT_AUTH[self.client_auth_type]
        return ctx


def load_web_config(path: str) -> WebConfig:
    """Reads and checks an exporter-toolkit web config file; raises :class:`ConfigError` naming file and key."""
    data = _read_yaml(path)
    if data is None:
        return WebConfig()
    if not isinstance(data, Mapping):
        raise ConfigError(path, "", "must hold a mapping at the top")
    for key in data:
        if key not in ("tls_server_config", "basic_auth_users", "http_server_config"):
            raise ConfigError(path, str(key), "unknown key (known: tls_server_config, basic_auth_users)")
    base = os.path.dirname(os.path.abspath(path))
    cfg = WebConfig()
    tls = data.get("tls_server_config") or {}
    if not isinstance(tls, Mapping):
        raise ConfigError(path, "tls_server_config", "must be a mapping")
    known = ("cert_file", "key_file", "client_ca_file", "client_auth_type", "min_version", "max_version",
             "cipher_suites", "curve_preferences", "prefer_server_cipher_suites")  # fmt: skip
    for key, value in tls.items():
        if key not in known:
            raise ConfigError(path, f"tls_server_config.{key}", f"unknown key (known: {', '.join(known[:5])})")
        if key in ("cert_file", "key_file", "client_ca_file"):
            if not isinstance(value, str) or not value:
                raise ConfigError(path, f"tls_server_config.{key}", "must be a file name")
            full = os.path.join(base, value)
            if not os.path.isfile(full):
                raise ConfigError(path, f"tls_server_config.{key}", f"no such file: {full}")
            setattr(cfg, key, full)
    if tls and (cfg.cert_file is None) != (cfg.key_file is None):
        missing = "key_file" if cfg.key_file is None else "cert_file"
        raise ConfigError(path, f"tls_server_config.{missing}", "is missing (TLS needs cert_file and key_file)")
    auth = tls.get("client_auth_type", "NoClientCert")
    if auth not in _CLIENT_AUTH:
        raise ConfigError(path, "tls_server_config.client_auth_type", f"unknown value {auth!r}")
    if auth == "RequireAndVerifyClientCert" and not cfg.client_ca_file:
        raise ConfigError(path, "tls_server_config.client_ca_file", "is needed by RequireAndVerifyClientCert")
    cfg.client_auth_type = auth
    version = tls.get("min_version", "TLS12")
    if version not in _TLS_VERSIONS:
        raise ConfigError(path, "tls_server_config.min_version", f"unknown version {version!r} (TLS10 .. TLS13)")
    cfg.min_version = version
    users = data.get("basic_auth_users") or {}
    if not isinstance(users, Mapping):
        raise ConfigError(path, "basic_auth_users", "must map user names to bcrypt hashes")
    if users:
        try:
            import bcrypt  # noqa: F401
        except ImportError as exc:
            raise ConfigError(
                path, "basic_auth_users", "needs the bcrypt package: pip install pyprobe[export]"
            ) from exc
    for user, hashed in users.items():
        if not isinstance(hashed, str) or not hashed.startswith(("$2a$", "$2b$", "$2y$")):
            raise ConfigError(path, f"basic_auth_users.{user}", "must be a bcrypt hash ($2y$...)")
        cfg.users[str(user)] = hashed.encode()
    try:
        cfg.ssl_context()
    except (ssl.SSLError, OSError) as exc:
        raise ConfigError(path, "tls_server_config", f"cannot use the certificate or key: {exc}") from exc
    return cfg


def parse_listen(text: str) -> tuple[str, int]:
    """``ADDR:PORT``, ``:PORT`` (every address) or ``[::1]:PORT`` -> (host, port); raises ValueError."""
    host, sep, port_text = text.rpartition(":")
    if not sep or not port_text.isdigit() or not 0 <= int(port_text) <= 65535:
        raise ValueError(f"listen address {text!r} is not ADDR:PORT")
    return host.strip("[]") or "0.0.0.0", int(port_text)


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        pass  # scrapes every few seconds would flood the log

    def _authorized(self) -> bool:
        users = self.server.web.users
        if not users:
            return True
        header = self.headers.get("Authorization", "")
        if header.startswith("Basic "):
            try:
                user, _, password = b64decode(header[6:], validate=True).decode().partition(":")
            except (ValueError, UnicodeDecodeError):
                return False
            hashed = users.get(user)
            if hashed is not None:
                return self.server.check_password(user, password, hashed)
        return False

    def _send(self, code: int, body: bytes, content_type: str, extra: Mapping[str, str] | None = None) -> None:
        self.send_response(code)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for k, v in (extra or {}).items():
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def do_HEAD(self) -> None:
        self.do_GET()

    def do_GET(self) -> None:
        if not self._authorized():
            self._send(
                401, b"Unauthorized\n", "text/plain; charset=utf-8", {"WWW-Authenticate": 'Basic realm="pyprobe"'}
            )
            return
        path = self.path.partition("?")[0]
        exporter = self.server.exporter
        if path == "/metrics":
            encoder, content_type = choose_encoder(self.headers.get("Accept", ""))
            try:
                body = encoder(exporter.registry)
            except Exception as exc:
                self._send(500, f"error reading the maps: {exc}\n".encode(), "text/plain; charset=utf-8")
                return
            self._send(200, body, content_type)
        elif path == "/healthz":
            ok = not exporter.closed
            self._send(200 if ok else 503, b"ok\n" if ok else b"closed\n", "text/plain; charset=utf-8")
        elif path == "/":
            self._send(200, _index(exporter).encode(), "text/html; charset=utf-8")
        else:
            self._send(404, b"Not Found\n", "text/plain; charset=utf-8")


def _index(exporter: Exporter) -> str:
    rows: list[str] = []
    stats_on = exporter.stats_enabled
    with exporter._lock:
        for exported in exporter.programs:
            targets: dict[int, list[str]] = {}
            for link in exported.links:
                if not link.closed and link.program is not None:
                    targets.setdefault(id(link.program), []).append(link.description)
            for prog in exported.obj.programs.values():
                if prog.fd < 0:
                    continue
                stats = program_stats(prog)
                runs = f"{stats.run_count} ({stats.run_time_ns / 1e6:.3f} ms)" if stats_on else "BPF stats off"
                attached = "<br>".join(html.escape(t) for t in targets.get(id(prog), [])) or "not attached"
                plain = (exported.config.name, prog.name, prog.type.name.lower(), prog.section)
                cells = [*(html.escape(str(c)) for c in plain), attached, html.escape(runs)]
                rows.append("<tr>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
    head = "".join(f"<th>{h}</th>" for h in ("config", "program", "type", "section", "attached to", "runs"))
    return (
        "<!doctype html><html><head><title>pyprobe exporter</title></head><body>"
        '<h1>pyprobe exporter</h1><p><a href="/metrics">Metrics</a> &middot; <a href="/healthz">Health</a></p>'
        f'<table border="1" cellpadding="4"><tr>{head}</tr>{"".join(rows)}</table></body></html>\n'
    )


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, addr: tuple[str, int], exporter: Exporter, web: WebConfig) -> None:
        import socket

        if ":" in addr[0]:
            self.address_family = socket.AF_INET6
        super().__init__(addr, _Handler)
        self.exporter = exporter
        self.web = web
        self._good: set[bytes] = set()
        self._good_lock = threading.Lock()

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a client that drops the connection or fails the TLS handshake is not the server's error

    def check_password(self, user: str, password: str, hashed: bytes) -> bool:
        import bcrypt

        # bcrypt is slow on purpose: remember pairs already checked (as exporter-toolkit caches them)
        token = hashlib.sha256(b"\0".join((user.encode(), password.encode(), hashed))).digest()
        with self._good_lock:
            if token in self._good:
                return True
        try:
            ok = bool(bcrypt.checkpw(password.encode(), hashed))
        except ValueError:
            return False
        if ok:
            with self._good_lock:
                self._good.add(token)
        return ok


class ExporterServer:
    """Serves an :class:`Exporter` over HTTP(S) from a background thread; ``close()`` stops it.

    Owns the listening socket and its thread, not the exporter.
    Raises OSError when the address cannot be bound.
    """

    def __init__(
        self, exporter: Exporter, listen: str = DEFAULT_LISTEN, *, web_config: WebConfig | None = None
    ) -> None:
        self.web = web_config or WebConfig()
        self._server = _Server(parse_listen(listen), exporter, self.web)
        ctx = self.web.ssl_context()
        if ctx is not None:
            self._server.socket = ctx.wrap_socket(self._server.socket, server_side=True, do_handshake_on_connect=False)
        self._thread = threading.Thread(target=self._server.serve_forever, name="pyprobe-export-http", daemon=True)
        self._thread.start()

    @property
    def address(self) -> tuple[str, int]:
        """The bound (host, port): the port is the real one when 0 was asked for."""
        host, port = self._server.server_address[:2]
        return str(host), int(port)

    @property
    def scheme(self) -> str:
        """``https`` with a TLS config, else ``http``."""
        return "https" if self.web.cert_file else "http"

    def close(self) -> None:
        """Stops serving (waits for the serving thread) and closes the socket. Idempotent."""
        if self._thread.is_alive():
            self._server.shutdown()
            self._thread.join()
        self._server.server_close()

    def __enter__(self) -> ExporterServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
