"""libbpf's messages, routed to ``logging.getLogger("pyprobe.libbpf")``.

The va_list is formatted in C (csrc/print.c); levels below the logger's
effective level are dropped there without calling Python. Warnings are
always delivered so that verifier logs of failed loads can be captured.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from pyprobe._ffi import ffi, lib
from pyprobe._record import Record

_LEVELS = {0: 30, 1: 20, 2: 10}
"""libbpf's print levels -> logging.WARNING, INFO, DEBUG (logging is imported only once it is needed)."""
_loggers: list[Any] = []
_patterns: list[Any] = []


def package_logger() -> Any:
    """``logging.getLogger("pyprobe")``, with its NullHandler; imports logging (5 ms) on first use."""
    if not _loggers:
        import logging

        package = logging.getLogger("pyprobe")
        package.addHandler(logging.NullHandler())
        _loggers[:] = [package, logging.getLogger("pyprobe.libbpf")]
    return _loggers[0]


def _libbpf_logger() -> Any:
    package_logger()
    return _loggers[1]


def _load_log_patterns() -> tuple[Any, Any]:
    if not _patterns:
        import re

        _patterns[:] = [
            re.compile(r"prog '([^']+)': -- BEGIN PROG LOAD LOG --\n(.*?)-- END PROG LOAD LOG --", re.S),
            re.compile(r"prog '([^']+)': (?:BPF program load failed|failed to load)"),
        ]
    return _patterns[0], _patterns[1]


class LoadCapture(Record):
    """What libbpf said about failed program loads while a capture was active."""

    __slots__ = ("failed", "logs", "messages")
    _fields_ = ("logs", "failed", "messages")

    def __init__(
        self, logs: dict[str, str] | None = None, failed: list[str] | None = None, messages: list[str] | None = None
    ) -> None:
        self.logs: dict[str, str] = {} if logs is None else logs
        self.failed: list[str] = [] if failed is None else failed
        self.messages: list[str] = [] if messages is None else messages


_local = threading.local()


@ffi.def_extern(onerror=lambda *exc: None)  # type: ignore[untyped-decorator]
def _pyprobe_log(level: int, msg: object) -> None:
    text = ffi.string(msg).decode("utf-8", "replace")
    logger = _libbpf_logger()
    capture: LoadCapture | None = getattr(_local, "capture", None)
    if capture is not None and level == 0:
        begin_log, load_failed = _load_log_patterns()
        match = begin_log.search(text)
        if match:
            capture.logs[match.group(1)] = match.group(2)
            logger.debug("%s", text.rstrip())
            return
        failed = load_failed.search(text)
        if failed and failed.group(1) not in capture.failed:
            capture.failed.append(failed.group(1))
        capture.messages.append(text.rstrip())
    logger.log(_LEVELS.get(level, 10), "%s", text.rstrip())


def sync_level() -> None:
    """Lets C drop the messages that the logger would discard anyway.

    Before anything imported logging nothing can have configured it: the
    logger's level is the default WARNING, and logging stays unimported.
    """
    if "logging" not in sys.modules:
        lib.pyprobe_set_print_level(0)
        return
    logger = _libbpf_logger()
    if logger.isEnabledFor(10):
        lib.pyprobe_set_print_level(2)
    elif logger.isEnabledFor(20):
        lib.pyprobe_set_print_level(1)
    else:
        lib.pyprobe_set_print_level(0)


@contextmanager
def capture() -> Iterator[LoadCapture]:
    """Collects verifier logs and warnings that libbpf prints in this thread."""
    sync_level()
    previous = getattr(_local, "capture", None)
    _local.capture = result = LoadCapture()
    try:
        yield result
    finally:
        _local.capture = previous


lib.pyprobe_install_print()
