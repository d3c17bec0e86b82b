"""User ring buffer writes (BPF_MAP_TYPE_USER_RINGBUF, Linux 6.1): records/s from Python against C.

Each round writes PER_ROUND 16-byte records into the ring and runs the SEC("syscall") program
`drain` of tests/bpf/iter_user_ringbuf.bpf.o once (bpf_user_ringbuf_drain takes them all). The C
producer (bench/c/user_ringbuf.c, libbpf's user_ring_buffer__reserve/__submit per record) runs in
the same process tree on the same map; Python writes one record per write() call, then a whole
round per write_batch() call (one C call). Printed: records/s while writing, and with the drains,
best of RUNS runs with the spread, and the ratio to C.
"""

from __future__ import annotations

import ctypes
import subprocess
import sys
import time
from collections.abc import Callable

from _common import helper, test_object

import pyprobe

ROUNDS = 20
PER_ROUND = 8000  # 8000 records of 24 bytes (with their header) fit the 256 KiB ring
RUNS = 5


class URec(ctypes.Structure):
    _fields_ = [("seq", ctypes.c_uint64), ("value", ctypes.c_uint64)]


Result = tuple[float, float]
"""(records/s while writing, records/s with the drains)"""


def run_c(obj: pyprobe.BpfObject) -> Result:
    ring, prog = obj.maps["input"], obj.programs["drain"]
    out = subprocess.run(
        [str(helper("user_ringbuf")), str(ring.fd), str(prog.fd), str(ROUNDS), str(PER_ROUND)],
        pass_fds=[ring.fd, prog.fd], capture_output=True, text=True, check=True,
    ).stdout.split()  # fmt: skip
    records, write_s, total_s = int(out[0]), float(out[1]), float(out[2])
    return records / write_s, records / total_s


def run_py(obj: pyprobe.BpfObject, write_round: Callable[[pyprobe.UserRingBuffer[URec], int], int]) -> Result:
    drain = obj.programs["drain"]
    records, write_s = 0, 0.0
    with obj.maps["input"].writer(record_type=URec) as writer:
        begin = time.perf_counter()
        for r in range(ROUNDS):
            start = time.perf_counter()
            records += write_round(writer, r)
            write_s += time.perf_counter() - start
            drain.test_run()
        total_s = time.perf_counter() - begin
    return records / write_s, records / total_s


def per_record(writer: pyprobe.UserRingBuffer[URec], r: int) -> int:
    write = writer.write
    for i in range(PER_ROUND):
        write(URec(r * PER_ROUND + i, 1))
    return PER_ROUND


def per_record_bytes(writer: pyprobe.UserRingBuffer[URec], r: int) -> int:
    write = writer.write
    data = bytes(URec(r, 1))
    for _ in range(PER_ROUND):
        write(data)
    return PER_ROUND


BATCH = (URec * PER_ROUND)(*(URec(i, 1) for i in range(PER_ROUND)))


def batch(writer: pyprobe.UserRingBuffer[URec], r: int) -> int:
    return writer.write_batch(BATCH)


def best(results: list[Result]) -> tuple[Result, float]:
    """The best run (by write rate) and the spread of the write rate (max/min - 1)."""
    rates = [w for w, _ in results]
    return max(results), max(rates) / min(rates) - 1


def main() -> None:
    status = pyprobe.features.probe("user_ringbuf")
    if not status.available:
        sys.exit(f"no user ring buffers here: {status}")
    runs: dict[str, list[Result]] = {"C reserve+submit": [], "write(ctypes)": [], "write(bytes)": [], "write_batch": []}
    with pyprobe.load(test_object("iter_user_ringbuf")) as obj:
        for _ in range(RUNS):  # interleaved, so that a noisy moment hits every variant alike
            runs["C reserve+submit"].append(run_c(obj))
            runs["write(ctypes)"].append(run_py(obj, per_record))
            runs["write(bytes)"].append(run_py(obj, per_record_bytes))
            runs["write_batch"].append(run_py(obj, batch))
        expected = RUNS * 4 * ROUNDS * PER_ROUND
        assert obj.bss.drained == expected, (obj.bss.drained, expected)
    (c_write, c_total), _ = best(runs["C reserve+submit"])
    print(f"user ring buffer, {ROUNDS} rounds of {PER_ROUND} 16-byte records, best of {RUNS}")
    print(f"{'producer':<18} {'write Mrec/s':>12} {'spread':>7} {'vs C':>6} {'with drain':>11} {'vs C':>6}")
    for name, results in runs.items():
        (write, total), spread = best(results)
        print(
            f"{name:<18} {write / 1e6:>12.2f} {spread:>6.0%} {write / c_write:>6.2f} "
            f"{total / 1e6:>11.2f} {total / c_total:>6.2f}"
        )


if __name__ == "__main__":
    main()
