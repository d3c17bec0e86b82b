"""The attach kinds of :class:`~pyprobe.Program`, one module per family (as cilium/ebpf's link package).

- :mod:`pyprobe.attach.tracing`: uprobes, USDT, tracepoints, kprobes, BTF tracing, freplace, perf events
- :mod:`pyprobe.attach.network`: XDP, tcx links and classic TC filters, netkit, netfilter hooks

Each module holds a mixin of ``attach_*`` methods and the typed links of its kind; :class:`ProgramCore`
(:mod:`pyprobe.attach._base`) is the state and checks they share.
"""
