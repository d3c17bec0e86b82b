"""numpy, the optional dependency of the ``to_numpy()`` calls: one message when it is missing."""

from __future__ import annotations

import importlib
from typing import Any

__all__ = ["require_numpy"]


def require_numpy(what: str) -> Any:
    """The numpy module; raises ImportError saying that ``what``, a call that needs numpy, finds none."""
    try:
        return importlib.import_module("numpy")
    except ImportError as exc:
        raise ImportError(f"{what} needs numpy: pip install 'pyprobe[numpy]'") from exc
