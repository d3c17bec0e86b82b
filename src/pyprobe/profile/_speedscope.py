"""speedscope's JSON file format (https://www.speedscope.app/file-format-schema.json): "sampled" profiles."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from pyprobe.profile._model import folded_name

if TYPE_CHECKING:
    from pyprobe.profile._model import Profile, Sample

__all__ = ["SCHEMA", "speedscope_json"]

SCHEMA = "https://www.speedscope.app/file-format-schema.json"


def speedscope_json(profile: Profile, *, name: str = "pyprobe profile") -> str:
    """The profile as a speedscope file: one sampled profile per process, heaviest first.

    Frames are shared by every profile (``name`` as in folded stacks, with
    ``_[k]``/``_[j]`` for kernel and JIT frames; ``file`` the module); each
    sample is a root-first list of frame indices weighted by its count (unit
    "none": samples).
    """
    from pyprobe import __version__

    frames: list[dict[str, Any]] = []
    index: dict[tuple[str, str | None], int] = {}
    by_pid: dict[int, list[Sample]] = {}
    for s in profile.samples:
        by_pid.setdefault(s.pid, []).append(s)
    profiles = []
    for pid, samples in sorted(by_pid.items(), key=lambda kv: -sum(s.count for s in kv[1])):
        stacks: list[list[int]] = []
        weights: list[int] = []
        for s in samples:
            stack = []
            for f in s.frames:
                key = (folded_name(f), f.module)
                i = index.get(key)
                if i is None:
                    i = index[key] = len(frames)
                    frames.append({"name": key[0], "file": f.module} if f.module else {"name": key[0]})
                stack.append(i)
            stacks.append(stack)
            weights.append(s.count)
        profiles.append({
            "type": "sampled",
            "name": f"{samples[0].comm} ({pid})",
            "unit": "none",
            "startValue": 0,
            "endValue": sum(weights),
            "samples": stacks,
            "weights": weights,
        })  # fmt: skip
    doc = {
        "$schema": SCHEMA,
        "shared": {"frames": frames},
        "profiles": profiles,
        "name": name,
        "activeProfileIndex": 0,
        "exporter": f"pyprobe {__version__}",
    }
    return json.dumps(doc, separators=(",", ":"))
