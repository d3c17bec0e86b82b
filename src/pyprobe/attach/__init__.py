"""The attach kinds of :class:`~pyprobe.Program`, one module per family (as cilium/ebpf's link package).

- :mod:`pyprobe.attach.tracing`: uprobes, USDT, tracepoints, kprobes, BTF tracing, freplace, perf events
- :mod:`pyprobe.attach.socket`: socket filters, SO_REUSEPORT, sk_lookup, sk_msg / sk_skb, flow dissector
- :mod:`pyprobe.attach.cgroup`: cgroup_skb, sock, sock_addr, sockops, sysctl, sockopt and device programs
- :mod:`pyprobe.attach.iterators`: BPF iterators (``attach_iter``, :class:`IterLink`)
- :mod:`pyprobe.attach.struct_ops`: the link of a registered struct_ops map
- :mod:`pyprobe.attach.sections`: handlers for SEC() names libbpf does not know
- :mod:`pyprobe.attach.network`: XDP, tcx links and classic TC filters, netkit, netfilter hooks

Each module holds a mixin of ``attach_*`` methods and the typed links of its kind; :class:`ProgramCore`
(:mod:`pyprobe.attach._base`) is the state and checks they share.
"""
