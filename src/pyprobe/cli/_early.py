"""Uprobe perf events registered in a thread while the trace object opens and loads.

Registering a uprobe waits for an RCU grace period (5-10 ms here) unless
another was registered just before; doing it before the object is loaded
takes that wait off the start-up. Each event is attached later with
``attach_perf_event``. When one cannot be made none is kept, and every
function is attached the usual way (``attach_uprobe``), which reports the
error in the library's words.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable

from pyprobe.perf_event import PerfEvent, open_uprobes


class EarlyUprobes:
    """Opens a uprobe or uretprobe event per (binary, offset, retprobe) in a thread; owns them until taken."""

    def __init__(self, probes: Iterable[tuple[str, int, bool]], pid: int) -> None:
        self._wanted = list(dict.fromkeys(probes))
        self._pid = pid
        self._events: dict[tuple[str, int, bool], PerfEvent] = {}
        self._lock = threading.Lock()
        self._closed = False
        self._thread = threading.Thread(target=self._open_all, name="pyprobe-uprobes", daemon=True)
        self._thread.start()

    def _open_all(self) -> None:
        try:
            events = open_uprobes(self._wanted, pid=self._pid)  # one C call: the GIL is taken back once
        except Exception:
            return
        with self._lock:
            if self._closed:
                for event in events:
                    event.close()
                return
            self._events = dict(zip(self._wanted, events, strict=True))

    def take(self, binary: str, offset: int, retprobe: bool) -> PerfEvent | None:
        """The event opened for the probe (the caller owns it now), or None; waits for the thread."""
        self._thread.join()
        with self._lock:
            return self._events.pop((binary, offset, retprobe), None)

    def __enter__(self) -> EarlyUprobes:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Closes the events nobody took (idempotent); an event still being opened is closed when it comes."""
        with self._lock:
            self._closed = True
            events, self._events = list(self._events.values()), {}
        for event in events:
            event.close()
