"""The floor of a Python tracer on this interpreter: bench_trace's trace made with the raw cffi binding alone.

Run by bench_trace.py (not by hand): ``trace_floor.py OBJECT BINARY OFFSET PID CONFIG_HEX``. It
imports nothing of pyprobe but ``pyprobe._ffi`` (cffi's backend and the libbpf extension), is handed
the function's file offset and the raw ``ft_config`` record instead of reading the ELF file and
encoding the record, and makes libbpf's calls in the order ``pyprobe trace`` makes them: open the
functrace object, load it, write the config, register the entry and return uprobes, attach, then
print a line when the first event arrives; the uprobes are registered in a thread while the object
loads, as ``pyprobe trace`` does. No typed objects, no decoding, no error reporting: what
is left is the interpreter's start, the extension's import and the kernel's work, which any Python
tool pays.
"""

import os
import select
import sys
import threading

from pyprobe._ffi import ffi, lib


def main() -> None:
    obj_path, binary, offset, pid, config = sys.argv[1:6]
    # the uprobes are registered in a thread (one C call, no GIL) while the object opens and loads
    with open("/sys/bus/event_source/devices/uprobe/type") as f:
        ptype = int(f.read())
    with open("/sys/bus/event_source/devices/uprobe/format/retprobe") as f:
        ret_bit = int(f.read().strip().partition(":")[2])
    path = ffi.new("char[]", binary.encode())
    fds = ffi.new("int[]", 2)
    register = threading.Thread(
        target=lib.pyprobe_uprobe_events_open,
        args=(ptype, ffi.new("__u64[]", [0, 1 << ret_bit]), ffi.new("char *[]", [path, path]),
              ffi.new("__u64[]", [int(offset), int(offset)]), int(pid), fds, 2),
    )  # fmt: skip
    register.start()
    obj = lib.bpf_object__open_file(obj_path.encode(), ffi.NULL)
    wanted = {b"functrace_entry", b"functrace_return"}
    prog = lib.bpf_object__next_program(obj, ffi.NULL)
    while prog != ffi.NULL:
        lib.bpf_program__set_autoload(prog, ffi.string(lib.bpf_program__name(prog)) in wanted)
        prog = lib.bpf_object__next_program(obj, prog)
    lib.bpf_map__set_max_entries(lib.bpf_object__find_map_by_name(obj, b"events"), 1 << 22)
    if lib.bpf_object__load(obj) != 0:
        raise SystemExit("load failed")
    funcs = lib.bpf_map__fd(lib.bpf_object__find_map_by_name(obj, b"funcs"))
    value = bytes.fromhex(config)
    lib.bpf_map_update_elem(funcs, ffi.new("__u32 *", 0), ffi.from_buffer(value), 0)
    register.join()
    opts = ffi.new("struct bpf_perf_event_opts *")
    opts.sz = ffi.sizeof("struct bpf_perf_event_opts")
    for name, fd in ((b"functrace_entry", fds[0]), (b"functrace_return", fds[1])):
        if fd < 0 or lib.bpf_program__attach_perf_event_opts(
            lib.bpf_object__find_program_by_name(obj, name), fd, opts
        ) == ffi.NULL:  # fmt: skip
            raise SystemExit(f"attach failed: {fd}")
    ring = lib.pyprobe_ring_new(lib.bpf_map__fd(lib.bpf_object__find_map_by_name(obj, b"events")))
    out, offsets = ffi.new("char[]", 1 << 16), ffi.new("__u32[]", 256)
    need, uniform, idle = ffi.new("size_t *"), ffi.new("size_t *"), ffi.new("size_t *")
    poller = select.poll()
    poller.register(lib.bpf_map__fd(lib.bpf_object__find_map_by_name(obj, b"events")), select.POLLIN)
    while lib.pyprobe_ring_drain(ring, out, 1 << 16, offsets, 256, need, uniform, idle) <= 0:
        poller.poll(100)
    os.write(1, b"bc_work(a=first event\n")
    select.select([], [], [], 30)  # bench_trace stops it with SIGINT


if __name__ == "__main__":
    main()
