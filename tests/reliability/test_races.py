"""close() racing every operation in another thread, fd reuse after close, interpreter exit under a reader.

Each race runs a few hundred rounds in a child interpreter (a crash is a
test failure with the signal, not a dead test run): thread A loops one
operation while the main thread closes its owner after a short random
delay. A must stop with ClosedError and nothing else; the child prints a
summary line that the test checks.
"""

from __future__ import annotations

import os

import pytest

from conftest import bpf_unavailable, test_object
from reliability.conftest import run_in_child

pytestmark = pytest.mark.bpf


@pytest.fixture(autouse=True)
def _need_bpf() -> None:
    reason = bpf_unavailable()
    if reason:
        pytest.skip(reason)


PRELUDE = """
import ctypes, random, struct, sys, threading, time
import pyprobe
from pyprobe import ClosedError

MINIMAL = {minimal!r}
EVENTS = {events!r}

def race(make, op, close, rounds, label):
    '''Per round: make() a resource, loop op(r) in a thread, close(r) from here; count the outcomes.'''
    stopped = other = busy_rounds = 0
    failures = []
    for i in range(rounds):
        r = make()
        go = threading.Event()
        result = []
        def worker():
            go.set()
            n = 0
            try:
                while True:
                    op(r)
                    n += 1
            except ClosedError:
                result.append(("closed", n))
            except BaseException as exc:
                result.append(("other", repr(exc)))
        t = threading.Thread(target=worker, daemon=True)
        t.start()
        go.wait()
        time.sleep(random.random() * 0.0005)
        close(r)
        t.join(10)
        if t.is_alive():
            failures.append("worker still running 10 s after close")
            break
        kind, what = result[0]
        if kind == "closed":
            stopped += 1
            busy_rounds += what > 0
        else:
            other += 1
            failures.append(what)
    print(f"{{label}}: rounds={{rounds}} closed_error={{stopped}} other={{other}} busy={{busy_rounds}}")
    if failures:
        print("FAILURES", failures[:5])
        sys.exit(3)
"""


def child(body: str) -> str:
    code = PRELUDE.format(minimal=str(test_object("minimal")), events=str(test_object("events"))) + body
    return run_in_child(code, timeout=120)


def test_object_close_races_map_updates_globals_programs_and_iteration() -> None:
    out = child("""
def make():
    return pyprobe.load(MINIMAL)

def update(obj):
    obj.maps["counts"][random.randrange(64)] = 7

def globals_rw(obj):
    obj.bss.runs = obj.bss.runs + 1

def program(obj):
    p = obj.programs["add"]
    p.test_run(ctx=struct.pack("<ii", 1, 2))

def walk(obj):
    m = obj.maps["counts"]
    m[1] = 1
    m[2] = 2
    for k in m:
        pass
    m.items(batch=True)
    len(m)

def close(obj):
    obj.close()

race(make, update, close, 200, "object map update")
race(make, globals_rw, close, 200, "object globals")
race(make, program, close, 150, "program test_run")
race(make, walk, close, 150, "map iteration")
""")
    print(out)
    assert out.count("other=0") == 4, out


def test_standalone_map_close_races_updates_and_iteration() -> None:
    out = child("""
def make():
    m = pyprobe.Map.create("hash", key_type=ctypes.c_uint32, value_type=ctypes.c_uint64, max_entries=64)
    for k in range(8):
        m[k] = k
    return m

def update(m):
    m[random.randrange(64)] = 7

def walk(m):
    for k in m:
        m.get(k)

race(make, update, lambda m: m.close(), 400, "standalone update")
race(make, walk, lambda m: m.close(), 400, "standalone iteration")
""")
    print(out)
    assert out.count("other=0") == 2, out


def test_reader_close_races_poll_read_batch_and_events() -> None:
    out = child("""
def emit(obj, count):
    obj.programs["emit"].test_run(ctx=struct.pack("<QQQQ", count, 0, 0, 0))

OBJ = pyprobe.load(EVENTS)

def make_ring():
    emit(OBJ, 50)
    return pyprobe.RingBuffer(OBJ.maps["events"], lambda e: None)

def make_perf():
    return pyprobe.PerfBuffer(OBJ.maps["perf_events"], lambda e: None, pages=1)

def poll(r):
    r.poll(timeout=0.001)

def blocking_poll(r):
    r.poll(timeout=5)

def read_batch(r):
    r.read_batch(timeout=0.001)

def events(r):
    for _ in r.events(timeout=0.001):
        pass

close = lambda r: r.close()
race(make_ring, poll, close, 200, "ringbuf poll")
race(make_ring, read_batch, close, 150, "ringbuf read_batch")
race(make_ring, events, close, 150, "ringbuf events")
race(make_perf, poll, close, 100, "perfbuf poll")
t0 = time.monotonic()
race(make_ring, blocking_poll, close, 30, "ringbuf blocking poll")
race(make_perf, blocking_poll, close, 30, "perfbuf blocking poll")
print(f"blocking rounds took {time.monotonic() - t0:.2f} s")
OBJ.close()
""")
    print(out)
    assert out.count("other=0") == 6, out
    # A poll blocked with a 5 s timeout is woken by close(): 60 rounds take well under a second each.
    took = float(out.rsplit("took ", 1)[1].split()[0])
    assert took < 20, out


def test_link_and_skeleton_close_races() -> None:
    out = child("""
from pyprobe.skeleton import Skeleton

def make_link():
    obj = pyprobe.load(MINIMAL)
    return obj, obj.programs["on_getpid"].attach()

def link_ops(r):
    obj, link = r
    link.id
    link.fd
    link.pin_path

def close_link(r):
    r[1].close()
    r[0].close()

def close_object(r):
    r[0].close()

def make_skel():
    return Skeleton(MINIMAL).load()

def skel_ops(s):
    s.bss.runs = 3
    s.maps.counts[1] = s.bss.runs

race(make_link, link_ops, close_link, 150, "link close")
race(make_link, link_ops, close_object, 150, "link object close")
race(make_skel, skel_ops, lambda s: s.close(), 150, "skeleton close")
""")
    print(out)
    assert out.count("other=0") == 3, out


def test_fd_reuse_no_stray_write_after_close() -> None:
    """close() of one map while another thread writes, then a same-shaped map: it must see none of those writes."""
    out = child("""
def shape():
    return pyprobe.Map.create("hash", key_type=ctypes.c_uint32, value_type=ctypes.c_uint64, max_entries=64)

stray = reused = other = 0
ROUNDS = 1500
for i in range(ROUNDS):
    m1 = shape()
    fd1 = m1.fd
    go = threading.Event()
    outcome = []
    def writer():
        go.set()
        try:
            while True:
                m1[5] = 0xBAD
        except ClosedError:
            outcome.append("closed")
        except BaseException as exc:
            outcome.append(repr(exc))
    t = threading.Thread(target=writer)
    t.start()
    go.wait()
    time.sleep(random.random() * 0.0002)
    m1.close()
    m2 = shape()
    reused += m2.fd == fd1
    t.join(10)
    if outcome != ["closed"]:
        other += 1
    if m2.get(5) is not None:
        stray += 1
    m2.close()

# An object's map: the same with whole objects.
obj_stray = 0
for i in range(150):
    o1 = pyprobe.load(MINIMAL)
    m = o1.maps["counts"]
    go = threading.Event()
    def writer2():
        go.set()
        try:
            while True:
                m[5] = 0xBAD
        except ClosedError:
            pass
    t = threading.Thread(target=writer2)
    t.start()
    go.wait()
    time.sleep(random.random() * 0.0005)
    o1.close()
    o2 = pyprobe.load(MINIMAL)
    t.join(10)
    if o2.maps["counts"].get(5) is not None:
        obj_stray += 1
    o2.close()
print(f"rounds={ROUNDS} fd_reused={reused} stray={stray} other={other} object_stray={obj_stray}")
""")
    print(out)
    assert " stray=0 other=0 object_stray=0" in out, out


def test_iterator_started_before_close_stops_with_closed_error() -> None:
    out = child("""
def shape(base):
    m = pyprobe.Map.create("hash", key_type=ctypes.c_uint32, value_type=ctypes.c_uint64, max_entries=64)
    for k in range(base, base + 10):
        m[k] = k
    return m

walked_other = closed = 0
for i in range(200):
    m1 = shape(0)
    it = iter(m1)
    first = next(it)
    m1.close()
    m2 = shape(100)   # likely the fd number m1 had
    try:
        rest = list(it)
    except ClosedError:
        closed += 1
    else:
        walked_other += any(k >= 100 for k in rest)
    m2.close()
print(f"rounds=200 closed_error={closed} walked_other={walked_other}")
""")
    print(out)
    assert "closed_error=200 walked_other=0" in out, out


def test_interpreter_exit_while_a_daemon_thread_reads() -> None:
    """No crash when the interpreter exits with a daemon thread in poll() on an unclosed reader."""
    code = (
        PRELUDE.format(minimal=str(test_object("minimal")), events=str(test_object("events")))
        + """
import warnings
warnings.simplefilter("ignore", ResourceWarning)
obj = pyprobe.load(EVENTS)
ring = pyprobe.RingBuffer(obj.maps["events"], lambda e: None)
ring2 = pyprobe.RingBuffer(obj.maps["events2"], lambda e: None)
perf = pyprobe.PerfBuffer(obj.maps["perf_events"], lambda e: None, pages=1)
def spin(read):
    try:
        while True:
            read()
    except ClosedError:
        pass
stats = obj.maps["stats"]
readers = (ring.consume, perf.consume, lambda: ring2.poll(timeout=None), lambda: stats.lookup_bytes(bytes(4)))
for read in readers:
    threading.Thread(target=spin, args=(read,), daemon=True).start()
time.sleep(0.005 + random.random() * 0.02)
"""
    )
    rounds = int(os.environ.get("PYPROBE_EXIT_ROUNDS", "25"))
    for _ in range(rounds):
        run_in_child(code, timeout=30)


def test_interrupts_in_the_reading_thread_never_leave_the_reader_busy() -> None:
    """Ctrl-C (an asynchronous KeyboardInterrupt) at any point of a read leaves the reader to that thread.

    A signal timer fires every 50 to 150 us while the main thread polls; after
    each interrupt the same thread reads again, as `pyprobe trace` does for
    its final drain, and must never be refused as "another thread".
    """
    out = child("""
import signal

OBJ = pyprobe.load(EVENTS)
ring = pyprobe.RingBuffer(OBJ.maps["events"], lambda e: None)
perf = pyprobe.PerfBuffer(OBJ.maps["perf_events"], lambda e: None, pages=1)

def interrupt(signum, frame):
    raise KeyboardInterrupt

signal.signal(signal.SIGALRM, interrupt)
interrupts = refused = 0
for reader in (ring, perf):
    for i in range(1500):
        try:
            signal.setitimer(signal.ITIMER_REAL, random.uniform(0.00005, 0.00015))
            while True:
                reader.poll(timeout=0)
        except KeyboardInterrupt:
            interrupts += 1
        signal.setitimer(signal.ITIMER_REAL, 0)
        try:
            reader.poll(timeout=0)
        except pyprobe.ReaderBusyError:
            refused += 1
        except KeyboardInterrupt:
            pass
print(f"interrupts={interrupts} refused={refused}")
ring.close()
perf.close()
OBJ.close()
""")
    print(out)
    interrupts = int(out.split("interrupts=")[1].split()[0])
    assert interrupts >= 2000 and "refused=0" in out, out
