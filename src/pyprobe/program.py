"""Programs of a BPF object: attributes, autoload, attach from the SEC name, test_run, pinning.

The attach methods of each family live in :mod:`pyprobe.attach` (tracing, network...);
:class:`Program` is their one typed face."""

from __future__ import annotations

import errno
import os
import re
from typing import TYPE_CHECKING, Any, TypeVar

from pyprobe._ffi import ffi, lib
from pyprobe.attach.cgroup import CgroupAttach
from pyprobe.attach.iterators import IterAttach
from pyprobe.attach.network import NetworkAttach
from pyprobe.attach.socket import SocketAttach
from pyprobe.attach.tracing import TracingAttach
from pyprobe.errors import AttachError, BpfError, check_int, check_ptr
from pyprobe.link import Link

T = TypeVar("T")

__all__ = ["Program", "TestRunResult"]


if TYPE_CHECKING:
    from pyprobe._testrun import TestRunResult
else:

    def __getattr__(name: str) -> Any:
        """``TestRunResult`` is imported on first use (PEP 562): creating a NamedTuple class costs 0.3 ms."""
        if name == "TestRunResult":
            from pyprobe._testrun import TestRunResult

            return TestRunResult
        raise AttributeError(f"module 'pyprobe.program' has no attribute {name!r}")


class Program(TracingAttach, NetworkAttach, SocketAttach, CgroupAttach, IterAttach):
    """One program of a :class:`~pyprobe.BpfObject`; it keeps its object alive.

    Its ``attach_*`` methods come from one mixin per attach family
    (:mod:`pyprobe.attach.tracing`, :mod:`pyprobe.attach.network`).
    """

    @property
    def autoload(self) -> bool:
        """Whether ``load()`` loads this program; settable before load."""
        return bool(self._call(lib.bpf_program__autoload))

    @autoload.setter
    def autoload(self, value: bool) -> None:
        ret = self._call(lib.bpf_program__set_autoload, bool(value))
        if ret < 0 and self._object.state == "loaded":
            raise BpfError(-ret, "autoload can only be set before load", context=f"program '{self.name}'")
        check_int(ret, f"set autoload of program '{self.name}'")

    @property
    def autoattach(self) -> bool:
        """Whether :meth:`BpfObject.attach` attaches this program from its SEC name."""
        return bool(self._call(lib.bpf_program__autoattach))

    @autoattach.setter
    def autoattach(self, value: bool) -> None:
        self._call(lib.bpf_program__set_autoattach, bool(value))

    @property
    def instruction_count(self) -> int:
        """Number of BPF instructions (after libbpf's relocations, once loaded)."""
        return int(self._call(lib.bpf_program__insn_cnt))

    def _info(self) -> Any:
        info = ffi.new("struct bpf_prog_info *")
        size = ffi.new("__u32 *", ffi.sizeof("struct bpf_prog_info"))
        with self._object._guard:
            fd = self._loaded_fd(f"get info of program '{self.name}'")
            check_int(lib.bpf_prog_get_info_by_fd(fd, info, size), f"get info of program '{self.name}'")
        return info

    @property
    def id(self) -> int:
        """The kernel's id of the loaded program."""
        return int(self._info().id)

    @property
    def tag(self) -> str:
        """The kernel's tag (hash of the instructions) as 16 hex digits."""
        return bytes(ffi.buffer(self._info().tag, 8)).hex()

    def attach(self) -> Link:
        """Attaches the program to the target its SEC name gives (``tracepoint/syscalls/sys_enter_read``...).

        Returns the typed link of the kind. Raises :class:`AttachError` when
        the section names no full target, and what the attach_* method of the
        kind raises otherwise.
        """
        link = self._auto_attach()
        if link is None:
            self._no_cgroup_in_section()
            raise AttachError(
                errno.EOPNOTSUPP, "the section names no target to attach to", context=self._attach_context(),
                hint="use the attach_* method for this program type with an explicit target",
            )  # fmt: skip
        return link

    def _auto_attach(self) -> Link | None:  # noqa: PLR0911 (one return per section kind)
        """Attaches from the SEC name; None when the section names no target.

        uprobe, uretprobe, uprobe.multi, usdt, tracepoint, raw_tp, kprobe and
        BTF tracing sections go through pyprobe's own attach_* methods (so
        demangled names work and links are typed); other kinds through libbpf.
        """
        context = self._attach_context()
        self._loaded_fd(context)
        kind, _, target = self.section.partition("/")
        base = kind.removesuffix(".s")
        if base in ("uprobe", "uretprobe", "uprobe.multi", "uretprobe.multi"):
            if not target:
                return None
            binary, sep, func = target.partition(":")
            if not sep or not func:
                raise AttachError(
                    errno.EINVAL, f"cannot parse the target '{target}'", context=context,
                    hint=f'write SEC("{kind}//abs/path:function[+offset]")',
                )  # fmt: skip
            retprobe = base.startswith("uretprobe")
            if base.endswith(".multi"):
                return self.attach_uprobe_multi(binary, func, retprobe=retprobe)
            offset = 0
            match = re.fullmatch(r"(.*?)\+(0x[0-9a-fA-F]+|\d+)", func)
            if match:
                func, offset = match[1], int(match[2], 0)
            return self.attach_uprobe(binary, func, offset=offset, retprobe=retprobe)
        if base == "usdt" and target:
            binary, _, rest = target.partition(":")
            provider, _, name = rest.partition(":")
            if binary and provider and name:
                return self.attach_usdt(binary, provider, name)
        if base in ("tracepoint", "tp") and target.count("/") == 1:
            category, _, name = target.partition("/")
            return self.attach_tracepoint(category, name)
        if base in ("raw_tp", "raw_tracepoint", "raw_tp.w", "raw_tracepoint.w") and target:
            return self.attach_raw_tracepoint(target)
        if base in ("kprobe", "kretprobe") and target:
            func, _, off = target.partition("+")
            return self.attach_kprobe(func, retprobe=base == "kretprobe", offset=int(off, 0) if off else 0)
        if base in ("tp_btf", "fentry", "fexit", "fmod_ret", "lsm") and target:
            return self.attach_trace()
        if self._is_cgroup_program():
            return None  # a cgroup section names no cgroup: obj.attach() skips it, attach() says what to call
        if (link := self._auto_attach_iter(base, target)) is not None or base == "iter":
            return link
        ptr = self._call(lib.bpf_program__attach)
        if ptr == ffi.NULL and ffi.errno == errno.EOPNOTSUPP:
            return None
        ptr = check_ptr(ptr, context, AttachError)
        return Link(ptr, self, description=f"program '{self.name}' at SEC(\"{self.section}\")")

    def test_run(self, data: bytes = b"", *, ctx: bytes | None = None, repeat: int = 1) -> TestRunResult:
        """Runs the loaded program once (or ``repeat`` times) in the kernel with BPF_PROG_RUN.

        ``data`` is the packet (XDP, tc, socket programs), ``ctx`` the raw context
        (SEC("syscall") arguments, raw_tp arguments). Blocks for the run's duration.
        """
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise TypeError(f"test_run data must be bytes, not {type(data).__name__}")
        if ctx is not None and not isinstance(ctx, (bytes, bytearray, memoryview)):
            raise TypeError(f"test_run ctx must be bytes or None, not {type(ctx).__name__}")
        if not isinstance(repeat, int) or repeat < 1:
            raise ValueError(f"test_run repeat must be a positive int, not {repeat!r}")
        context = f"test_run program '{self.name}'"
        self._loaded_fd(context)
        opts = ffi.new("struct bpf_test_run_opts *")
        opts.sz = ffi.sizeof("struct bpf_test_run_opts")
        out = ctx_buf = None
        if len(data):
            data_in = ffi.new("char[]", bytes(data))
            out = ffi.new("char[]", len(data) + 4096)
            opts.data_in = data_in
            opts.data_size_in = len(data)
            opts.data_out = out
            opts.data_size_out = len(out)
        if ctx is not None and len(ctx):
            # The kernel writes the context back (SEC("syscall")): give it a private copy.
            ctx_buf = ffi.new("char[]", bytes(ctx))
            opts.ctx_in = ctx_buf
            opts.ctx_size_in = len(ctx)
        opts.repeat = repeat if repeat > 1 else 0  # SEC("syscall") programs refuse any repeat
        hint = 'SEC("syscall") programs run once: repeat must be 1' if repeat > 1 else ""
        with self._object._guard:  # the fd stays the program's until the run returns
            check_int(lib.bpf_prog_test_run_opts(self._loaded_fd(context), opts), context, hint=hint)
        out_data = bytes(ffi.buffer(out, opts.data_size_out)) if out is not None else b""
        ctx_out = bytes(ffi.buffer(ctx_buf, len(ctx_buf) - 1)) if ctx_buf is not None else b""
        from pyprobe._testrun import TestRunResult

        return TestRunResult(int(opts.retval), out_data, int(opts.duration), ctx_out)

    def pin(self, path: str | os.PathLike[str]) -> None:
        """Pins the loaded program on bpffs at ``path``."""
        path = os.fspath(path)
        self._loaded_fd(f"pin program '{self.name}'")
        check_int(self._call(lib.bpf_program__pin, path.encode()), f"pin program '{self.name}' at {path}")
        self._pin_path: str | None = path

    def unpin(self) -> None:
        """Removes the pin made by :meth:`pin`."""
        path = getattr(self, "_pin_path", None)
        if path is None:
            raise BpfError(errno.ENOENT, "not pinned", context=f"unpin program '{self.name}'")
        check_int(self._call(lib.bpf_program__unpin, path.encode()), f"unpin program '{self.name}' from {path}")
        self._pin_path = None

    def __repr__(self) -> str:
        return f"<Program {self.name!r} SEC({self.section!r})>"
