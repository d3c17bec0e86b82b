"""The ``pyprobe`` command line; it uses only pyprobe's public API."""
