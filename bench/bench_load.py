"""Import time of pyprobe and open+load+close time of a small object, against C libbpf.

Prints figures measured in this run; the ratio compares pyprobe with the same
steps done in C (bench/c/load.c) on the same object.
"""

from __future__ import annotations

import subprocess
import sys
import time

from _common import helper, median_time, test_object

import pyprobe

N = 2000


def main() -> None:
    obj = test_object("minimal")
    bare = median_time(lambda: subprocess.run([sys.executable, "-c", "pass"], check=True), 15)
    imported = median_time(lambda: subprocess.run([sys.executable, "-c", "import pyprobe"], check=True), 15)
    c_exec = median_time(lambda: subprocess.run([str(helper("load")), str(obj), "0"], check=True), 15)
    print(f"import pyprobe: {(imported - bare) * 1e3:.1f} ms over a bare interpreter ({bare * 1e3:.1f} ms)")
    print(f"C program linked to libbpf, start to exit: {c_exec * 1e3:.1f} ms")
    loading = median_time(lambda: subprocess.run([sys.executable, "-c", "import pyprobe.object"], check=True), 15)
    print(f"import pyprobe.object (what loading an object imports): {(loading - bare) * 1e3:.1f} ms over a bare one")
    load_once = f"import pyprobe; pyprobe.load({str(obj)!r}).close()"
    fresh = median_time(lambda: subprocess.run([sys.executable, "-c", load_once], check=True), 15)
    c_once = median_time(
        lambda: subprocess.run([str(helper("load")), str(obj), "1"], check=True, capture_output=True), 15
    )
    print(
        f"start, open+load+close {obj.name} once, exit: pyprobe {fresh * 1e3:.1f} ms "
        f"({(fresh - bare) * 1e3:.1f} ms over a bare interpreter), C libbpf {c_once * 1e3:.1f} ms, "
        f"ratio {fresh / c_once:.1f}x"
    )

    for _ in range(100):
        pyprobe.load(obj).close()
    c_run = subprocess.run([str(helper("load")), str(obj), str(N)], check=True, capture_output=True, text=True)
    c_us = float(c_run.stdout)
    start = time.perf_counter()
    for _ in range(N):
        pyprobe.load(obj).close()
    py_us = (time.perf_counter() - start) / N * 1e6
    print(f"open+load+close of {obj.name}: pyprobe {py_us:.0f} us, C libbpf {c_us:.0f} us, ratio {py_us / c_us:.2f}x")


if __name__ == "__main__":
    main()
