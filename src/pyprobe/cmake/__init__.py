"""pyprobe's CMake package: ``pyprobeConfig.cmake`` and its version file.

Not code to import: this directory is what ``find_package(pyprobe)`` finds.
scikit-build-core adds it to ``CMAKE_PREFIX_PATH`` through pyprobe's
``cmake.prefix`` entry point; :func:`pyprobe.cmake_dir` and ``pyprobe cmake-dir``
print it for other builds (``-Dpyprobe_DIR=...``).
"""
