"""pyprobe.export's config reading, decoders and histogram semantics (no kernel needed, except the map checks)."""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("prometheus_client")
pytest.importorskip("yaml")

from conftest import BUILD
from pyprobe.export import ConfigError, DecoderConfig, LabelConfig, config_from_dict, load_config
from pyprobe.export.decoders import DECODERS, DecodeError, SkipLabelSet, decode_key
from pyprobe.export.histogram import transform

EXAMPLES = BUILD / "examples" / "exporter"


def counter(labels: list[dict[str, Any]], name: str = "c_total") -> dict[str, Any]:
    return {"metrics": {"counters": [{"name": name, "help": "h", "labels": labels}]}}


def uint_label(name: str = "x", size: int = 4, **extra: Any) -> dict[str, Any]:
    return {"name": name, "size": size, "decoders": [{"name": "uint"}], **extra}


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / f"{name}.yaml"
    path.write_text(text)
    (tmp_path / f"{name}.bpf.o").write_bytes(b"")
    return path


def label_with(**fields: Any) -> dict[str, Any]:
    return counter([{"name": "x", "size": 4, **fields}])


def histogram(**fields: Any) -> dict[str, Any]:
    return {"metrics": {"histograms": [{"name": "h", "help": "h", "labels": [uint_label()], **fields}]}}


LABEL0 = "metrics.counters[0].labels[0]"
HIST0 = "metrics.histograms[0]"
CONFIG_ERRORS = [
    ({"metrics": {}}, "metrics", "no counters"),
    (label_with(decoders=[{"name": "nope"}]), f"{LABEL0}.decoders[0].name", "unknown decoder 'nope'"),
    (counter([{"name": "x", "decoders": [{"name": "uint"}]}]), f"{LABEL0}.size", "is missing"),
    (label_with(), f"{LABEL0}.decoders", "at least one decoder"),
    (counter([uint_label(), uint_label()]), "metrics.counters[0].labels[1].name", "appears twice"),
    (label_with(decoders=[{"name": "regexp"}]), f"{LABEL0}.decoders[0].regexps", "is missing"),
    (label_with(decoders=[{"name": "regexp", "regexps": ["("]}]), f"{LABEL0}.decoders[0].regexps[0]", "not a valid"),
    ({"metrics": {"counters": [{"name": "c", "labels": []}]}}, "metrics.counters[0].help", "is missing"),
    ({"metrics": {"counters": [{"name": "bad-name", "help": "h"}]}}, "metrics.counters[0].name", "not a valid"),
    (histogram(bucket_type="log"), f"{HIST0}.bucket_type", "unknown bucket type 'log'"),
    (histogram(bucket_type="exp2", bucket_max=0), f"{HIST0}.bucket_max", "must be above bucket_min"),
    (histogram(bucket_type="fixed"), f"{HIST0}.bucket_keys", "is missing or empty"),
    (histogram(bucket_type="fixed", bucket_keys=[1, 1]), f"{HIST0}.bucket_keys[1]", "must increase"),
    ({"metrics": {"counters": [{"name": "c", "help": "h", "colour": 1}]}}, "metrics.counters[0].colour", "unknown key"),
    ({"metrics": {"counters": [{"name": "c", "help": "h"}] * 2}}, "metrics.counters[1].name", "already used"),
]


@pytest.mark.parametrize(("data", "key", "words"), CONFIG_ERRORS)
def test_config_errors_name_file_and_key(tmp_path: Path, data: dict[str, Any], key: str, words: str) -> None:
    import yaml

    path = write(tmp_path, "bad", yaml.safe_dump(data))
    with pytest.raises(ConfigError) as info:
        load_config(tmp_path, ["bad"])
    assert info.value.file == str(path)
    assert info.value.key == key
    assert words in str(info.value)
    assert str(path) in str(info.value) and key in str(info.value)


def test_config_file_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no such file or directory"):
        load_config(tmp_path / "missing")
    with pytest.raises(ConfigError, match="no config named 'x'"):
        load_config(tmp_path, ["x"])
    path = write(tmp_path, "broken", "metrics: [unclosed")
    with pytest.raises(ConfigError, match="is not valid YAML") as info:
        load_config(path)
    assert info.value.file == str(path)
    (tmp_path / "noobj.yaml").write_text("metrics: {counters: [{name: a, help: b}]}")
    with pytest.raises(ConfigError, match=r"noobj\.bpf\.o does not exist"):
        load_config(tmp_path, ["noobj"])


def test_examples_parse_unchanged() -> None:
    configs = {c.name: c for c in load_config(EXAMPLES)}
    assert {"syscalls", "open-errors", "utest-latency", "usdt-ticks", "cpu-samples", "kprobe-opens"} <= set(configs)
    hist = configs["utest-latency"].histograms[0]
    assert (hist.bucket_type, hist.bucket_min, hist.bucket_max, hist.bucket_multiplier) == ("exp2", 0, 26, 1e-9)
    errors = configs["open-errors"].counters[0]
    assert [(lb.name, lb.size, lb.padding) for lb in errors.labels] == [("comm", 16, 0), ("errno", 4, 4)]
    assert configs["usdt-ticks"].counters[0].labels[0].decoders[1].static_map == {"0": "zero", "1": "one", "2": "two"}
    assert configs["syscalls"].bpf_path == str(EXAMPLES / "syscalls.bpf.o")
    assert [c.name for c in load_config(EXAMPLES, ["usdt-ticks", "syscalls"])] == ["usdt-ticks", "syscalls"]


def d(name: str, **kw: Any) -> DecoderConfig:
    return DecoderConfig(name=name, **kw)


def test_decoders() -> None:
    assert DECODERS["uint"](b"\x01\x02", d("uint")) == b"513"
    assert DECODERS["uint"]((2**64 - 1).to_bytes(8, "little"), d("uint")) == str(2**64 - 1).encode()
    with pytest.raises(DecodeError, match="1, 2, 4 or 8 bytes"):
        DECODERS["uint"](b"\0\0\0", d("uint"))
    assert DECODERS["string"](b"bash\0\0junk", d("string")) == b"bash"
    assert DECODERS["hex"](b"\xde\xad", d("hex")) == b"dead"
    assert DECODERS["syscall"](b"0", d("syscall")) == b"read"
    assert DECODERS["syscall"](b"59", d("syscall")) == b"execve"
    assert DECODERS["syscall"](b"9999", d("syscall")) == b"unknown_syscall:9999"
    with pytest.raises(DecodeError, match="put `uint` before it"):
        DECODERS["syscall"](b"\x01\0", d("syscall"))
    assert DECODERS["errno"](b"2", d("errno")) == b"ENOENT"
    smap = d("static_map", static_map={"1": "one"})
    assert DECODERS["static_map"](b"1", smap) == b"one"
    assert DECODERS["static_map"](b"7", smap) == b"unknown:7"
    assert DECODERS["static_map"](b"7", d("static_map", static_map={"1": "one"}, allow_unknown=True)) == b"7"
    rx = d("regexp", regexps=["^(sshd|bash)$", "^python"])
    assert DECODERS["regexp"](b"bash", rx) == b"bash"
    assert DECODERS["regexp"](b"python3", rx) == b"python"
    with pytest.raises(SkipLabelSet):
        DECODERS["regexp"](b"zsh", rx)
    assert DECODERS["inet_ip"](bytes([127, 0, 0, 1]), d("inet_ip")) == b"127.0.0.1"
    assert DECODERS["inet_ip"](bytes(10) + b"\xff\xff" + bytes([10, 0, 0, 2]), d("inet_ip")) == b"10.0.0.2"
    assert DECODERS["inet_ip"](bytes(15) + b"\x01", d("inet_ip")) == b"::1"
    assert DECODERS["ifname"](socket.if_nametoindex("lo").to_bytes(4, "little"), d("ifname")) == b"lo"
    assert DECODERS["majorminor"]((999 << 8 | 7).to_bytes(4, "little"), d("majorminor")) == b"unknown:999:7"
    missing = DECODERS["pci_vendor"](b"32902", d("pci_vendor"))
    assert missing in (b"missing pci.ids db", b"Intel Corporation")


def test_ksym_decoder_names_kernel_functions() -> None:
    with open("/proc/kallsyms") as f:
        entries = [line.split() for line in f]
    addr = next(int(a, 16) for a, _t, n, *_ in entries if n == "do_sys_openat2" and int(a, 16))
    assert DECODERS["ksym"]((addr + 1).to_bytes(8, "little"), d("ksym")) == b"do_sys_openat2"


def test_cgroup_decoder_walks_the_hierarchy(tmp_path: Path) -> None:
    import os
    import subprocess

    from pyprobe.export import decoders

    root = decoders.cgroup2_root()
    mounted = False
    if not os.path.exists(os.path.join(root, "cgroup.controllers")):  # no cgroup2 mounted: mount one here
        root = str(tmp_path)
        mounted = subprocess.run(["mount", "-t", "cgroup2", "none", root], check=False).returncode == 0
        if not mounted:
            pytest.skip("no cgroup2 hierarchy and none can be mounted")
    try:
        child = os.path.join(root, "pyprobe-export-test")
        os.makedirs(child, exist_ok=True)
        cgroups = decoders._Cgroups(root)
        assert cgroups.resolve(os.stat(child).st_ino) == child
        assert cgroups.resolve(os.stat(root).st_ino) == root
        assert cgroups.resolve(2**62) == ""  # no such cgroup: remembered as unknown
        os.rmdir(child)
    finally:
        if mounted:
            subprocess.run(["umount", root], check=True)
    assert decoders.DECODERS["cgroup"](str(2**62).encode(), d("cgroup")) == f"unknown_cgroup_id:{2**62}".encode()


def test_key_split_by_size_and_padding() -> None:
    labels = (
        LabelConfig("comm", 4, 0, (d("string"),)),
        LabelConfig("err", 4, 4, (d("uint"), d("errno"))),
        LabelConfig("n", 2, 0, (d("uint"),)),
    )
    raw = b"ab\0\0" + (2).to_bytes(4, "little") + b"\xff" * 4 + (7).to_bytes(2, "little")
    assert decode_key(raw, labels) == ("ab", "ENOENT", "7")
    with pytest.raises(DecodeError, match="take 14 bytes but the key has 15"):
        decode_key(raw + b"\0", labels)


def hist(bucket_type: str, **kw: Any) -> Any:
    data = {"name": "h", "help": "h", "bucket_type": bucket_type, "labels": [uint_label()], **kw}
    return config_from_dict("t", {"metrics": {"histograms": [data]}}).histograms[0]


def test_histogram_semantics() -> None:
    b = transform(hist("exp2", bucket_min=0, bucket_max=3), {0.0: 1, 2.0: 3, 3.0: 1, 4.0: 500, 9.0: 7})
    assert b.buckets == [(1.0, 1), (2.0, 1), (4.0, 4), (8.0, 5)]
    assert (b.count, b.sum) == (5, 500.0)  # key bucket_max+1 is the sum; key 9 is out of range and dropped
    b = transform(hist("exp2zero", bucket_min=0, bucket_max=3, bucket_multiplier=0.5), {0.0: 2, 1.0: 1, 3.0: 1})
    assert b.buckets == [(0.0, 2), (0.5, 3), (1.0, 3), (2.0, 4)]
    b = transform(hist("linear", bucket_min=1, bucket_max=3, bucket_multiplier=10), {1.0: 1, 3.0: 2, 4.0: 9})
    assert (b.buckets, b.count, b.sum) == ([(10.0, 1), (20.0, 1), (30.0, 3)], 3, 90.0)
    b = transform(hist("fixed", bucket_keys=[5, 10, 50]), {5.0: 1, 50.0: 2, 51.0: 70})
    assert (b.buckets, b.count, b.sum) == ([(5.0, 1), (10.0, 1), (50.0, 3)], 3, 70.0)


def test_systemd_unit_runs_the_command_with_bpf_capabilities() -> None:
    import configparser
    import shlex

    from conftest import ROOT
    from pyprobe.cli.main import build_parser

    unit = configparser.ConfigParser(strict=False, interpolation=None)
    unit.read(ROOT / "examples" / "exporter" / "pyprobe-exporter.service")
    service = unit["Service"]
    argv = shlex.split(service["ExecStart"])
    assert argv[0].endswith("/pyprobe") and argv[1] == "export"
    args = build_parser("export").parse_args(argv[1:])
    assert (args.config, args.listen) == ("/etc/pyprobe-exporter", ":9435")
    ambient = service["AmbientCapabilities"].split()
    assert {"CAP_BPF", "CAP_PERFMON", "CAP_SYS_ADMIN"} <= set(ambient)
    assert service["CapabilityBoundingSet"].split() == ambient
    assert service["NoNewPrivileges"] == "yes" and service["KillSignal"] == "SIGTERM"


def test_import_pyprobe_leaves_the_export_packages_alone() -> None:
    import subprocess
    import sys

    code = (
        "import sys, pyprobe, pyprobe.cli.main as m; m.build_parser(); "
        "print(sorted(n for n in ('prometheus_client', 'yaml', 'bcrypt', 'pyprobe.export') if n in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout
    assert out.strip() == "[]"


def test_a_missing_extra_names_the_pip_command() -> None:
    import subprocess
    import sys

    code = (
        "import sys; sys.modules['prometheus_client'] = None\n"  # as if the package were not installed
        "try:\n    import pyprobe.export\nexcept ImportError as e:\n    print(e)"
    )
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout
    assert "needs the package 'prometheus_client': pip install pyprobe[export]" in out
