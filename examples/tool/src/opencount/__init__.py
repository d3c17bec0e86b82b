"""opencount: count openat() calls per process with a BPF tracepoint probe.

The probe (``bpf/opencount.bpf.c``) is compiled when the wheel is built, by
pyprobe's CMake function ``pyprobe_add_probes``, which also writes its typed
skeleton ``opencount.opencount_skel``. :func:`count_opens` runs it.
"""

from __future__ import annotations

from opencount.counter import OpenCount, count_opens

__version__ = "0.1.0"

__all__ = ["OpenCount", "__version__", "count_opens"]
