"""pyprobe export against the real kernel: the bundled examples scraped after known workloads,
the map checks before attach, the library use, the HTTP endpoints with TLS and basic auth, SIGTERM."""

from __future__ import annotations

import http.client
import os
import shutil
import signal
import ssl
import struct
import subprocess
import sys
import time
import urllib.error
import urllib.request
from base64 import b64encode
from collections.abc import Iterator
from pathlib import Path

import pytest

pytest.importorskip("prometheus_client")
pytest.importorskip("yaml")

from prometheus_client import generate_latest

import pyprobe
from export_helpers import (
    EXAMPLES,
    fetch,
    run_usdt,
    run_utest,
    run_workload,
    samples,
    value,
    wait_for,
)
from pyprobe.export import ConfigError, Exporter, load_config
from pyprobe.export.web import ExporterServer, load_web_config

pytestmark = pytest.mark.bpf

HOST_EXAMPLES = ["syscalls", "open-errors", "utest-latency", "usdt-ticks", "cpu-samples"]


@pytest.fixture(scope="module")
def served() -> Iterator[tuple[Exporter, str]]:
    with Exporter() as exporter:
        for config in load_config(EXAMPLES, HOST_EXAMPLES):
            exporter.add(config)
        with ExporterServer(exporter, "127.0.0.1:0") as server:
            host, port = server.address
            yield exporter, f"http://{host}:{port}"


def test_examples_exact_counts(served: tuple[Exporter, str]) -> None:
    _, url = served
    comm = f"pxw{os.getpid() % 100000}"
    run_workload(comm, getppid=123, failed_opens=17)
    run_utest(50)
    run_usdt(9)
    text = fetch(url + "/metrics")
    assert value(text, "ebpf_exporter_syscalls_total", comm=comm, syscall="getppid") == 123
    assert value(text, "ebpf_exporter_open_errors_total", comm=comm, errno="ENOENT") == 17
    for name in ("zero", "one", "two"):
        assert value(text, "ebpf_exporter_usdt_ticks_total", remainder=name) == 3
    hist = "ebpf_exporter_utest_add_latency_seconds"
    assert value(text, hist + "_count") == 50
    assert value(text, hist + "_bucket", le="+Inf") == 50
    bounds = [2.0**i * 1e-9 for i in range(27)]
    counts = [value(text, hist + "_bucket", le=_go(b)) for b in bounds]
    assert all(c is not None for c in counts), counts
    assert counts == sorted(counts) and counts[-1] == 50 and counts[0] == 0  # cumulative; nothing takes 1 ns
    total = value(text, hist + "_sum")
    assert total is not None and 0 < total < 1  # sum of 50 latencies in seconds (the key bucket_max + 1)
    for cpu in pyprobe.perf_event.online_cpus():

        def sampled(cpu: int = cpu) -> bool:
            return (value(fetch(url + "/metrics"), "ebpf_exporter_cpu_samples_total", cpu=str(cpu)) or 0) > 0

        wait_for(sampled, what=f"cpu-clock samples on cpu {cpu}")
    for name in HOST_EXAMPLES:
        assert value(text, "ebpf_exporter_enabled_configs", name=name) == 1
        assert value(text, "ebpf_exporter_decoder_errors_total", config=name) == 0
    attached = [v for (n, _), v in samples(text).items() if n == "ebpf_exporter_ebpf_program_attached"]
    assert attached == [1.0] * 6  # six programs, each attached
    assert value(text, "ebpf_exporter_map_entries", config="usdt-ticks", map="usdt_ticks_total") == 3
    assert value(text, "ebpf_exporter_map_max_entries", config="utest-latency", map="utest_add_latency_seconds") == 28
    duration = value(text, "ebpf_exporter_scrape_duration_seconds")
    assert duration is not None and 0 < duration < 5


def _go(x: float) -> str:
    from prometheus_client.utils import floatToGoString

    return str(floatToGoString(x))


def test_batch_and_per_key_reads_agree(served: tuple[Exporter, str]) -> None:
    exporter, _ = served
    run_usdt(4)
    for exported in exporter.programs:
        if exported.config.name in ("usdt-ticks", "utest-latency"):
            for mm in exported.metrics:
                assert mm.read(batch=True) == mm.read(batch=False)
                assert mm.read(batch=True)


def test_index_and_healthz(served: tuple[Exporter, str]) -> None:
    _, url = served
    page = fetch(url + "/")
    sections = ("raw_tp/sys_enter", "perf_event/type=1,config=0,frequency=99", "tracepoint/syscalls/sys_exit_openat")
    for text in ("utest_add_enter", "uretprobe/", "usdt/", "cpu-samples", *sections):
        assert text in page
    assert fetch(url + "/healthz") == "ok\n"
    with pytest.raises(urllib.error.HTTPError) as info:
        fetch(url + "/nope")
    assert info.value.code == 404


def _loaded_names() -> list[str]:
    return [p.name for p in pyprobe.system.programs()]


def copy_example(tmp_path: Path, name: str, yaml_text: str) -> Path:
    shutil.copy(EXAMPLES / f"{name}.bpf.o", tmp_path / f"{name}.bpf.o")
    (tmp_path / f"{name}.yaml").write_text(yaml_text)
    return tmp_path


def ticks_counter(labels: str, name: str = "usdt_ticks_total") -> str:
    return f"metrics: {{counters: [{{name: {name}, help: h, labels: [{labels}]}}]}}"


USDT_MAPS = "__bpf_usdt_ip_to_spec_id, __bpf_usdt_specs, usdt_ticks_total"
MAP_ERRORS = [
    (ticks_counter("", "nosuch_total"), "metrics.counters[0].name",
     f"map 'nosuch_total' is not in the object (its maps: {USDT_MAPS})"),
    (ticks_counter("{name: a, size: 8, decoders: [{name: uint}]}"), "metrics.counters[0].labels",
     "has 4-byte keys but the labels take 8 bytes (a 8"),
    (ticks_counter("{name: a, size: 2, padding: 1, decoders: [{name: uint}]}"), "metrics.counters[0].labels",
     "has 4-byte keys but the labels take 3 bytes (a 2+1"),
]  # fmt: skip


@pytest.mark.parametrize(("yaml_text", "key", "words"), MAP_ERRORS)
def test_map_checks_before_anything_is_loaded(tmp_path: Path, yaml_text: str, key: str, words: str) -> None:
    copy_example(tmp_path, "usdt-ticks", yaml_text)
    before = _loaded_names().count("tick")
    with Exporter() as exporter:
        (config,) = load_config(tmp_path)
        with pytest.raises(ConfigError) as info:
            exporter.add(config)
        assert exporter.programs == []
    assert info.value.file == str(tmp_path / "usdt-ticks.yaml") and info.value.key == key
    assert words in str(info.value)
    assert _loaded_names().count("tick") == before  # nothing loaded, nothing attached


def test_add_object_from_the_tools_own_process() -> None:
    obj = pyprobe.load(EXAMPLES / "usdt-ticks.bpf.o")
    links = obj.attach()
    config = {"metrics": {"counters": [{
        "name": "usdt_ticks_total", "help": "ticks by remainder",
        "labels": [{"name": "remainder", "size": 4, "decoders": [{"name": "uint"}]}],
    }]}}  # fmt: skip
    try:
        with Exporter() as exporter:
            exported = exporter.add_object(obj, config, name="mytool")
            assert exported.owned is False
            run_usdt(6)
            text = generate_latest(exporter.registry).decode()
            assert [value(text, "ebpf_exporter_usdt_ticks_total", remainder=r) for r in "012"] == [2, 2, 2]
            assert value(text, "ebpf_exporter_enabled_configs", name="mytool") == 1
            with pytest.raises(ConfigError, match="already exported"):
                exporter.add_object(obj, config, name="mytool")
        assert obj.state == "loaded" and not links[0].closed  # the tool still owns its object and links
        assert generate_latest(exporter.registry).decode().count("usdt_ticks") == 0  # closed: no map metrics
    finally:
        obj.close()


def test_decode_errors_are_counted() -> None:
    bad = {"metrics": {"counters": [{
        "name": "usdt_ticks_total", "help": "h",
        "labels": [{"name": "n", "size": 4, "decoders": [{"name": "string"}, {"name": "syscall"}]}],
    }]}}  # fmt: skip
    with pyprobe.load(EXAMPLES / "usdt-ticks.bpf.o") as obj, Exporter() as exporter:
        obj.attach()
        exporter.add_object(obj, bad, name="bad")
        run_usdt(3)
        text = generate_latest(exporter.registry).decode()
        assert value(text, "ebpf_exporter_decoder_errors_total", config="bad") == 3  # three keys, none decodes
        assert "ebpf_exporter_usdt_ticks_total{" not in text


def make_cert(tmp_path: Path) -> tuple[Path, Path]:
    cert, key = tmp_path / "server.crt", tmp_path / "server.key"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )  # fmt: skip
    return cert, key


def test_tls_and_basic_auth(tmp_path: Path, served: tuple[Exporter, str]) -> None:
    bcrypt = pytest.importorskip("bcrypt")
    exporter, _ = served
    cert, _ = make_cert(tmp_path)
    hashed = bcrypt.hashpw(b"s3cret", bcrypt.gensalt(rounds=4)).decode().replace("$2b$", "$2y$")  # htpasswd's form
    web = tmp_path / "web.yml"
    web.write_text(f"tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n"
                   f"basic_auth_users:\n  prom: '{hashed}'\n")  # fmt: skip
    ctx = ssl.create_default_context(cafile=str(cert))
    with ExporterServer(exporter, "127.0.0.1:0", web_config=load_web_config(str(web))) as server:
        url = f"https://127.0.0.1:{server.address[1]}/metrics"

        def get(auth: str | None) -> tuple[int, str]:
            req = urllib.request.Request(url)
            if auth is not None:
                req.add_header("Authorization", "Basic " + b64encode(auth.encode()).decode())
            try:
                with urllib.request.urlopen(req, context=ctx, timeout=10) as resp:
                    return resp.status, resp.read().decode()
            except urllib.error.HTTPError as exc:
                return exc.code, exc.headers.get("WWW-Authenticate", "")

        assert get(None) == (401, 'Basic realm="pyprobe"')
        assert get("prom:wrong")[0] == 401
        assert get("nobody:s3cret")[0] == 401
        status, body = get("prom:s3cret")
        assert status == 200 and "ebpf_exporter_usdt_ticks_total" in body
        assert get("prom:s3cret")[0] == 200  # the second time from the cache of checked passwords
        with pytest.raises(
            (urllib.error.URLError, ConnectionError, http.client.HTTPException)
        ):  # plain HTTP is not served on the TLS port
            urllib.request.urlopen(f"http://127.0.0.1:{server.address[1]}/metrics", timeout=5)
        with pytest.raises(urllib.error.URLError, match="CERTIFICATE_VERIFY_FAILED"):  # an untrusted certificate
            urllib.request.urlopen(url, timeout=5, context=ssl.create_default_context())


TLS = "tls_server_config"
WEB_ERRORS = [
    (f"{TLS}: {{cert_file: server.crt}}", f"{TLS}.key_file", "is missing"),
    (f"{TLS}: {{cert_file: nope.crt, key_file: server.key}}", f"{TLS}.cert_file", "no such file"),
    (
        f"{TLS}: {{cert_file: server.crt, key_file: server.key, min_version: TLS9}}",
        f"{TLS}.min_version",
        "unknown version",
    ),
    ("basic_auth_users: {prom: plaintext}", "basic_auth_users.prom", "must be a bcrypt hash"),
    ("tls_config: {}", "tls_config", "unknown key"),
    (f"{TLS}: {{cert_file: server.key, key_file: server.crt}}", TLS, "cannot use the certificate"),
]


@pytest.mark.parametrize(("text", "key", "words"), WEB_ERRORS)
def test_web_config_errors(tmp_path: Path, text: str, key: str, words: str) -> None:
    make_cert(tmp_path)
    web = tmp_path / "web.yml"
    web.write_text(text + "\n")
    with pytest.raises(ConfigError) as info:
        load_web_config(str(web))
    assert info.value.file == str(web) and info.value.key == key and words in str(info.value)


def test_cli_serves_until_sigterm_then_detaches() -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "pyprobe", "export", "--config", str(EXAMPLES), "--names", "usdt-ticks",
         "--listen", "127.0.0.1:0"],
        stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert proc.stderr is not None
        line = proc.stderr.readline()
        assert "pyprobe: serving usdt-ticks on http://127.0.0.1:" in line, line
        url = line.split(" on ")[1].strip()
        run_usdt(3)
        text = fetch(url)
        assert value(text, "ebpf_exporter_usdt_ticks_total", remainder="one") == 1
        prog_id = next(lab for (n, lab), _ in samples(text).items() if n == "ebpf_exporter_ebpf_program_attached")[0][1]
        assert int(prog_id) in [p.id for p in pyprobe.system.programs()]
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
        assert "stopping: links detached, objects closed" in proc.stderr.read()
        deadline = time.monotonic() + 5
        while int(prog_id) in [p.id for p in pyprobe.system.programs()] and time.monotonic() < deadline:
            time.sleep(0.05)
        assert int(prog_id) not in [p.id for p in pyprobe.system.programs()]  # the program is gone
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_cli_config_error_exits_2(tmp_path: Path) -> None:
    copy_example(tmp_path, "usdt-ticks", ticks_counter("{name: a, size: 4, decoders: [{name: rot13}]}"))
    command = [sys.executable, "-m", "pyprobe", "export", "--config", str(tmp_path)]
    proc = subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 2
    key = "metrics.counters[0].labels[0].decoders[0].name"
    assert f"{tmp_path}/usdt-ticks.yaml: {key}: unknown decoder 'rot13'" in proc.stderr


def udp_packet(port: int) -> bytes:
    eth = bytes(12) + struct.pack("!H", 0x0800)
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 28, 0, 0, 64, 17, 0, bytes([127, 0, 0, 1]), bytes([127, 0, 0, 1]))
    return eth + ip + struct.pack("!HHHH", 40000, port, 8, 0)


@pytest.fixture
def veth_interface() -> Iterator[str]:
    name = f"pxe{os.getpid() % 100000}"
    subprocess.run(["ip", "link", "add", name, "type", "veth", "peer", "name", f"{name}p"], check=True)
    try:
        subprocess.run(["ip", "link", "set", name, "up"], check=True)
        yield name
    finally:
        subprocess.run(["ip", "link", "del", name], check=True)


def test_xdp_section_attaches_to_its_interface(tmp_path: Path, veth_interface: str) -> None:
    from conftest import ROOT

    build = [sys.executable, "-m", "pyprobe", "build", str(ROOT / "examples" / "exporter" / "xdp-udp.bpf.c"),
             "-o", str(tmp_path / "xdp-udp.bpf.o"), "-D", f'XDP_IFACE="{veth_interface}"']  # fmt: skip
    subprocess.run(build, check=True, capture_output=True)
    shutil.copy(EXAMPLES / "xdp-udp.yaml", tmp_path)
    with Exporter() as exporter:
        (config,) = load_config(tmp_path)
        exported = exporter.add(config)
        (link,) = exported.links
        assert isinstance(link, pyprobe.XdpLink) and link.interface == veth_interface
        shown = subprocess.run(["ip", "link", "show", veth_interface], check=True, capture_output=True, text=True)
        assert "prog/xdp id" in shown.stdout
        prog = exported.obj.programs["count_udp"]
        assert prog.test_run(udp_packet(5353), repeat=11).retval == 2  # XDP_PASS, counted 11 times
        assert prog.test_run(udp_packet(53)).retval == 2
        text = generate_latest(exporter.registry).decode()
        assert value(text, "ebpf_exporter_udp_packets_total", port="5353") == 11
        assert value(text, "ebpf_exporter_udp_packets_total", port="53") == 1
    shown = subprocess.run(["ip", "link", "show", veth_interface], check=True, capture_output=True, text=True)
    assert "prog/xdp" not in shown.stdout  # detached on close


def test_xdp_section_naming_a_missing_interface(tmp_path: Path) -> None:
    from conftest import ROOT

    build = [sys.executable, "-m", "pyprobe", "build", str(ROOT / "examples" / "exporter" / "xdp-udp.bpf.c"),
             "-o", str(tmp_path / "xdp-udp.bpf.o"), "-D", 'XDP_IFACE="nosuchif0"']  # fmt: skip
    subprocess.run(build, check=True, capture_output=True)
    shutil.copy(EXAMPLES / "xdp-udp.yaml", tmp_path)
    with Exporter() as exporter:
        (config,) = load_config(tmp_path)
        with pytest.raises(pyprobe.AttachError, match="no network interface 'nosuchif0'"):
            exporter.add(config)
        assert exporter.programs == []


def test_bpf_stats_give_run_counts() -> None:
    with pyprobe.load(EXAMPLES / "usdt-ticks.bpf.o") as obj, Exporter(bpf_stats=True) as exporter:
        obj.attach()
        exporter.add_object(obj, load_config(EXAMPLES, ["usdt-ticks"])[0])
        run_usdt(5)
        text = generate_latest(exporter.registry).decode()
        prog_id = str(obj.programs["tick"].id)
        assert value(text, "ebpf_exporter_ebpf_program_run_count_total", id=prog_id) == 5
        run_time = value(text, "ebpf_exporter_ebpf_program_run_time_seconds_total", id=prog_id)
        assert run_time is not None and 0 < run_time < 1
