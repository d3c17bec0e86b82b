"""Kernel feature probes: which attach kinds this kernel offers, and if not, why.

Each :class:`Feature` names the kernel version that introduced it and the
kernel config options it needs. :func:`probe` asks the running kernel (by
loading and attaching a two-instruction program where that is the only sure
test, or by looking for the perf PMU or tracefs file that backs it) and
returns a :class:`FeatureStatus` whose ``reason`` says what is missing:
a kernel older than the feature, a config option that is off, or lockdown.

>>> from pyprobe import features
>>> features.probe("kprobe").reason
'CONFIG_KPROBES is off in this kernel (/proc/config.gz)'
>>> features.require("kprobe", "attach kprobe to do_sys_openat2")   # raises UnsupportedError
"""

from __future__ import annotations

import errno
import functools
import os
import re
from collections.abc import Callable
from typing import Literal, NamedTuple

from pyprobe._ffi import ffi, lib
from pyprobe.enums import AttachType, MapType, ProgramType
from pyprobe.errors import UnsupportedError, _has_bpf_caps, _lockdown

__all__ = [
    "FEATURES",
    "Feature",
    "FeatureStatus",
    "available",
    "kernel_config",
    "kernel_version",
    "probe",
    "require",
]

Cause = Literal["", "kernel-version", "config", "lockdown", "permission", "unknown"]


class Feature(NamedTuple):
    """A kernel feature an attach kind needs."""

    name: str
    since: tuple[int, int]
    """The kernel version (major, minor) that introduced it."""
    description: str
    config: tuple[str, ...] = ()
    """Kernel config options it needs (all must be on)."""


class FeatureStatus(NamedTuple):
    """What :func:`probe` found: ``available``, or ``reason`` and ``cause`` of the absence."""

    feature: Feature
    available: bool
    reason: str = ""
    cause: Cause = ""

    @property
    def explained(self) -> bool:
        """True when the absence has a known cause: an older kernel, a config option off, lockdown."""
        return self.cause in ("kernel-version", "config", "lockdown")

    def __str__(self) -> str:
        if self.available:
            return f"{self.feature.name}: available"
        return f"{self.feature.name} ({self.feature.description}, Linux {_fmt(self.feature.since)}): {self.reason}"


def _fmt(version: tuple[int, ...]) -> str:
    return ".".join(str(v) for v in version)


_ITERATORS: tuple[tuple[str, tuple[int, int], str, tuple[str, ...]], ...] = (
    ("task", (5, 8), "tasks", ()),
    ("task_file", (5, 8), "the open files of tasks", ()),
    ("task_vma", (5, 12), "the memory mappings of tasks", ()),
    ("bpf_map", (5, 8), "BPF maps", ()),
    ("bpf_map_elem", (5, 9), "the elements of one BPF map", ()),
    ("bpf_prog", (5, 9), "BPF programs", ()),
    ("bpf_link", (6, 0), "BPF links", ()),
    ("tcp", (5, 9), "TCP sockets", ("CONFIG_INET",)),
    ("udp", (5, 9), "UDP sockets", ("CONFIG_INET",)),
    ("unix", (5, 17), "unix sockets", ("CONFIG_UNIX",)),
    ("ksym", (6, 0), "kernel symbols", ("CONFIG_KALLSYMS",)),
    ("cgroup", (6, 1), "cgroups", ("CONFIG_CGROUPS",)),
)
"""The iterator kinds with a feature ``iter_KIND``: (kind, first kernel, what it walks, config)."""

FEATURES: dict[str, Feature] = {
    f.name: f
    for f in (
        Feature("kprobe", (4, 1), "kprobes and kretprobes", ("CONFIG_KPROBES", "CONFIG_KPROBE_EVENTS")),
        Feature("uprobe", (4, 3), "uprobes and uretprobes", ("CONFIG_UPROBES", "CONFIG_UPROBE_EVENTS")),
        Feature("uprobe_multi", (6, 6), "uprobe_multi links (many uprobes in one link)", ("CONFIG_UPROBES",)),
        Feature(
            "sleepable_uprobe", (6, 0), "sleepable uprobes (uprobe.s: may fault user memory in)", ("CONFIG_UPROBES",)
        ),
        Feature("tracepoint", (4, 7), "tracepoint programs", ("CONFIG_BPF_EVENTS",)),
        Feature("raw_tracepoint", (4, 17), "raw tracepoint programs", ("CONFIG_BPF_EVENTS",)),
        Feature("tp_btf", (5, 5), "BTF-typed tracepoints (tp_btf)", ("CONFIG_DEBUG_INFO_BTF",)),
        Feature("fentry", (5, 5), "fentry programs (BPF trampolines)", ("CONFIG_DYNAMIC_FTRACE_WITH_DIRECT_CALLS",)),
        Feature("fexit", (5, 5), "fexit programs (BPF trampolines)", ("CONFIG_DYNAMIC_FTRACE_WITH_DIRECT_CALLS",)),
        # CONFIG_FUNCTION_ERROR_INJECTION only widens the functions fmod_ret may modify (LSM hooks
        # always, registered kernel functions from 6.2): Debian's kernels have it off.
        Feature(
            "fmod_ret", (5, 7), "fmod_ret programs (BPF trampolines)", ("CONFIG_DYNAMIC_FTRACE_WITH_DIRECT_CALLS",)
        ),
        Feature("freplace", (5, 6), "freplace programs (BPF trampolines replacing BPF functions)", ()),
        Feature("lsm", (5, 7), "BPF LSM programs", ("CONFIG_BPF_LSM",)),
        Feature("perf_event", (4, 9), "perf_event programs", ("CONFIG_PERF_EVENTS",)),
        Feature("xdp", (4, 8), "XDP programs", ()),
        # Socket kinds (pyprobe.attach.socket).
        Feature("socket_filter", (3, 19), "eBPF socket filters (SO_ATTACH_BPF)", ()),
        Feature("sk_reuseport", (4, 19), "SO_REUSEPORT selector programs (sk_reuseport)", ("CONFIG_INET",)),
        Feature("sk_lookup", (5, 9), "sk_lookup programs on a network namespace", ("CONFIG_INET",)),
        Feature("sk_msg", (4, 17), "sk_msg programs on a sockmap or sockhash", ("CONFIG_NET_SOCK_MSG",)),
        Feature("sk_skb", (4, 14), "sk_skb programs on a sockmap or sockhash", ("CONFIG_NET_SOCK_MSG",)),
        Feature("flow_dissector", (5, 7), "flow dissector programs on a network namespace (links)", ()),
        # cgroup kinds (pyprobe.attach.cgroup) and their storage maps
        Feature("cgroup_skb", (4, 10), "cgroup_skb programs (cgroup ingress/egress packets)", ("CONFIG_CGROUP_BPF",)),
        Feature("cgroup_sock", (4, 10), "cgroup sock programs (cgroup/sock_create...)", ("CONFIG_CGROUP_BPF",)),
        Feature(
            "cgroup_sock_addr", (4, 17), "cgroup sock_addr programs (cgroup/bind4, connect4...)", ("CONFIG_CGROUP_BPF",)
        ),
        Feature("sockops", (4, 13), "sockops programs (TCP socket events of a cgroup)", ("CONFIG_CGROUP_BPF",)),
        Feature("cgroup_device", (4, 15), "cgroup device programs (cgroup/dev)", ("CONFIG_CGROUP_BPF",)),
        Feature("cgroup_sysctl", (5, 2), "cgroup sysctl programs (cgroup/sysctl)", ("CONFIG_CGROUP_BPF",)),
        Feature(
            "cgroup_sockopt", (5, 3), "cgroup sockopt programs (cgroup/getsockopt, setsockopt)", ("CONFIG_CGROUP_BPF",)
        ),
        Feature("cgroup_link", (5, 7), "bpf_links to cgroups", ("CONFIG_CGROUP_BPF",)),
        Feature(
            "cgroup_storage", (4, 19), "cgroup local storage maps (BPF_MAP_TYPE_CGROUP_STORAGE)", ("CONFIG_CGROUP_BPF",)
        ),
        Feature("cgrp_storage", (6, 2), "cgroup storage maps (BPF_MAP_TYPE_CGRP_STORAGE)", ("CONFIG_CGROUPS",)),
        Feature("task_storage", (5, 11), "task storage maps (BPF_MAP_TYPE_TASK_STORAGE)", ()),
        Feature("inode_storage", (5, 10), "inode storage maps (BPF_MAP_TYPE_INODE_STORAGE)", ("CONFIG_BPF_LSM",)),
        # iterators, user ring buffers, struct_ops, arena (pyprobe.attach.iterators, pyprobe.maps._iter)
        *(
            Feature(f"iter_{kind}", since, f"BPF iterators over {what} (iter/{kind})", config)
            for kind, since, what, config in _ITERATORS
        ),
        Feature("iter_task_params", (6, 1), "task iterators limited to one process or thread (pid, tid)", ()),
        Feature("user_ringbuf", (6, 1), "user ring buffers (BPF_MAP_TYPE_USER_RINGBUF)", ()),
        Feature("struct_ops", (5, 6), "struct_ops maps (tcp_congestion_ops in BPF, BPF trampolines)", ()),
        Feature("struct_ops_link", (6, 4), 'struct_ops links (SEC(".struct_ops.link"))', ()),
        Feature("arena", (6, 9), "BPF arenas (BPF_MAP_TYPE_ARENA)", ()),
        # network attach kinds (pyprobe.attach.network)
        Feature("tcx", (6, 6), "tcx links (TC programs on an interface without qdisc)", ("CONFIG_NET_XGRESS",)),
        Feature("netkit", (6, 7), "netkit devices and their links", ("CONFIG_NETKIT",)),
        Feature("netfilter", (6, 4), "netfilter hooks (BPF netfilter links)", ("CONFIG_NETFILTER_BPF_LINK",)),
        Feature(
            "tc", (4, 1), "classic TC bpf filters (clsact qdisc)", ("CONFIG_NET_CLS_BPF", "CONFIG_NET_SCH_INGRESS")
        ),
    )
}


@functools.cache
def kernel_version() -> tuple[int, int, int]:
    """The running kernel's version, e.g. ``(6, 1, 0)``."""
    match = re.match(r"(\d+)\.(\d+)(?:\.(\d+))?", os.uname().release)
    if not match:
        return (0, 0, 0)
    return (int(match[1]), int(match[2]), int(match[3] or 0))


@functools.cache
def kernel_config() -> dict[str, str] | None:
    """The running kernel's config (``/proc/config.gz`` or ``/boot/config-RELEASE``), or None if unreadable."""
    text = None
    try:
        import gzip

        with gzip.open("/proc/config.gz", "rt") as f:
            text = f.read()
    except OSError:
        try:
            with open(f"/boot/config-{os.uname().release}") as f:
                text = f.read()
        except OSError:
            return None
    config: dict[str, str] = {}
    for line in text.splitlines():
        if line.startswith("CONFIG_") and "=" in line:
            key, _, value = line.partition("=")
            config[key] = value
        elif line.startswith("# CONFIG_") and line.endswith(" is not set"):
            config[line[2:].split()[0]] = "n"
    return config


def _config_source() -> str:
    return "/proc/config.gz" if os.path.exists("/proc/config.gz") else f"/boot/config-{os.uname().release}"


def _missing_config(feature: Feature) -> str | None:
    config = kernel_config()
    if config is None:
        return None
    for option in feature.config:
        if config.get(option, "n") not in ("y", "m"):
            return f"{option} is off in this kernel ({_config_source()})"
    return None


def _absent(feature: Feature, detail: str = "", err: int = 0) -> FeatureStatus:
    """The status of a feature the kernel refused, with the best explanation there is."""
    if kernel_version()[:2] < feature.since:
        return FeatureStatus(
            feature, False,
            f"Linux {_fmt(kernel_version())} is older than {_fmt(feature.since)}, which introduced it",
            "kernel-version",
        )  # fmt: skip
    if (missing := _missing_config(feature)) is not None:
        return FeatureStatus(feature, False, missing, "config")
    if err == errno.EPERM:
        if not _has_bpf_caps():
            return FeatureStatus(feature, False, "the process lacks CAP_BPF and CAP_PERFMON (or root)", "permission")
        mode = _lockdown()
        if mode:
            return FeatureStatus(
                feature, False, f"the kernel is in lockdown mode '{mode}', which refuses it even to root", "lockdown"
            )
        return FeatureStatus(
            feature, False,
            "the kernel refuses it to root with full capabilities (EPERM), as kernel lockdown does "
            "(mount securityfs on /sys/kernel/security to read the lockdown mode)",
            "lockdown",
        )  # fmt: skip
    why = detail or (os.strerror(err) if err else "not found")
    return FeatureStatus(feature, False, f"the kernel refused it: {why}", "unknown")


def _pmu_probe(kind: str) -> Callable[[Feature], FeatureStatus]:
    """Probes for kprobes or uprobes: the perf PMU that backs them, or tracefs's legacy events file."""

    def run(feature: Feature) -> FeatureStatus:
        if os.path.exists(f"/sys/bus/event_source/devices/{kind}/type"):
            return FeatureStatus(feature, True)
        for tracefs in ("/sys/kernel/tracing", "/sys/kernel/debug/tracing"):
            if os.path.exists(f"{tracefs}/{kind}_events"):
                return FeatureStatus(feature, True)
        return _absent(feature, f"no {kind} PMU (/sys/bus/event_source/devices/{kind}) and no tracefs {kind}_events")

    return run


def _probe_answer(feature: Feature, ret: int, reason: str) -> FeatureStatus:
    """The status from a probe's answer: 1 available, 0 not (``reason``), a negative errno when it failed."""
    if ret == 1:
        return FeatureStatus(feature, True)
    return _absent(feature, reason, -ret if ret < 0 else 0)


def _probe_uprobe_multi(feature: Feature) -> FeatureStatus:
    ret = int(lib.pyprobe_probe_uprobe_multi())
    return _probe_answer(feature, ret, "the kernel does not know BPF_TRACE_UPROBE_MULTI links")


def _load_probe(
    ptype: ProgramType, atype: AttachType, btf_func: str | None, attach: bool
) -> Callable[..., FeatureStatus]:
    def run(feature: Feature) -> FeatureStatus:
        ret = int(lib.pyprobe_probe_prog(int(ptype), int(atype), btf_func.encode() if btf_func else _NULL, attach))
        if ret == 0:
            return FeatureStatus(feature, True)
        if ret == -errno.ENOENT and btf_func:
            return _absent(feature, f"no '{btf_func}' in the kernel's BTF", errno.ENOENT)
        return _absent(feature, err=-ret)

    return run


def _type_probe(ptype: ProgramType) -> Callable[..., FeatureStatus]:
    def run(feature: Feature) -> FeatureStatus:
        ret = int(lib.libbpf_probe_bpf_prog_type(int(ptype), _NULL))
        return _probe_answer(feature, ret, f"the kernel does not know {ptype.name} programs")

    return run


def _linked_type_probe(ptype: ProgramType) -> Callable[..., FeatureStatus]:
    """A program type whose links came later than the type: the type, and a kernel with the links."""
    by_type = _type_probe(ptype)

    def run(feature: Feature) -> FeatureStatus:
        status = by_type(feature)
        if status.available and kernel_version()[:2] < feature.since:
            return _absent(feature)
        return status

    return run


def _probe_freplace(feature: Feature) -> FeatureStatus:
    # freplace runs through the same BPF trampolines as fentry: the fentry probe answers for both.
    base = probe("fentry")
    if kernel_version()[:2] >= feature.since and not base.available:
        return FeatureStatus(feature, False, f"{base.reason} (BPF trampolines, as for fentry)", base.cause)
    if kernel_version()[:2] < feature.since:
        return _absent(feature)
    return FeatureStatus(feature, True)


def _probe_fmod_ret(feature: Feature) -> FeatureStatus:
    # fmod_ret may modify only some functions: bpf_modify_return_test from 6.2 (before, only with
    # CONFIG_FUNCTION_ERROR_INJECTION), LSM hooks (security_*) always. Where the test function is
    # not modifiable (EINVAL, as on Debian's 6.1), a program on security_file_open answers; it
    # returns 0, which leaves the hook's result alone, and is detached at once.
    status = _load_probe(ProgramType.TRACING, AttachType.MODIFY_RETURN, "bpf_modify_return_test", True)(feature)
    if status.available or status.cause in ("kernel-version", "lockdown", "permission"):
        return status
    return _load_probe(ProgramType.TRACING, AttachType.MODIFY_RETURN, "security_file_open", True)(feature)


def _probe_lsm(feature: Feature) -> FeatureStatus:
    status = _load_probe(ProgramType.LSM, AttachType.LSM_MAC, "file_open", True)(feature)
    if status.available or status.cause != "unknown":
        return status
    try:
        with open("/sys/kernel/security/lsm") as f:
            active = f.read().strip().split(",")
    except OSError:
        return status
    if "bpf" not in active:
        return FeatureStatus(
            feature, False, f"'bpf' is not among the active LSMs ({','.join(active)}): boot with lsm=...,bpf", "config"
        )
    return status


def _probe_cgroup_link(feature: Feature) -> FeatureStatus:
    return _probe_answer(feature, int(lib.pyprobe_probe_cgroup_link()), "BPF_LINK_CREATE does not know cgroups")


def _iter_probe(kind: str) -> Callable[[Feature], FeatureStatus]:
    def run(feature: Feature) -> FeatureStatus:
        ret = int(lib.pyprobe_probe_iter(kind.encode()))
        return _probe_answer(feature, ret, f"the kernel has no bpf_iter_{kind} (no {kind} iterators)")

    return run


def _version_probe(base: str) -> Callable[[Feature], FeatureStatus]:
    """A feature that comes with a kernel version on top of feature ``base``: the version is the sure test."""

    def run(feature: Feature) -> FeatureStatus:
        if kernel_version()[:2] < feature.since:
            return _absent(feature)
        status = probe(base)
        if not status.available:
            return FeatureStatus(feature, False, status.reason, status.cause)
        return FeatureStatus(feature, True)

    return run


def _map_probe(mtype: MapType) -> Callable[[Feature], FeatureStatus]:
    def run(feature: Feature) -> FeatureStatus:
        ret = int(lib.libbpf_probe_bpf_map_type(int(mtype), _NULL))
        return _probe_answer(feature, ret, f"the kernel does not know {mtype.name} maps")

    return run


def _probe_ifindex_link(feature: Feature, atype: AttachType) -> FeatureStatus:
    return _probe_answer(
        feature, int(lib.pyprobe_probe_ifindex_link(int(atype))), f"the kernel does not know {atype.name} links"
    )


def _probe_tc(feature: Feature) -> FeatureStatus:
    # The filter and the qdisc are modules on most distributions (loaded on first use): the config
    # says whether they exist; the program type whether the kernel runs them.
    if (missing := _missing_config(feature)) is not None:
        return FeatureStatus(feature, False, missing, "config")
    return _type_probe(ProgramType.SCHED_CLS)(feature)


_PROBES: dict[str, Callable[[Feature], FeatureStatus]] = {
    "kprobe": _pmu_probe("kprobe"),
    "uprobe": _pmu_probe("uprobe"),
    "uprobe_multi": _probe_uprobe_multi,
    # Loading a sleepable kprobe-type program succeeds from 6.0 on and attaching it to a uprobe is the only
    # use the kernel allows; before, the load fails with EINVAL: the version is the sure test without a uprobe.
    "sleepable_uprobe": _version_probe("uprobe"),
    "tracepoint": _type_probe(ProgramType.TRACEPOINT),
    "raw_tracepoint": _type_probe(ProgramType.RAW_TRACEPOINT),
    "tp_btf": _load_probe(ProgramType.TRACING, AttachType.TRACE_RAW_TP, "sched_switch", True),
    "fentry": _load_probe(ProgramType.TRACING, AttachType.TRACE_FENTRY, "bpf_fentry_test1", True),
    "fexit": _load_probe(ProgramType.TRACING, AttachType.TRACE_FEXIT, "bpf_fentry_test1", True),
    "fmod_ret": _probe_fmod_ret,
    "freplace": _probe_freplace,
    "lsm": _probe_lsm,
    "perf_event": _type_probe(ProgramType.PERF_EVENT),
    "xdp": _type_probe(ProgramType.XDP),
    # Socket kinds (pyprobe.attach.socket).
    "socket_filter": _type_probe(ProgramType.SOCKET_FILTER),
    "sk_reuseport": _type_probe(ProgramType.SK_REUSEPORT),
    "sk_lookup": _type_probe(ProgramType.SK_LOOKUP),
    "sk_msg": _type_probe(ProgramType.SK_MSG),
    "sk_skb": _type_probe(ProgramType.SK_SKB),
    "flow_dissector": _linked_type_probe(ProgramType.FLOW_DISSECTOR),
    # cgroup kinds: a two-instruction program of the type loads (with the attach type the kernel checks)
    "cgroup_skb": _load_probe(ProgramType.CGROUP_SKB, AttachType.CGROUP_INET_INGRESS, None, False),
    "cgroup_sock": _load_probe(ProgramType.CGROUP_SOCK, AttachType.CGROUP_INET_SOCK_CREATE, None, False),
    "cgroup_sock_addr": _load_probe(ProgramType.CGROUP_SOCK_ADDR, AttachType.CGROUP_INET4_CONNECT, None, False),
    "sockops": _load_probe(ProgramType.SOCK_OPS, AttachType.CGROUP_SOCK_OPS, None, False),
    "cgroup_device": _load_probe(ProgramType.CGROUP_DEVICE, AttachType.CGROUP_DEVICE, None, False),
    "cgroup_sysctl": _load_probe(ProgramType.CGROUP_SYSCTL, AttachType.CGROUP_SYSCTL, None, False),
    "cgroup_sockopt": _load_probe(ProgramType.CGROUP_SOCKOPT, AttachType.CGROUP_GETSOCKOPT, None, False),
    "cgroup_link": _probe_cgroup_link,
    "cgroup_storage": _map_probe(MapType.CGROUP_STORAGE),
    "cgrp_storage": _map_probe(MapType.CGRP_STORAGE),
    "task_storage": _map_probe(MapType.TASK_STORAGE),
    "inode_storage": _map_probe(MapType.INODE_STORAGE),
    # iterators, user ring buffers, struct_ops, arena
    **{f"iter_{kind}": _iter_probe(kind) for kind, *_ in _ITERATORS},
    "iter_task_params": _version_probe("iter_task"),
    "user_ringbuf": _map_probe(MapType.USER_RINGBUF),
    "struct_ops": _type_probe(ProgramType.STRUCT_OPS),
    "struct_ops_link": _version_probe("struct_ops"),
    "arena": _map_probe(MapType.ARENA),
    # network attach kinds
    "tcx": lambda f: _probe_ifindex_link(f, AttachType.TCX_INGRESS),
    "netkit": lambda f: _probe_ifindex_link(f, AttachType.NETKIT_PRIMARY),
    "netfilter": lambda f: _probe_answer(
        f, int(lib.pyprobe_probe_netfilter()), "the kernel does not know netfilter links"
    ),
    "tc": _probe_tc,
}


_NULL = ffi.NULL


def _feature(name: str) -> Feature:
    try:
        return FEATURES[name]
    except KeyError:
        raise ValueError(f"unknown kernel feature {name!r} (known: {', '.join(FEATURES)})") from None


@functools.cache
def probe(name: str) -> FeatureStatus:
    """Probes the running kernel for feature ``name`` (a key of :data:`FEATURES`); cached per process.

    Loads (and for trampolines attaches and detaches) a two-instruction
    program where that is the only sure test; blocks for a few milliseconds.
    Raises ValueError for an unknown name.
    """
    feature = _feature(name)
    return _PROBES[name](feature)


def available(name: str) -> bool:
    """True when the running kernel offers feature ``name``."""
    return probe(name).available


def require(name: str, doing: str = "") -> None:
    """Raises :class:`~pyprobe.UnsupportedError` naming the feature and why it is missing, unless available."""
    status = probe(name)
    if status.available:
        return
    feature = status.feature
    raise UnsupportedError(
        errno.EOPNOTSUPP,
        f"this kernel lacks {feature.description} ('{feature.name}', Linux {_fmt(feature.since)}+): {status.reason}",
        context=doing,
    )
