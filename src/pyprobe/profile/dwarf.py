"""``--call-graph dwarf``: user stacks of code built without frame pointers, unwound from .eh_frame.

A perf_event program (``profile_dwarf.bpf.c``) copies, per sample, the
user registers and the top ``stack_bytes`` of the user stack of the
interrupted thread into a ring buffer, with the kernel stack id when kernel
frames are wanted; a worker thread drains the ring every 50 ms and unwinds
each batch in C (``_ffi/csrc/unwind.c``) with the CFI of the files the
process maps, read from ``/proc/PID/maps`` while the process runs. This is
perf's ``--call-graph dwarf`` with the unwinding done as the samples come,
so only addresses cross to the Profiler.

Minimum kernel 5.15 (``bpf_task_pt_regs``); x86-64 only.
"""

from __future__ import annotations

import contextlib
import platform
import struct
import threading
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from pyprobe._data import probe_file
from pyprobe._ffi import lib
from pyprobe.errors import LoadError, UnsupportedError
from pyprobe.profile._sampler import PROF_MAX_PIDS, RawStack, stack_ips
from pyprobe.profile._unwind import F_NO_MODULE, HEADER_SIZE, Unwinder

if TYPE_CHECKING:
    from pyprobe.link import Link
    from pyprobe.object import BpfObject
    from pyprobe.perf_event import PerfEvent
    from pyprobe.ringbuf import RingBuffer

__all__ = ["MAX_STACK_BYTES", "DwarfSampler", "UnwindStats"]

MAX_STACK_BYTES = 57344
"""The most stack one sample can copy (``PD_MAX_STACK``)."""
_POLL = 0.05
_REFRESH = 0.5  # the shortest time between two reads of one process's maps
_HEAD = struct.Struct("<IIiIIi")  # pid, tid, kstack_id, stack_len, flags, ustack_id
_COMM = 160  # offsetof(struct pd_sample, comm)
_PD_USER, _PD_TRUNCATED = 1, 2


class UnwindStats:
    """Counters of a :class:`DwarfSampler` since it started (read them after ``drain()``)."""

    __slots__ = ("frames", "outermost", "records", "stopped", "truncated", "unwind_ns", "user_records")

    def __init__(self) -> None:
        self.records = 0  # samples read from the ring buffer
        self.user_records = 0  # of which with user registers and stack
        self.frames = 0  # user frames found
        self.outermost = 0  # stacks unwound down to their first frame (_start, clone)
        self.truncated = 0  # stack copies cut short by the end of the stack mapping
        self.unwind_ns = 0  # time spent in the C unwinder
        self.stopped: dict[int, int] = {}  # unwinds by the flags they ended with

    def __repr__(self) -> str:
        per = self.unwind_ns / self.user_records if self.user_records else 0.0
        return (
            f"<UnwindStats records={self.records} user={self.user_records} frames={self.frames} "
            f"outermost={self.outermost} {per:.0f} ns/sample>"
        )


class DwarfSampler:
    """Samples on-CPU stacks at ``frequency`` Hz on every CPU, unwinding user stacks from DWARF CFI.

    ``pids``: the processes (tgids, every thread) to sample, None for all.
    ``user`` / ``kernel``: which stacks to take. ``stack_bytes``: how much
    of the user stack each sample copies (a multiple of 8 up to
    :data:`MAX_STACK_BYTES`; deeper frames are cut off). ``max_frames``
    bounds each user stack. Opening loads the BPF program; :meth:`start`
    opens the perf events and attaches; :meth:`drain` returns the stacks
    since the last drain (blocks for one pass over the ring buffer, a few ms);
    :meth:`close` stops and frees every fd, link and the object (idempotent).
    With ``follow_forks`` (and ``pids``), children the processes start are
    sampled too (tp_btf, Linux 5.5). :attr:`lost` counts samples the ring
    buffer had no room for. ``fp_stacks`` also walks the frame pointers of each sample in the
    kernel, to compare both modes on the same samples (:meth:`drain_with_fp`).
    Raises ValueError for a bad argument, UnsupportedError off x86-64 or on
    a kernel without ``bpf_task_pt_regs`` (5.15), pyprobe's errors otherwise.
    """

    def __init__(
        self,
        *,
        pids: Sequence[int] | None,
        frequency: int,
        user: bool = True,
        kernel: bool = True,
        stack_bytes: int = 16384,
        max_frames: int = 127,
        fp_stacks: bool = False,
        follow_forks: bool = True,
    ) -> None:
        if platform.machine() not in ("x86_64", "AMD64"):
            raise UnsupportedError(0, f"DWARF unwinding supports x86-64 only, not {platform.machine()}")
        if not isinstance(frequency, int) or isinstance(frequency, bool) or not 0 < frequency <= 100_000:
            raise ValueError(f"frequency must be an int from 1 to 100000 Hz, not {frequency!r}")
        if not isinstance(stack_bytes, int) or not 8 <= stack_bytes <= MAX_STACK_BYTES or stack_bytes % 8:
            raise ValueError(f"stack_bytes must be a multiple of 8 from 8 to {MAX_STACK_BYTES}, not {stack_bytes!r}")
        if not isinstance(max_frames, int) or not 1 <= max_frames <= 1024:
            raise ValueError(f"max_frames must be an int from 1 to 1024, not {max_frames!r}")
        if not user and not kernel:
            raise ValueError("user and kernel are both False: no stack to take")
        pid_list: list[int] | None = None
        if pids is not None:
            pid_list = list(pids)
            bad = [p for p in pid_list if not isinstance(p, int) or isinstance(p, bool) or not 0 < p < 2**31]
            if bad:
                raise ValueError(f"pids must be positive ints, not {bad[0]!r}")
            if not 0 < len(pid_list) <= PROF_MAX_PIDS:
                raise ValueError(f"pids must name 1 to {PROF_MAX_PIDS} processes, not {len(pid_list)}")
        self.frequency = frequency
        self.pids = pid_list
        self.stack_bytes = stack_bytes
        self.stats = UnwindStats()
        self.lost = 0
        """Samples dropped because the ring buffer was full (read at each drain)."""
        self.follow_forks = follow_forks and pid_list is not None
        self._unwinder = Unwinder(max_frames=max_frames)
        self._max_frames = max_frames
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        _Key = tuple[int, int, bytes, tuple[int, ...], tuple[int, ...], tuple[int, ...]]
        self._agg: dict[_Key, int] = {}
        self._pending: dict[tuple[int, int, bytes, tuple[int, ...], int, int], int] = {}
        self._events: list[PerfEvent] = []
        self._links: list[Link] = []
        self._reader: RingBuffer[bytes] | None = None
        self._closed = False
        self._comms: dict[int, set[bytes]] = {}  # per process: the thread names seen since its maps were read
        self._pass_start = 0.0

        import pyprobe
        from pyprobe.perf_event import online_cpus

        spec = pyprobe.open(probe_file("profile_dwarf"))
        try:
            spec.rodata.filter_pids = pid_list is not None
            spec.rodata.want_user = bool(user)
            spec.rodata.want_kernel = bool(kernel)
            spec.rodata.stack_bytes = stack_bytes
            spec.rodata.fp_stacks = bool(fp_stacks)
            if fp_stacks:
                spec.maps["ustacks"].max_entries = 16384
            spec.programs["profile_dwarf_fork"].autoload = self.follow_forks
            spec.maps["scratch"].max_entries = int(lib.libbpf_num_possible_cpus())
            # half a second of samples at full rate fits, so one slow pass loses none
            rate = len(online_cpus()) * frequency * (HEADER_SIZE + (stack_bytes if user else 0))
            size = 4 << 20
            while size < rate // 2 and size < 256 << 20:
                size <<= 1
            spec.maps["samples"].max_entries = size
            try:
                self._obj: BpfObject = spec.load()
            except LoadError as exc:
                if "unknown func bpf_task_pt_regs" in (exc.log or ""):
                    raise UnsupportedError(
                        exc.errno or 0, "DWARF stack sampling needs bpf_task_pt_regs (Linux 5.15)"
                    ) from exc
                raise
            if pid_list is not None:
                pidmap: Any = self._obj.maps["pids"]
                for pid in pid_list:
                    pidmap[pid] = 1
            self._reader = self._obj.maps["samples"].reader()  # type: ignore[attr-defined]
        except BaseException:
            spec.close()
            raise

    # -- the Sampler protocol ------------------------------------------------

    def start(self) -> None:
        """Opens one sampling perf event per CPU, attaches the program to each and starts the worker thread.

        Raises pyprobe's errors (BpfPermissionError without CAP_PERFMON).
        """
        from pyprobe.perf_event import open_sampling

        if self._closed:
            raise ValueError("DwarfSampler is closed")
        if self._thread is not None:
            return
        for pid in self.pids or ():
            self._unwinder.refresh(pid)
        if self.follow_forks:
            self._links.append(self._obj.programs["profile_dwarf_fork"].attach_trace())
        self._events = open_sampling("cpu-clock", frequency=self.frequency)
        prog = self._obj.programs["profile_dwarf"]
        for ev in self._events:
            self._links.append(prog.attach_perf_event(ev))
        self._thread = threading.Thread(target=self._run, name="pyprobe-dwarf-unwind", daemon=True)
        self._thread.start()

    def drain(self) -> list[RawStack]:
        """The stacks sampled since the last drain, counted; reads and unwinds what the ring buffer holds first."""
        merged: dict[tuple[int, int, str, tuple[int, ...], tuple[int, ...]], int] = {}
        for stack, _fp in self.drain_with_fp():
            key = (stack.pid, stack.tid, stack.comm, stack.user, stack.kernel)
            merged[key] = merged.get(key, 0) + stack.count
        return [RawStack(*key, count) for key, count in merged.items()]

    def drain_with_fp(self) -> list[tuple[RawStack, tuple[int, ...]]]:
        """As :meth:`drain`, each stack with the frame-pointer walk of its samples (empty without ``fp_stacks``)."""
        with self._lock:
            if not self._closed:
                self._pass()
            agg, self._agg = self._agg, {}
        return [
            (RawStack(pid, tid, comm.decode("utf-8", "replace"), user, kernel, count), fp)
            for (pid, tid, comm, user, kernel, fp), count in agg.items()
        ]

    def close(self) -> None:
        """Stops the worker thread; detaches and closes every link, perf event, the reader, the object. Idempotent."""
        if self._closed:
            return
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join()
        with self._lock:
            self._closed = True
            for link in self._links:
                link.detach()
            for ev in self._events:
                ev.close()
            if self._reader is not None:
                self._reader.close()
            self._obj.close()
            self._links, self._events = [], []

    def __enter__(self) -> DwarfSampler:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- the worker ---------------------------------------------------------------

    def _run(self) -> None:
        while not self._stop.wait(_POLL):
            with self._lock:
                if self._closed:
                    return
                self._pass()

    def _pass(self) -> None:
        """Reads every record in the ring buffer and unwinds them, batch by batch (holding ``_lock``)."""
        reader = self._reader
        assert reader is not None
        self._pass_start = time.monotonic()
        for _ in range(64):  # bounded: the producer may outrun us
            batch = reader.read_batch(2048, timeout=0)
            if len(batch) == 0:
                break
            self._unwind(batch.raw, batch.offsets, len(batch))
        self._resolve_kernel()
        stats: Any = self._obj.maps["stats"]
        self.lost = sum(int(cpu.dropped) for cpu in stats[0])

    def _unwind(self, raw: bytes, offsets: Sequence[int], n: int) -> None:
        from pyprobe._ffi import ffi

        stats = self.stats
        heads = []
        comms = []
        for i in range(n):
            off = offsets[i]
            if offsets[i + 1] - off < HEADER_SIZE:
                heads.append((0, 0, -1, 0, 0, -1))
                comms.append(b"")
                continue
            heads.append(_HEAD.unpack_from(raw, off))
            comms.append(raw[off + _COMM : off + HEADER_SIZE].split(b"\0", 1)[0])
        pids = [h[0] for h in heads]
        unwinder = self._unwinder
        # a process seen for the first time, or under a thread name not seen since its maps were read (an
        # exec changes the name: the maps read before it, e.g. at start() for a command held before its
        # exec, are another program's)
        for pid, comm in set(zip(pids, comms, strict=True)):
            known = self._comms.get(pid)
            if known is None or comm not in known:
                if known is None or pid not in unwinder.procs or unwinder.procs[pid].read_at < self._pass_start:
                    unwinder.refresh(pid)
                    known = self._comms[pid] = set()
                known.add(comm)
        buf = ffi.from_buffer("uint8_t[]", raw)
        offs = ffi.from_buffer("uint32_t[]", offsets)
        t0 = time.perf_counter_ns()
        ips, nips, flags = unwinder.unwind(buf, offs, n, pids)
        # a frame outside every known module: the process mapped something new (dlopen, JIT); read its maps again
        now, stale = time.monotonic(), set()
        for i in range(n):
            if flags[i] & F_NO_MODULE and now - unwinder.procs[pids[i]].read_at > _REFRESH:
                stale.add(pids[i])
        if stale:
            for pid in stale:
                unwinder.refresh(pid)
            ips, nips, flags = unwinder.unwind(buf, offs, n, pids)
        stats.unwind_ns += time.perf_counter_ns() - t0
        mf, pending = self._max_frames, self._pending
        for i in range(n):
            pid, tid, kid, _stack_len, rflags, uid = heads[i]
            stats.records += 1
            k = nips[i]
            user: tuple[int, ...] = ()
            if rflags & _PD_USER:
                stats.user_records += 1
                stats.frames += k
                f = int(flags[i])
                stats.stopped[f] = stats.stopped.get(f, 0) + 1
                if f & 32:
                    stats.outermost += 1
                if rflags & _PD_TRUNCATED:
                    stats.truncated += 1
                user = tuple(ips[i * mf : i * mf + k])
            key = (pid, tid, comms[i], user, kid if kid >= 0 else -1, uid if uid >= 0 else -1)
            pending[key] = pending.get(key, 0) + 1

    def _resolve_kernel(self) -> None:
        """Moves this pass's counts to ``_agg`` with stack ids turned into addresses, then frees the ids."""
        if not self._pending:
            return
        maps: Any = self._obj.maps
        kstacks: dict[int, tuple[int, ...]] = {}
        ustacks: dict[int, tuple[int, ...]] = {}
        agg = self._agg
        for (pid, tid, comm, user, kid, uid), count in self._pending.items():
            key = (
                pid,
                tid,
                comm,
                user,
                stack_ips(maps["kstacks"], kstacks, kid),
                stack_ips(maps["ustacks"], ustacks, uid),
            )
            agg[key] = agg.get(key, 0) + count
        self._pending = {}
        for name, ids in (("kstacks", kstacks), ("ustacks", ustacks)):
            for sid in ids:
                if sid >= 0:
                    with contextlib.suppress(KeyError):
                        del maps[name][sid]
