"""pprof's profile.proto, gzip-compressed: what ``go tool pprof``, Pyroscope and Grafana read.

The messages come from ``_proto/profile.proto`` (generated ``profile_pb2``),
encoded by the ``protobuf`` package (the ``profile`` extra).
"""

from __future__ import annotations

import gzip
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pyprobe.profile._model import Frame, Profile

__all__ = ["pprof_bytes", "pprof_message"]


def _messages() -> Any:
    try:
        from pyprobe.profile._proto import profile_pb2
    except ImportError as exc:
        raise ImportError(
            "writing pprof (.pb.gz) needs the protobuf package: pip install 'pyprobe[profile]' (or protobuf>=5.26)"
        ) from exc
    return profile_pb2


def pprof_message(profile: Profile) -> Any:
    """The profile as a ``perftools.profiles.Profile`` message.

    Values per sample: ``samples/count`` and ``cpu/nanoseconds`` (count
    times the sampling period); labels ``pid``, ``tid`` (numbers) and
    ``comm``. One Location per distinct frame, one Function per (name,
    module), one Mapping per module.
    """
    pb = _messages()
    out = pb.Profile()
    strings: dict[str, int] = {"": 0}
    table: list[str] = [""]

    def s(text: str) -> int:
        i = strings.get(text)
        if i is None:
            i = strings[text] = len(table)
            table.append(text)
        return i

    period = round(1e9 / profile.frequency) if profile.frequency else 0
    out.sample_type.add(type=s("samples"), unit=s("count"))
    out.sample_type.add(type=s("cpu"), unit=s("nanoseconds"))
    out.period_type.type = s("cpu")
    out.period_type.unit = s("nanoseconds")
    out.period = period
    out.time_nanos = int(profile.start * 1e9)
    out.duration_nanos = int(profile.duration * 1e9)
    out.default_sample_type = s("cpu")

    mappings: dict[str, Any] = {}
    spans: dict[str, list[int]] = {}
    functions: dict[tuple[str, str | None], int] = {}
    locations: dict[Frame, int] = {}
    for sample in profile.samples:
        for f in sample.frames:
            if f.module is not None:
                span = spans.setdefault(f.module, [f.address, f.address])
                span[0] = min(span[0], f.address)
                span[1] = max(span[1], f.address)
    leaves: dict[str, int] = {}
    for sample in profile.samples:
        user = [f for f in sample.frames if f.kind == "user" and f.module and f.module.startswith("/")]
        if user:
            leaves[user[-1].module or ""] = leaves.get(user[-1].module or "", 0) + sample.count
    # mapping[0] is the main binary: the file most samples run in
    for module in sorted(spans, key=lambda m: -leaves.get(m, 0)):
        m = out.mapping.add(id=len(mappings) + 1, filename=s(module), has_functions=True)
        mappings[module] = m
        m.memory_start, m.memory_limit = spans[module][0], spans[module][1] + 1

    def location(f: Frame) -> int:
        loc_id = locations.get(f)
        if loc_id is not None:
            return loc_id
        key = (f.name, f.module)
        fn_id = functions.get(key)
        if fn_id is None:
            fn_id = functions[key] = len(functions) + 1
            out.function.add(id=fn_id, name=s(f.name), system_name=s(f.name), filename=s(f.module or ""))
        loc_id = locations[f] = len(locations) + 1
        loc = out.location.add(id=loc_id, address=f.address)
        if f.module is not None:
            loc.mapping_id = mappings[f.module].id
        loc.line.add(function_id=fn_id)
        return loc_id

    pid_key, tid_key, comm_key = s("pid"), s("tid"), s("comm")
    for sample in profile.samples:
        msg = out.sample.add()
        msg.location_id.extend(location(f) for f in reversed(sample.frames))
        msg.value.extend((sample.count, sample.count * period))
        msg.label.add(key=pid_key, num=sample.pid)
        msg.label.add(key=tid_key, num=sample.tid)
        msg.label.add(key=comm_key, str=s(sample.comm))
    out.string_table.extend(table)
    return out


def pprof_bytes(profile: Profile) -> bytes:
    """The gzip-compressed encoding of :func:`pprof_message`."""
    return gzip.compress(pprof_message(profile).SerializeToString(), compresslevel=6)
