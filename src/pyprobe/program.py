"""Programs of a BPF object: attributes, autoload, attach, test_run."""

from __future__ import annotations

import errno
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pyprobe._ffi import cstr, ffi, lib
from pyprobe.enums import AttachType, ProgramType
from pyprobe.errors import AttachError, BpfError, check_int, check_ptr
from pyprobe.link import Link

if TYPE_CHECKING:
    from pyprobe.object import BpfObject

__all__ = ["Program", "TestRunResult"]


@dataclass(frozen=True)
class TestRunResult:
    """What one BPF_PROG_RUN returned: the program's return value, output data and mean run time (ns)."""

    __test__ = False  # not a pytest test class

    retval: int
    data: bytes
    duration_ns: int
    ctx: bytes = b""
    """The context after the run (SEC("syscall") programs may write to it)."""


class Program:
    """One program of a :class:`~pyprobe.BpfObject`; it keeps its object alive."""

    def __init__(self, obj: BpfObject, ptr: Any) -> None:
        self._object = obj
        self._ptr = ptr
        self.name: str = cstr(lib.bpf_program__name(ptr))
        """The program's function name in the C source."""
        self.section: str = cstr(lib.bpf_program__section_name(ptr))
        """The ELF section (SEC name), e.g. ``uprobe//bin/true:main``."""

    def _live(self) -> Any:
        self._object._check_open()
        return self._ptr

    @property
    def object(self) -> BpfObject:
        """The object this program belongs to."""
        return self._object

    @property
    def type(self) -> ProgramType:
        """The program type libbpf derived from the section name (or set before load)."""
        return ProgramType(int(lib.bpf_program__type(self._live())))

    @type.setter
    def type(self, value: ProgramType | str | int) -> None:
        ptype = ProgramType.parse(value)
        check_int(lib.bpf_program__set_type(self._live(), int(ptype)), f"set type of program '{self.name}'")

    @property
    def attach_type(self) -> AttachType:
        """The expected attach type."""
        return AttachType(int(lib.bpf_program__expected_attach_type(self._live())))

    @property
    def autoload(self) -> bool:
        """Whether ``load()`` loads this program; settable before load."""
        return bool(lib.bpf_program__autoload(self._live()))

    @autoload.setter
    def autoload(self, value: bool) -> None:
        ret = lib.bpf_program__set_autoload(self._live(), bool(value))
        if ret < 0 and self._object.state == "loaded":
            raise BpfError(-ret, "autoload can only be set before load", context=f"program '{self.name}'")
        check_int(ret, f"set autoload of program '{self.name}'")

    @property
    def autoattach(self) -> bool:
        """Whether :meth:`BpfObject.attach` attaches this program from its SEC name."""
        return bool(lib.bpf_program__autoattach(self._live()))

    @autoattach.setter
    def autoattach(self, value: bool) -> None:
        lib.bpf_program__set_autoattach(self._live(), bool(value))

    @property
    def instruction_count(self) -> int:
        """Number of BPF instructions (after libbpf's relocations, once loaded)."""
        return int(lib.bpf_program__insn_cnt(self._live()))

    @property
    def fd(self) -> int:
        """The program's fd, owned by the object; -1 before load or when not loaded."""
        return max(int(lib.bpf_program__fd(self._live())), -1)

    def _loaded_fd(self, doing: str) -> int:
        fd = self.fd
        if fd < 0:
            why = "its object is not loaded" if self._object.state != "loaded" else "it was not loaded (autoload off)"
            raise BpfError(errno.EBADF, f"program '{self.name}' has no fd: {why}", context=doing)
        return fd

    def _info(self) -> Any:
        info = ffi.new("struct bpf_prog_info *")
        size = ffi.new("__u32 *", ffi.sizeof("struct bpf_prog_info"))
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

        Raises :class:`AttachError` when the section names no full target.
        """
        link = self._auto_attach()
        if link is None:
            raise AttachError(
                errno.EOPNOTSUPP, "the section names no target to attach to", context=self._attach_context(),
                hint="use the attach_* method for this program type with an explicit target",
            )  # fmt: skip
        return link

    def _attach_context(self) -> str:
        return f"attach program '{self.name}' (SEC(\"{self.section}\"))"

    def _auto_attach(self) -> Link | None:
        """Attaches from the SEC name; None when the section names no target."""
        context = self._attach_context()
        self._loaded_fd(context)
        ptr = lib.bpf_program__attach(self._live())
        if ptr == ffi.NULL and ffi.errno == errno.EOPNOTSUPP:
            return None
        ptr = check_ptr(ptr, context, AttachError)
        return Link(ptr, self, description=f"program '{self.name}' at SEC(\"{self.section}\")")

    def attach_uprobe(
        self,
        binary: str | os.PathLike[str],
        function: str | None = None,
        *,
        offset: int = 0,
        pid: int = -1,
        retprobe: bool = False,
        cookie: int = 0,
    ) -> Link:
        """Attaches the program as a uprobe (or uretprobe) to ``function`` in ``binary``.

        ``function`` is the symbol as it stands in the binary's symbol table;
        ``offset`` is added to it (or is the file offset when ``function`` is None).
        ``pid`` -1 traces every process, 0 this one, N one process.
        """
        path = os.fspath(binary)
        where = f"{function}+{offset:#x}" if function and offset else (function or f"offset {offset:#x}")
        kind = "uretprobe" if retprobe else "uprobe"
        context = f"attach {kind} program '{self.name}' to {where} in {path}"
        if not os.path.exists(path):
            raise AttachError(errno.ENOENT, "No such file or directory", context=context)
        fd = self._loaded_fd(context)
        del fd
        opts = ffi.new("struct bpf_uprobe_opts *")
        opts.sz = ffi.sizeof("struct bpf_uprobe_opts")
        opts.retprobe = bool(retprobe)
        opts.bpf_cookie = cookie
        name = ffi.new("char[]", function.encode()) if function else ffi.NULL
        opts.func_name = name
        ptr = lib.bpf_program__attach_uprobe_opts(self._live(), pid, os.fsencode(path), offset, opts)
        ptr = check_ptr(ptr, context, AttachError)
        return Link(ptr, self, description=f"{kind} {where} in {path}")

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
        fd = self._loaded_fd(context)
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
        check_int(lib.bpf_prog_test_run_opts(fd, opts), context, hint=hint)
        out_data = bytes(ffi.buffer(out, opts.data_size_out)) if out is not None else b""
        ctx_out = bytes(ffi.buffer(ctx_buf, len(ctx_buf) - 1)) if ctx_buf is not None else b""
        return TestRunResult(int(opts.retval), out_data, int(opts.duration), ctx_out)

    def pin(self, path: str | os.PathLike[str]) -> None:
        """Pins the loaded program on bpffs at ``path``."""
        path = os.fspath(path)
        self._loaded_fd(f"pin program '{self.name}'")
        check_int(lib.bpf_program__pin(self._live(), path.encode()), f"pin program '{self.name}' at {path}")
        self._pin_path: str | None = path

    def unpin(self) -> None:
        """Removes the pin made by :meth:`pin`."""
        path = getattr(self, "_pin_path", None)
        if path is None:
            raise BpfError(errno.ENOENT, "not pinned", context=f"unpin program '{self.name}'")
        check_int(lib.bpf_program__unpin(self._live(), path.encode()), f"unpin program '{self.name}' from {path}")
        self._pin_path = None

    def __repr__(self) -> str:
        return f"<Program {self.name!r} SEC({self.section!r})>"
