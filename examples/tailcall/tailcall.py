"""tailcall: one XDP entry program dispatching to per-protocol programs through a prog array.

Fills the IPv4 and IPv6 slots of the ``handlers`` prog array, runs an IPv4,
an IPv6 and an ARP packet through the entry program in the kernel with
BPF_PROG_RUN (no network interface needed), prints each verdict and the
counters, then puts ``handle_arp`` into its slot and runs the ARP packet
again: the same entry program now reaches it.

    pyprobe build tailcall.bpf.c --skeleton tailcall_skel.py
    sudo python tailcall.py [--repeat N]
"""

from __future__ import annotations

import argparse
import sys

from tailcall_skel import TailcallSkeleton

SLOT_IPV4, SLOT_IPV6, SLOT_ARP, SLOT_UNHANDLED = range(4)  # enum slot in tailcall.h
SLOT_NAMES = ["ipv4", "ipv6", "arp", "unhandled"]
ETHER_TYPES = {"ipv4": 0x0800, "ipv6": 0x86DD, "arp": 0x0806}
VERDICTS = ["XDP_ABORTED", "XDP_DROP", "XDP_PASS", "XDP_TX", "XDP_REDIRECT"]


def packet(ether_type: int) -> bytes:
    """A 64-byte Ethernet frame: zero addresses, the type, a zero payload."""
    return bytes(12) + ether_type.to_bytes(2, "big") + bytes(50)


def main() -> None:
    parser = argparse.ArgumentParser(description="Tail calls: an XDP classifier and its per-protocol programs.")
    parser.add_argument("--repeat", type=int, default=1, help="runs of each packet (default: %(default)s)")
    args = parser.parse_args()

    with TailcallSkeleton().load() as skel:
        classify = skel.progs.classify

        def send(kind: str) -> None:
            result = classify.test_run(packet(ETHER_TYPES[kind]), repeat=args.repeat)
            print(f"{kind:<5} packet -> {VERDICTS[result.retval]}")

        skel.maps.handlers[SLOT_IPV4] = skel.progs.handle_ipv4
        skel.maps.handlers[SLOT_IPV6] = skel.progs.handle_ipv6
        for kind in ETHER_TYPES:
            send(kind)
        print("handle_arp into its slot")
        skel.maps.handlers[SLOT_ARP] = skel.progs.handle_arp
        send("arp")

        print("packets per slot:")
        for slot, count in skel.maps.packets.items():
            print(f"  {SLOT_NAMES[slot]:<10} {count}")


if __name__ == "__main__":
    try:
        main()
    except OSError as exc:  # pyprobe's errors (AttachError, LoadError, ...) are OSErrors with a clear message
        sys.exit(f"tailcall: {exc}")
