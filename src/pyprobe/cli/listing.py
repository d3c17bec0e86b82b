"""``pyprobe list symbols|usdt|progs|maps``: discovery.

``progs`` and ``maps`` list the whole system's loaded programs and maps
(:mod:`pyprobe.system`, like bpftool) and need CAP_SYS_ADMIN.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any

__all__ = ["add_parser", "run"]


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


def _emit(rows: list[dict[str, object]], as_json: bool, fmt: str, header: str) -> None:
    if as_json:
        sys.stdout.write("".join(json.dumps(r) + "\n" for r in rows))
    else:
        sys.stdout.write(header + "\n" + "".join(fmt.format(**r) + "\n" for r in rows))


def _symbols(binary: str, pattern: str | None) -> list[dict[str, object]]:
    from pyprobe import symbols

    rows: list[dict[str, object]] = []
    for s in symbols.find(binary, pattern or "*"):
        shown = s.demangled if s.demangled == s.name else f"{s.demangled}  [{s.name}]"
        rows.append({"offset": s.offset, "size": s.size, "name": s.name, "demangled": s.demangled,
                     "binary": s.binary, "shown": shown})  # fmt: skip
    return rows


def _usdt(binary: str) -> list[dict[str, object]]:
    from pyprobe import usdt

    return [
        {"provider": p.provider, "name": p.name, "address": p.address, "semaphore": p.semaphore,
         "arguments": " ".join(a.spec for a in p.arguments), "binary": p.binary}
        for p in usdt.probes(binary)
    ]  # fmt: skip


def _progs() -> list[dict[str, object]]:
    from pyprobe import system

    return [
        {"id": p.id, "type": p.type_name, "name": p.name, "tag": p.tag, "xlated_bytes": p.xlated_bytes,
         "jited_bytes": p.jited_bytes, "verified_insns": p.verified_insns, "run_count": p.run_count,
         "run_time_ns": p.run_time_ns, "uid": p.uid, "maps": p.map_count,
         "loaded_at": time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(p.loaded_at))}
        for p in system.programs()
    ]  # fmt: skip


def _maps() -> list[dict[str, object]]:
    from pyprobe import system

    return [
        {"id": m.id, "type": m.type_name, "name": m.name, "key_size": m.key_size, "value_size": m.value_size,
         "max_entries": m.max_entries, "flags": m.flags, "btf_id": m.btf_id}
        for m in system.maps()
    ]  # fmt: skip


def run(args: argparse.Namespace) -> int:
    if args.what == "symbols":
        rows = _symbols(args.binary, args.pattern)
        _emit(rows, args.json, "{offset:#010x} {size:>7} {shown}", f"{'OFFSET':<10} {'SIZE':>7} FUNCTION")
        if not args.json:
            print(f"{len(rows)} functions", file=sys.stderr)
    elif args.what == "usdt":
        _emit(_usdt(args.binary), args.json, "{provider}:{name}  {address:#x}  sem={semaphore:#x}  args: {arguments}",
              "PROVIDER:NAME  ADDRESS  SEMAPHORE  ARGUMENTS")  # fmt: skip
    elif args.what == "progs":
        _emit(_progs(), args.json,
              "{id:>6} {type:<16} {name:<16} {tag}  {xlated_bytes:>6}B  runs {run_count}  loaded {loaded_at}",
              f"{'ID':>6} {'TYPE':<16} {'NAME':<16} {'TAG':<16}  {'XLATED':>7}")  # fmt: skip
    else:
        _emit(_maps(), args.json,
              "{id:>6} {type:<20} {name:<16} key {key_size:>4}B  value {value_size:>6}B  max {max_entries}",
              f"{'ID':>6} {'TYPE':<20} {'NAME':<16} SIZES")  # fmt: skip
    sys.stdout.flush()
    return 0
