"""libbpf's messages, routed to ``logging.getLogger("pyprobe.libbpf")``.

The va_list is formatted in C (csrc/print.c); levels below the logger's
effective level are dropped there without calling Python. Warnings are
always delivered so that verifier logs of failed loads can be captured.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from pyprobe._ffi import ffi, lib
from pyprobe._record import Record

logger = logging.getLogger("pyprobe.libbpf")
logging.getLogger("pyprobe").addHandler(logging.NullHandler())

_LEVELS = {0: logging.WARNING, 1: logging.INFO, 2: logging.DEBUG}
_BEGIN_LOG = re.compile(r"prog '([^']+)': -- BEGIN PROG LOAD LOG --\n(.*?)-- END PROG LOAD LOG --", re.S)
_LOAD_FAILED = re.compile(r"prog '([^']+)': (?:BPF program load failed|failed to load)")


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
    capture: LoadCapture | None = getattr(_local, "capture", None)
    if capture is not None and level == 0:
        match = _BEGIN_LOG.search(text)
        if match:
            capture.logs[match.group(1)] = match.group(2)
            logger.debug("%s", text.rstrip())
            return
        failed = _LOAD_FAILED.search(text)
        if failed and failed.group(1) not in capture.failed:
            capture.failed.append(failed.group(1))
        capture.messages.append(text.rstrip())
    logger.log(_LEVELS.get(level, logging.DEBUG), "%s", text.rstrip())


def sync_level() -> None:
    """Lets C drop the messages that the logger would discard anyway."""
    if logger.isEnabledFor(logging.DEBUG):
        lib.pyprobe_set_print_level(2)
    elif logger.isEnabledFor(logging.INFO):
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
