"""The attach kinds of :class:`~pyprobe.Program`, one module per family (as cilium/ebpf's link package).

- :mod:`pyprobe.attach.tracing`: uprobes, USDT, tracepoints, kprobes, BTF tracing, freplace, perf events
- :mod:`pyprobe.attach.network`: XDP
- :mod:`pyprobe.attach.socket`: socket filters, SO_REUSEPORT, sk_lookup, sk_msg / sk_skb, flow dissector
- :mod:`pyprobe.attach.cgroup`: cgroup_skb, sock, sock_addr, sockops, sysctl, sockopt and device programs

Each module holds a mixin of ``attach_*`` methods and the typed links of its kind; :class:`ProgramCore`
(:mod:`pyprobe.attach._base`) is the state and checks they share.
"""
