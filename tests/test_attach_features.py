"""pyprobe.features: every feature declares its kernel version; absences are explained."""

from __future__ import annotations

import pytest

import pyprobe
from pyprobe import features

pytestmark = pytest.mark.bpf


def test_every_feature_probes_and_explains_an_absence() -> None:
    for name, feature in features.FEATURES.items():
        assert feature.since >= (3, 18)  # the bpf() syscall
        status = features.probe(name)
        assert status.feature is feature
        if not status.available:
            assert status.reason and status.cause, name
            assert name in str(status)


def test_kinds_this_suite_runs_for_real_are_available() -> None:
    for name in ("uprobe", "tracepoint", "raw_tracepoint", "tp_btf", "perf_event", "xdp"):
        assert features.available(name), features.probe(name)


def test_require_names_the_feature_and_why() -> None:
    features.require("tracepoint")
    missing = [n for n in features.FEATURES if not features.available(n)]
    for name in missing:
        with pytest.raises(pyprobe.UnsupportedError, match=f"'{name}'.*Linux [0-9.]+\\+") as info:
            features.require(name, "doing something")
        assert str(info.value).startswith("doing something: this kernel lacks")


def test_unknown_feature() -> None:
    with pytest.raises(ValueError, match="unknown kernel feature 'nope'"):
        features.probe("nope")


def test_kernel_version_and_config() -> None:
    assert features.kernel_version() >= (4, 0, 0)
    config = features.kernel_config()
    assert config is None or config.get("CONFIG_BPF") == "y"
