"""numpy, the optional dependency of the ``to_numpy()`` calls: one message when it is missing."""

from __future__ import annotations

__all__ = ["numpy_missing"]


def numpy_missing(what: str) -> ImportError:
    """The ImportError to raise (``from`` the original) when ``what``, a call that needs numpy, finds none."""
    return ImportError(f"{what} needs numpy: pip install 'pyprobe[numpy]'")
