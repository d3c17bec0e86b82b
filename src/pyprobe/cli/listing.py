"""``pyprobe list symbols|usdt|progs|maps``: discovery.

``progs`` and ``maps`` walk the kernel's ids (BPF_PROG_GET_NEXT_ID and
friends, like bpftool) and need CAP_SYS_ADMIN.
"""

from __future__ import annotations

import argparse
import errno
import json
import os
import sys
import time
from collections.abc import Iterator
from typing import Any

from pyprobe._ffi import cstr, ffi, lib
from pyprobe.cli import _compat
from pyprobe.enums import MapType, ProgramType
from pyprobe.errors import check_int

__all__ = ["add_parser", "maps", "progs", "run"]


def add_parser(sub: Any) -> None:
    p = sub.add_parser("list", help="list symbols, USDT probes, loaded programs or maps")
    what = p.add_subparsers(dest="what", metavar="WHAT", required=True)
    s = what.add_parser("symbols", help="functions of a binary (raw and demangled names)")
    s.add_argument("binary", metavar="BINARY")
    s.add_argument("pattern", nargs="?", metavar="PATTERN", help="glob over raw or demangled names")
    u = what.add_parser("usdt", help="USDT probes of a binary")
    u.add_argument("binary", metavar="BINARY")
    what.add_parser("progs", help="BPF programs loaded in the kernel")
    what.add_parser("maps", help="BPF maps in the kernel")
    for sp in (s, u, *what.choices.values()):
        if not any(a.dest == "json" for a in sp._actions):
            sp.add_argument("--json", action="store_true", help="one JSON object per line")
    p.set_defaults(run=run)


def _ids(next_id: Any, get_fd: Any) -> Iterator[int]:
    """Fds of every object of one kind, each closed after the caller's step."""
    cur = ffi.new("__u32 *", 0)
    while True:
        ret = next_id(cur[0], cur)
        if ret < 0:
            if ret == -errno.ENOENT or ffi.errno == errno.ENOENT:
                return
            check_int(ret, "walk the kernel's BPF ids")
        fd = get_fd(cur[0])
        if fd < 0:
            continue  # gone meanwhile
        try:
            yield fd
        finally:
            os.close(fd)


def _boot_time() -> float:
    return time.time() - time.clock_gettime(time.CLOCK_BOOTTIME)


def progs() -> list[dict[str, object]]:
    """The loaded programs: id, type, name, tag, instruction counts, run count and time, load time."""
    out: list[dict[str, object]] = []
    boot = _boot_time()
    for fd in _ids(lib.bpf_prog_get_next_id, lib.bpf_prog_get_fd_by_id):
        info = ffi.new("struct bpf_prog_info *")
        size = ffi.new("__u32 *", ffi.sizeof("struct bpf_prog_info"))
        check_int(lib.bpf_prog_get_info_by_fd(fd, info, size), "get program info")
        try:
            ptype = ProgramType(int(info.type)).name.lower()
        except ValueError:
            ptype = str(int(info.type))
        out.append({
            "id": int(info.id), "type": ptype, "name": cstr(info.name), "tag": bytes(ffi.buffer(info.tag, 8)).hex(),
            "xlated_bytes": int(info.xlated_prog_len), "jited_bytes": int(info.jited_prog_len),
            "run_count": int(info.run_cnt), "run_time_ns": int(info.run_time_ns), "uid": int(info.created_by_uid),
            "loaded_at": time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(boot + info.load_time / 1e9)),
            "maps": int(info.nr_map_ids),
        })  # fmt: skip
    return out


def maps() -> list[dict[str, object]]:
    """The kernel's maps: id, type, name, key and value size, capacity, flags."""
    out: list[dict[str, object]] = []
    for fd in _ids(lib.bpf_map_get_next_id, lib.bpf_map_get_fd_by_id):
        info = ffi.new("struct bpf_map_info *")
        size = ffi.new("__u32 *", ffi.sizeof("struct bpf_map_info"))
        check_int(lib.bpf_map_get_info_by_fd(fd, info, size), "get map info")
        try:
            mtype = MapType(int(info.type)).name.lower()
        except ValueError:
            mtype = str(int(info.type))
        out.append({
            "id": int(info.id), "type": mtype, "name": cstr(info.name), "key_size": int(info.key_size),
            "value_size": int(info.value_size), "max_entries": int(info.max_entries), "flags": int(info.map_flags),
        })  # fmt: skip
    return out


def _emit(rows: list[dict[str, object]], as_json: bool, fmt: str, header: str) -> None:
    if as_json:
        sys.stdout.write("".join(json.dumps(r) + "\n" for r in rows))
    else:
        sys.stdout.write(header + "\n" + "".join(fmt.format(**r) + "\n" for r in rows))


def run(args: argparse.Namespace) -> int:
    if args.what == "symbols":
        syms = sorted(_compat.find_symbols(args.binary, args.pattern), key=lambda s: s.offset)
        rows: list[dict[str, object]] = [
            {"offset": s.offset, "size": s.size, "name": s.name, "demangled": s.demangled, "binary": s.binary}
            for s in syms
        ]
        for r in rows:
            r["shown"] = r["demangled"] if r["demangled"] == r["name"] else f"{r['demangled']}  [{r['name']}]"
        _emit(rows, args.json, "{offset:#010x} {size:>7} {shown}", f"{'OFFSET':<10} {'SIZE':>7} FUNCTION")
        if not args.json:
            print(f"{len(rows)} functions", file=sys.stderr)
    elif args.what == "usdt":
        notes = _compat.usdt_probes(args.binary)
        rows = [{"provider": n.provider, "name": n.name, "address": n.address, "semaphore": n.semaphore,
                 "arguments": n.arguments} for n in notes]  # fmt: skip
        _emit(rows, args.json, "{provider}:{name}  {address:#x}  sem={semaphore:#x}  args: {arguments}",
              "PROVIDER:NAME  ADDRESS  SEMAPHORE  ARGUMENTS")  # fmt: skip
    elif args.what == "progs":
        _emit(progs(), args.json,
              "{id:>6} {type:<16} {name:<16} {tag}  {xlated_bytes:>6}B  runs {run_count}  loaded {loaded_at}",
              f"{'ID':>6} {'TYPE':<16} {'NAME':<16} {'TAG':<16}  {'XLATED':>7}")  # fmt: skip
    else:
        _emit(maps(), args.json,
              "{id:>6} {type:<20} {name:<16} key {key_size:>4}B  value {value_size:>6}B  max {max_entries}",
              f"{'ID':>6} {'TYPE':<20} {'NAME':<16} SIZES")  # fmt: skip
    sys.stdout.flush()
    return 0
