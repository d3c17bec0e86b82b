"""``pyprobe run OBJ.bpf.o``: load any object, auto-attach it, stream its events and bpf_printk lines.

Ring buffer records are decoded with ``--event-type NAME`` (a struct in the
object's BTF) when the installed pyprobe can type BTF structs, and shown as
hex otherwise. Runs until Ctrl-C or ``--duration``.
"""

from __future__ import annotations

import argparse
import ctypes
import json
import sys
import time
from typing import Any

import pyprobe
from pyprobe.cli import _compat
from pyprobe.enums import MapType

__all__ = ["add_parser", "run"]


def add_parser(sub: Any) -> None:
    p = sub.add_parser("run", help="load an object, auto-attach, stream ring buffer events and bpf_printk")
    p.add_argument("object", metavar="OBJ.bpf.o")
    p.add_argument("--event-type", metavar="NAME", help="struct in the object's BTF that ring buffer records hold")
    p.add_argument("--duration", type=float, metavar="S", help="stop after S seconds")
    p.add_argument("--json", action="store_true", help="one JSON object per line")
    p.set_defaults(run=run)


def _to_plain(value: object) -> object:
    if isinstance(value, ctypes.Structure | ctypes.Union):
        return {name: _to_plain(getattr(value, name)) for name, *_ in value._fields_}
    if isinstance(value, ctypes.Array):
        items = list(value)
        if items and isinstance(items[0], bytes):
            return b"".join(items).split(b"\0", 1)[0].decode("utf-8", "replace")
        return [_to_plain(v) for v in items]
    if isinstance(value, bytes):
        return value.split(b"\0", 1)[0].decode("utf-8", "replace")
    return value


def _decoder(obj: pyprobe.BpfObject, name: str | None) -> Any:
    if name is None:
        return None
    btf = getattr(obj, "btf", None)
    finder = getattr(btf, "type_by_name", None)
    if finder is None:
        print(f"pyprobe: this pyprobe cannot type BTF structs; showing {name} records as hex", file=sys.stderr)
        return None
    ctype = finder(name)
    if ctype is None:
        raise ValueError(f"no type {name!r} in the BTF of {obj.name}")
    return ctype


def run(args: argparse.Namespace) -> int:
    with pyprobe.load(args.object) as obj:
        decode = _decoder(obj, args.event_type)
        links = obj.attach()
        rings = [(m.name, _compat.Ring(m.fd, m.max_entries)) for m in obj.maps.values() if m.type == MapType.RINGBUF]
        try:
            pipe: _compat.PipeReader | None = _compat.PipeReader()
        except OSError:
            pipe = None
        print(f"{obj.name}: {len(links)} program(s) attached, {len(rings)} ring buffer(s); Ctrl-C to end",
              file=sys.stderr)  # fmt: skip
        seen = printk = 0
        start = time.monotonic()
        try:
            while args.duration is None or time.monotonic() - start < args.duration:
                time.sleep(0.05)
                out = []
                for name, ring in rings:
                    for rec in ring.drain():
                        raw = bytes(rec)
                        rec.release()
                        seen += 1
                        if decode is not None and len(raw) >= ctypes.sizeof(decode):
                            value = _to_plain(decode.from_buffer_copy(raw[: ctypes.sizeof(decode)]))
                            out.append(json.dumps({"map": name, "event": value}) if args.json else f"{name}: {value}")
                        else:
                            out.append(
                                json.dumps({"map": name, "raw": raw.hex()}) if args.json else f"{name}: {raw.hex()}"
                            )
                for line in pipe.read() if pipe else []:
                    printk += 1
                    out.append(json.dumps({"printk": line.message, "pid": line.pid, "task": line.task})
                               if args.json else f"printk {line.task}-{line.pid}: {line.message}")  # fmt: skip
                if out:
                    sys.stdout.write("\n".join(out) + "\n")
                    sys.stdout.flush()
        except KeyboardInterrupt:
            pass
        finally:
            for _, ring in rings:
                ring.close()
            if pipe:
                pipe.close()
            for link in links:
                link.detach()
        print(f"\n{seen} events, {printk} printk lines", file=sys.stderr)
    return 0
