"""Dump a 1,000,000-entry hash map (u32 key, 16-byte struct value) into Python, against C libbpf.

Three ways from Python: per-key (get_next_key + lookup per entry, as bcc
does), the batch dump (BPF_MAP_LOOKUP_BATCH in a C loop inside the
extension) to a MapItems snapshot, and the same fully decoded into a list of
(int, struct) pairs and into a dict; against bench/c/maps.c doing the batch
dump in C on the same map in the same run. Prints figures and ratios measured now.
"""

from __future__ import annotations

import subprocess
import time

from _common import helper, median_time, test_object

import pyprobe
from pyprobe.btf import Btf

N = 1_000_000


def main() -> None:
    value16 = Btf.from_file(test_object("maps")).type_by_name("struct value16")
    m = pyprobe.Map.create("hash", key_type=pyprobe.btf.int_type(4, False), value_type=value16, max_entries=N)
    with m:
        start = time.perf_counter()
        chunk = 100_000
        for base in range(0, N, chunk):
            m.update_batch({k: {"count": k, "pid": k & 0xFFFF, "flags": 1} for k in range(base, base + chunk)})
        print(f"filled {len(m):,} entries in {time.perf_counter() - start:.2f} s (update_batch)")

        c_out = subprocess.run([str(helper("maps")), str(m.id), "5"], check=True, capture_output=True, text=True)
        c_ms, c_count = c_out.stdout.split()
        c = float(c_ms) / 1e3
        assert int(c_count) == N

        dump = median_time(lambda: m.items(batch=True), 5)
        full = median_time(lambda: list(m.items(batch=True)), 5)
        as_dict = median_time(lambda: m.items(batch=True).to_dict(), 5)
        numpy = median_time(lambda: m.items(batch=True).to_numpy(), 5)
        keys_only = median_time(lambda: m.items(batch=True).key_list(), 3)
        items = m.items(batch=True)
        assert len(items) == N and items.to_dict()[12345].count == 12345
        start = time.perf_counter()
        per_key = m.items()
        slow = time.perf_counter() - start
        assert len(per_key) == N

        print(f"C libbpf batch dump:                    {c * 1e3:8.1f} ms")
        print(f"pyprobe batch dump (MapItems snapshot): {dump * 1e3:8.1f} ms  ({dump / c:.2f}x C)")
        print(f"  + keys decoded to ints:               {keys_only * 1e3:8.1f} ms  ({keys_only / c:.2f}x C)")
        print(f"  + every pair decoded (int, struct):   {full * 1e3:8.1f} ms  ({full / c:.2f}x C)")
        print(f"  + decoded into a dict (to_dict()):    {as_dict * 1e3:8.1f} ms  ({as_dict / c:.2f}x C)")
        print(f"  + to_numpy() structured arrays:       {numpy * 1e3:8.1f} ms  ({numpy / c:.2f}x C)")
        print(f"pyprobe per-key (get_next_key+lookup):  {slow * 1e3:8.1f} ms  ({slow / c:.2f}x C)")
        print(f"batch vs per-key: snapshot {slow / dump:.0f}x faster, fully decoded {slow / full:.0f}x faster")


if __name__ == "__main__":
    main()
