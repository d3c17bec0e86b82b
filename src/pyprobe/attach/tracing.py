"""Tracing attach kinds: uprobes, uprobe_multi, USDT, tracepoints, raw tracepoints, kprobes, BTF tracing
(tp_btf, fentry/fexit, fmod_ret, LSM), freplace and perf events."""

from __future__ import annotations

import contextlib
import errno
import os
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, ClassVar

from pyprobe._ffi import ffi, lib
from pyprobe.attach._base import ProgramCore
from pyprobe.enums import AttachType, ProgramType
from pyprobe.errors import AttachError, BpfError, SymbolNotFoundError, check_int, check_ptr, error_from_errno
from pyprobe.link import (
    KprobeLink,
    PerfEventLink,
    RawTracepointLink,
    TraceLink,
    TracepointLink,
    UprobeLink,
    UprobeMultiLink,
    UsdtLink,
)
from pyprobe.perf_event import PerfEvent

if TYPE_CHECKING:
    from pyprobe import symbols
    from pyprobe.program import Program

__all__ = ["TracingAttach"]


class TracingAttach(ProgramCore):
    """The tracing ``attach_*`` methods of :class:`~pyprobe.Program`."""

    # --- uprobes ------------------------------------------------------------------------

    def attach_uprobe(
        self,
        binary: str | os.PathLike[str],
        function: str | None = None,
        *,
        offset: int = 0,
        pid: int = -1,
        retprobe: bool = False,
        cookie: int = 0,
        return_sites: bool = False,
        unsafe_go_uretprobe: bool = False,
    ) -> UprobeLink:
        """Attaches the program as a uprobe (or uretprobe) to ``function`` in ``binary``.

        ``function`` is a symbol (``main.main``, ``_Z9utest_addii``), a
        demangled name (``utest_add(int, int)``) or an unambiguous bare name
        (``utest_add``); ``offset`` is added to it, or is the file offset when
        ``function`` is None. ``binary`` is a path or a library name (see
        :mod:`pyprobe.symbols`). ``pid`` -1 traces every process, 0 this one,
        N one process. ``cookie`` is what ``bpf_get_attach_cookie()`` returns.

        A uretprobe on a Go binary is refused (Go moves goroutine stacks, and
        the kernel's return trampoline corrupts them): pass
        ``return_sites=True`` to put a uprobe on each return instruction of the
        function instead (needs the ``capstone`` package), or
        ``unsafe_go_uretprobe=True`` to force it. Blocks for the attach
        (about 8 ms). Raises :class:`SymbolNotFoundError`,
        :class:`AmbiguousSymbolError`, :class:`AttachError`; minimum kernel 4.3.
        """
        kind = "uretprobe" if retprobe else "uprobe"
        where = f"{function}+{offset:#x}" if function and offset else (function or f"offset {offset:#x}")
        context = f"attach {kind} program '{self.name}' to {where} in {os.fspath(binary)}"
        self._require_kind(
            f"attach_{kind}", (ProgramType.KPROBE,), 'a SEC("uprobe") or SEC("uretprobe") program', context
        )
        if self.attach_type in (AttachType.TRACE_UPROBE_MULTI, AttachType.TRACE_KPROBE_MULTI):
            raise AttachError(
                errno.EINVAL, f"program '{self.name}' is SEC(\"{self.section}\"), a multi-probe program",
                context=context, hint="use attach_uprobe_multi, or declare it SEC(\"uprobe\")",
            )  # fmt: skip
        pid = self._check_pid(pid, context)
        offset = self._check_int_arg(offset, "offset", 0, 2**63 - 1, context)
        cookie = self._check_int_arg(cookie, "cookie", 0, 2**64 - 1, context)
        from pyprobe import symbols  # on first use, as features and usdt: a load without uprobes reads no ELF

        path = symbols.resolve_binary(binary, pid)
        info = symbols.elf_info(path)
        context = f"attach {kind} program '{self.name}' to {where} in {path}"
        sym = None
        if function is not None:
            sym = symbols.resolve(path, function)
            file_offset = sym.offset + offset
        elif offset:
            file_offset = offset
        else:
            raise ValueError(f"{context}: give a function, or an offset when there is no function")
        if return_sites:
            if sym is None:
                raise ValueError(f"{context}: return_sites needs a function")
            return self._attach_return_sites(path, info, sym, pid, cookie, context)
        if retprobe and info.is_go and not unsafe_go_uretprobe:
            raise AttachError(
                errno.EINVAL,
                f"{path} is a Go binary: a uretprobe corrupts goroutine stacks (the Go runtime moves them)",
                context=context,
                hint="use attach_uretprobe(..., return_sites=True) for uprobes on each return instruction, "
                "or unsafe_go_uretprobe=True to force it",
            )
        self._loaded_fd(context)
        link = self._uprobe_link(path, file_offset, pid, retprobe, cookie, context)
        name = sym.name if sym is not None else None
        return UprobeLink(
            link, self, description=f"{kind} {where} in {path}", binary=path, function=name,
            offset=file_offset, pid=pid, retprobe=retprobe, cookie=cookie,
        )  # fmt: skip

    def _uprobe_link(self, path: str, file_offset: int, pid: int, retprobe: bool, cookie: int, context: str) -> Any:
        opts = ffi.new("struct bpf_uprobe_opts *")
        opts.sz = ffi.sizeof("struct bpf_uprobe_opts")
        opts.retprobe = bool(retprobe)
        opts.bpf_cookie = cookie
        ptr = self._call(lib.bpf_program__attach_uprobe_opts, pid, os.fsencode(path), file_offset, opts)
        return check_ptr(ptr, context, AttachError)

    def _attach_return_sites(
        self, path: str, info: symbols.ElfInfo, sym: symbols.Symbol, pid: int, cookie: int, context: str
    ) -> UprobeLink:
        try:
            import capstone
        except ImportError:
            raise ImportError(
                f"{context}: return_sites needs the capstone disassembler: pip install 'pyprobe[go]'"
            ) from None
        arches = {
            "EM_X86_64": (capstone.CS_ARCH_X86, capstone.CS_MODE_64),
            "EM_AARCH64": (capstone.CS_ARCH_ARM64, capstone.CS_MODE_ARM),
        }
        if info.machine not in arches:
            raise AttachError(
                errno.EOPNOTSUPP, f"return_sites supports x86-64 and arm64, not {info.machine}", context=context
            )
        if sym.size <= 0:
            raise AttachError(
                errno.EINVAL, f"the symbol '{sym.name}' has no size: cannot find its end", context=context
            )
        with open(path, "rb") as f:
            f.seek(sym.offset)
            code = f.read(sym.size)
        md = capstone.Cs(*arches[info.machine])
        sites = tuple(sym.offset + insn.address for insn in md.disasm(code, 0) if insn.mnemonic in ("ret", "retq"))
        if not sites:
            raise AttachError(errno.ENOENT, f"no return instruction found in '{sym.name}'", context=context)
        self._loaded_fd(context)
        ptrs: list[Any] = []
        try:
            for site in sites:
                ptrs.append(self._uprobe_link(path, site, pid, False, cookie, context))
        except BaseException:
            for ptr in ptrs:
                lib.bpf_link__destroy(ptr)
            raise
        return UprobeLink(
            ptrs[0], self, description=f"uprobes on the {len(sites)} return sites of {sym.name} in {path}",
            also=tuple(ptrs[1:]), binary=path, function=sym.name, offset=sym.offset, pid=pid, retprobe=True,
            cookie=cookie, return_offsets=sites,
        )  # fmt: skip

    def attach_uretprobe(
        self,
        binary: str | os.PathLike[str],
        function: str | None = None,
        *,
        offset: int = 0,
        pid: int = -1,
        cookie: int = 0,
        return_sites: bool = False,
        unsafe_go_uretprobe: bool = False,
    ) -> UprobeLink:
        """Attaches the program to the return of ``function``: :meth:`attach_uprobe` with ``retprobe=True``."""
        return self.attach_uprobe(
            binary, function, offset=offset, pid=pid, retprobe=True, cookie=cookie,
            return_sites=return_sites, unsafe_go_uretprobe=unsafe_go_uretprobe,
        )  # fmt: skip

    def attach_uprobe_multi(
        self,
        binary: str | os.PathLike[str],
        functions: str | Sequence[str],
        *,
        pid: int = -1,
        retprobe: bool = False,
        cookies: Sequence[int] | None = None,
    ) -> UprobeMultiLink:
        """Attaches the program to many functions of ``binary`` with one uprobe_multi link.

        ``functions`` is a glob matched against symbols and demangled names
        (``_Z9utest_*``, ``utest_*``), or a list of names as
        :meth:`attach_uprobe` takes them. ``cookies`` gives one cookie per
        function (in the order of ``functions`` for a list, of file offset for
        a glob). The program must be SEC("uprobe.multi") (or
        "uretprobe.multi"). Blocks for the attach; raises
        :class:`SymbolNotFoundError` when nothing matches.

        Needs uprobe_multi links (Linux 6.6). On an older kernel there is no
        fallback to one uprobe per function: after checking the arguments and
        resolving the functions, it raises :class:`UnsupportedError`
        (EOPNOTSUPP) naming the feature and why it is missing (``Linux 6.1.0
        is older than 6.6, ...``), and attaches nothing. Loading a
        SEC("uprobe.multi") program works on such kernels; use
        :meth:`attach_uprobe` per function there, or check
        ``pyprobe.features.available("uprobe_multi")`` first.
        """
        context = f"attach uprobe.multi program '{self.name}' to {functions!r} in {os.fspath(binary)}"
        self._require_kind("attach_uprobe_multi", (ProgramType.KPROBE,), 'a SEC("uprobe.multi") program', context)
        if self.attach_type != AttachType.TRACE_UPROBE_MULTI:
            raise AttachError(
                errno.EINVAL, f"program '{self.name}' is SEC(\"{self.section}\"), not a uprobe.multi program",
                context=context, hint='declare it SEC("uprobe.multi") or use attach_uprobe',
            )  # fmt: skip
        pid = self._check_pid(pid, context)
        from pyprobe import features, symbols

        path = symbols.resolve_binary(binary, pid)
        context = f"attach uprobe.multi program '{self.name}' to {functions!r} in {path}"
        if isinstance(functions, str):
            found: list[symbols.Symbol] = []
            seen: set[int] = set()
            for sym in symbols.find(path, functions):
                if sym.offset not in seen:
                    seen.add(sym.offset)
                    found.append(sym)
            if not found:
                raise SymbolNotFoundError(errno.ENOENT, f"no function matches '{functions}' in {path}", context=context)
        else:
            if not functions:
                raise ValueError(f"{context}: functions is empty")
            found = [symbols.resolve(path, name) for name in functions]
        cookie_list: list[int] = []
        if cookies is not None:
            cookie_list = [self._check_int_arg(c, "cookie", 0, 2**64 - 1, context) for c in cookies]
            if len(cookie_list) != len(found):
                raise ValueError(f"{context}: {len(cookie_list)} cookies for {len(found)} functions")
        features.require("uprobe_multi", context)
        self._loaded_fd(context)
        opts = ffi.new("struct bpf_uprobe_multi_opts *")
        opts.sz = ffi.sizeof("struct bpf_uprobe_multi_opts")
        offsets = ffi.new("unsigned long[]", [s.offset for s in found])
        opts.offsets = offsets
        opts.cnt = len(found)
        opts.retprobe = bool(retprobe)
        cookie_buf = ffi.new("__u64[]", cookie_list) if cookie_list else ffi.NULL
        opts.cookies = cookie_buf
        ptr = self._call(lib.bpf_program__attach_uprobe_multi, pid, os.fsencode(path), ffi.NULL, opts)
        ptr = check_ptr(ptr, context, AttachError)
        kind = "uretprobe.multi" if retprobe else "uprobe.multi"
        return UprobeMultiLink(
            ptr, self, description=f"{kind} on {len(found)} functions in {path}", binary=path,
            functions=tuple(s.name for s in found), offsets=tuple(s.offset for s in found),
            cookies=tuple(cookie_list), pid=pid, retprobe=retprobe,
        )  # fmt: skip

    # --- USDT --------------------------------------------------------------------------

    def attach_usdt(
        self, binary: str | os.PathLike[str], provider: str, name: str, *, pid: int = -1, cookie: int = 0
    ) -> UsdtLink:
        """Attaches the program to the USDT probe ``provider:name`` of ``binary`` (libbpf's USDT support).

        libbpf activates the probe's semaphore, if it has one, while the link
        exists; the program reads arguments with ``bpf_usdt_arg()``. Raises
        :class:`SymbolNotFoundError` listing the probes the binary has when
        there is no such probe. Blocks for the attach; minimum kernel 4.3.
        """
        context = f"attach usdt program '{self.name}' to {provider}:{name} in {os.fspath(binary)}"
        self._require_kind("attach_usdt", (ProgramType.KPROBE,), 'a SEC("usdt") program', context)
        pid = self._check_pid(pid, context)
        cookie = self._check_int_arg(cookie, "cookie", 0, 2**64 - 1, context)
        from pyprobe import symbols, usdt

        path = symbols.resolve_binary(binary, pid)
        context = f"attach usdt program '{self.name}' to {provider}:{name} in {path}"
        have = usdt.probes(path)
        if not any(p.provider == provider and p.name == name for p in have):
            listed = ", ".join(sorted({f"{p.provider}:{p.name}" for p in have})) or "none"
            raise SymbolNotFoundError(
                errno.ENOENT, f"no USDT probe {provider}:{name} in {path} (it has: {listed})", context=context
            )
        self._loaded_fd(context)
        opts = ffi.new("struct bpf_usdt_opts *")
        opts.sz = ffi.sizeof("struct bpf_usdt_opts")
        opts.usdt_cookie = cookie
        with self._object._guard:  # a USDT link points into the object: it is adopted before a close can free it
            where = (os.fsencode(path), provider.encode(), name.encode())
            ptr = self._call(lib.bpf_program__attach_usdt, pid, *where, opts)
            ptr = check_ptr(ptr, context, AttachError)
            return UsdtLink(
                ptr, self, description=f"usdt {provider}:{name} in {path}", binary=path, provider=provider, name=name,
                pid=pid,
            )  # fmt: skip

    # --- tracepoints ---------------------------------------------------------------------

    def attach_tracepoint(self, category: str, name: str, *, cookie: int = 0) -> TracepointLink:
        """Attaches the program to the tracepoint ``category:name`` (``syscalls``, ``sys_enter_getpid``).

        Needs tracefs (``/sys/kernel/tracing``) mounted. Raises
        :class:`AttachError` (ENOENT) naming an unknown tracepoint. Attaching
        takes about 0.35 ms, detaching tens of ms (RCU). Minimum kernel 4.7.
        """
        context = f"attach tracepoint program '{self.name}' to {category}:{name}"
        self._require_kind("attach_tracepoint", (ProgramType.TRACEPOINT,), 'a SEC("tracepoint") program', context)
        cookie = self._check_int_arg(cookie, "cookie", 0, 2**64 - 1, context)
        if not all(isinstance(x, str) and x and "/" not in x for x in (category, name)):
            raise ValueError(f"{context}: category and name must be non-empty names without '/'")
        roots = [r for r in ("/sys/kernel/tracing", "/sys/kernel/debug/tracing") if os.path.isdir(f"{r}/events")]
        if not roots:
            raise AttachError(
                errno.ENOENT, "tracefs is not mounted", context=context,
                hint="mount -t tracefs tracefs /sys/kernel/tracing",
            )  # fmt: skip
        if not any(os.path.isdir(f"{r}/events/{category}/{name}") for r in roots):
            raise AttachError(errno.ENOENT, f"no tracepoint {category}:{name} (see {roots[0]}/events)", context=context)
        self._loaded_fd(context)
        opts = ffi.new("struct bpf_tracepoint_opts *")
        opts.sz = ffi.sizeof("struct bpf_tracepoint_opts")
        opts.bpf_cookie = cookie
        ptr = self._call(lib.bpf_program__attach_tracepoint_opts, category.encode(), name.encode(), opts)
        ptr = check_ptr(ptr, context, AttachError)
        return TracepointLink(ptr, self, description=f"tracepoint {category}:{name}", category=category, name=name)

    def attach_raw_tracepoint(self, name: str, *, cookie: int = 0) -> RawTracepointLink:
        """Attaches the program to the raw tracepoint ``name`` (``sched_switch``, ``sys_enter``).

        Raises :class:`AttachError` (ENOENT) naming an unknown tracepoint.
        Minimum kernel 4.17 (cookies 6.10).
        """
        context = f"attach raw_tp program '{self.name}' to {name}"
        self._require_kind(
            "attach_raw_tracepoint", (ProgramType.RAW_TRACEPOINT, ProgramType.RAW_TRACEPOINT_WRITABLE),
            'a SEC("raw_tp") program', context,
        )  # fmt: skip
        cookie = self._check_int_arg(cookie, "cookie", 0, 2**64 - 1, context)
        if not isinstance(name, str) or not name:
            raise ValueError(f"{context}: name must be a non-empty str")
        self._loaded_fd(context)
        if cookie:
            opts = ffi.new("struct bpf_raw_tracepoint_opts *")
            opts.sz = ffi.sizeof("struct bpf_raw_tracepoint_opts")
            opts.cookie = cookie
            ptr = self._call(lib.bpf_program__attach_raw_tracepoint_opts, name.encode(), opts)
        else:
            ptr = self._call(lib.bpf_program__attach_raw_tracepoint_opts, name.encode(), ffi.NULL)
        if ptr == ffi.NULL and ffi.errno == errno.ENOENT:
            raise AttachError(errno.ENOENT, f"no raw tracepoint '{name}'", context=context)
        ptr = check_ptr(ptr, context, AttachError)
        return RawTracepointLink(ptr, self, description=f"raw_tp {name}", name=name)

    # --- kernel functions ----------------------------------------------------------------

    def attach_kprobe(self, function: str, *, retprobe: bool = False, offset: int = 0, cookie: int = 0) -> KprobeLink:
        """Attaches the program as a kprobe (or kretprobe) to kernel function ``function`` (+ ``offset``).

        Raises :class:`UnsupportedError` naming the missing feature when the
        kernel has no kprobes (CONFIG_KPROBES off), :class:`AttachError`
        otherwise. Minimum kernel 4.1.
        """
        kind = "kretprobe" if retprobe else "kprobe"
        context = f"attach {kind} program '{self.name}' to {function}"
        self._require_kind(f"attach_{kind}", (ProgramType.KPROBE,), 'a SEC("kprobe") program', context)
        if not isinstance(function, str) or not function:
            raise ValueError(f"{context}: function must be a non-empty str")
        offset = self._check_int_arg(offset, "offset", 0, 2**63 - 1, context)
        cookie = self._check_int_arg(cookie, "cookie", 0, 2**64 - 1, context)
        from pyprobe import features

        features.require("kprobe", context)
        self._loaded_fd(context)
        opts = ffi.new("struct bpf_kprobe_opts *")
        opts.sz = ffi.sizeof("struct bpf_kprobe_opts")
        opts.retprobe = bool(retprobe)
        opts.offset = offset
        opts.bpf_cookie = cookie
        ptr = self._call(lib.bpf_program__attach_kprobe_opts, function.encode(), opts)
        ptr = check_ptr(ptr, context, AttachError)
        return KprobeLink(
            ptr, self, description=f"{kind} {function}", function=function, offset=offset, retprobe=retprobe
        )

    _TRACE_FEATURES: ClassVar[dict[AttachType, str]] = {
        AttachType.TRACE_FENTRY: "fentry",
        AttachType.TRACE_FEXIT: "fexit",
        AttachType.MODIFY_RETURN: "fmod_ret",
        AttachType.TRACE_RAW_TP: "tp_btf",
        AttachType.LSM_MAC: "lsm",
    }

    def _trace_feature(self) -> str | None:
        if self.type == ProgramType.EXT:
            return "freplace"
        if self.type == ProgramType.LSM:
            return "lsm"
        return self._TRACE_FEATURES.get(self.attach_type)

    def _trace_target(self) -> str:
        target = getattr(self, "_attach_func", None)
        if target:
            return str(target)
        return self.section.partition("/")[2]

    def attach_trace(self, *, cookie: int = 0) -> TraceLink:
        """Attaches a BTF tracing program where its SEC name (or :meth:`set_attach_target`) points:
        tp_btf, fentry, fexit, fmod_ret or lsm.

        Raises :class:`UnsupportedError` naming the missing kernel feature and
        why (an older kernel, a config option off, lockdown), checked before
        the program's own state. Minimum kernel 5.5 (lsm, fmod_ret 5.7).
        """
        context = f"attach tracing program '{self.name}' (SEC(\"{self.section}\"))"
        self._require_kind(
            "attach_trace", (ProgramType.TRACING, ProgramType.LSM),
            'a SEC("tp_btf"), SEC("fentry"), SEC("fexit"), SEC("fmod_ret") or SEC("lsm") program', context,
        )  # fmt: skip
        feature = self._trace_feature()
        if feature is None:
            raise AttachError(
                errno.EINVAL, f"attach type {self.attach_type.name.lower()} is not a tracing attach", context=context
            )
        cookie = self._check_int_arg(cookie, "cookie", 0, 2**64 - 1, context)
        from pyprobe import features

        features.require(feature, context)
        self._loaded_fd(context)
        if feature == "lsm":
            ptr = self._call(lib.bpf_program__attach_lsm)
        else:
            opts = ffi.new("struct bpf_trace_opts *")
            opts.sz = ffi.sizeof("struct bpf_trace_opts")
            opts.cookie = cookie
            ptr = self._call(lib.bpf_program__attach_trace_opts, opts)
        ptr = check_ptr(ptr, context, AttachError)
        target = self._trace_target()
        return TraceLink(ptr, self, description=f"{feature} {target}", kind=feature, target=target)

    def set_attach_target(self, target: Program | int | None, function: str) -> None:
        """Sets what a tracing or freplace program attaches to; call before load.

        ``target`` is a loaded :class:`Program` or a program fd (freplace, or
        fentry/fexit on a BPF program), or None for a kernel function.
        Raises :class:`UnsupportedError` when the kernel lacks the feature,
        BpfError (EALREADY) after load.
        """
        context = f"set attach target of program '{self.name}' to {function}"
        self._require_kind(
            "set_attach_target", (ProgramType.TRACING, ProgramType.LSM, ProgramType.EXT),
            "a tracing, lsm or freplace program", context,
        )  # fmt: skip
        if not isinstance(function, str) or not function:
            raise ValueError(f"{context}: function must be a non-empty str")
        if self._object.state != "opened":
            raise BpfError(errno.EALREADY, "the object is already loaded: set the target before load", context=context)
        feature = self._trace_feature()
        if feature is not None:
            from pyprobe import features

            features.require(feature, context)
        fd = self._target_fd(target, context)
        check_int(self._call(lib.bpf_program__set_attach_target, fd, function.encode()), context)
        self._attach_func = function

    def _target_fd(self, target: Program | int | None, context: str) -> int:
        if target is None:
            return 0
        if isinstance(target, ProgramCore):
            return target._loaded_fd(context)
        if isinstance(target, int) and not isinstance(target, bool) and target >= 0:
            return target
        raise TypeError(f"{context}: target must be a loaded Program, a program fd or None, not {target!r}")

    def attach_freplace(self, target: Program | int, function: str) -> TraceLink:
        """Attaches an freplace (SEC("freplace")) program in place of ``function`` of the BPF program ``target``.

        Raises :class:`UnsupportedError` when the kernel refuses BPF
        trampolines; minimum kernel 5.6.
        """
        context = f"attach freplace program '{self.name}' to {function}"
        self._require_kind("attach_freplace", (ProgramType.EXT,), 'a SEC("freplace") program', context)
        if not isinstance(function, str) or not function:
            raise ValueError(f"{context}: function must be a non-empty str")
        from pyprobe import features

        features.require("freplace", context)
        fd = self._target_fd(target, context)
        self._loaded_fd(context)
        ptr = self._call(lib.bpf_program__attach_freplace, fd, function.encode())
        ptr = check_ptr(ptr, context, AttachError)
        return TraceLink(ptr, self, description=f"freplace {function}", kind="freplace", target=function)

    # --- perf events and XDP -----------------------------------------------------------

    def attach_perf_event(self, perf_fd: int | PerfEvent, *, cookie: int = 0) -> PerfEventLink:
        """Attaches the program to an open perf event (an fd, or a :class:`~pyprobe.perf_event.PerfEvent`).

        The link holds its own duplicate of the fd: closing the event or the
        link leaves the other usable. Open events with
        :func:`pyprobe.perf_event.open_sampling`. Minimum kernel 4.9.
        """
        cpu = perf_fd.cpu if isinstance(perf_fd, PerfEvent) else None
        fd = perf_fd.fileno() if isinstance(perf_fd, PerfEvent) else perf_fd
        context = f"attach perf_event program '{self.name}' to perf event fd {fd}"
        self._require_kind(
            "attach_perf_event", (ProgramType.PERF_EVENT, ProgramType.KPROBE, ProgramType.TRACEPOINT),
            'a SEC("perf_event") program', context,
        )  # fmt: skip
        fd = self._check_int_arg(fd, "perf_fd", 0, 2**31 - 1, context)
        cookie = self._check_int_arg(cookie, "cookie", 0, 2**64 - 1, context)
        self._loaded_fd(context)
        try:
            with perf_fd._guard if isinstance(perf_fd, PerfEvent) else contextlib.nullcontext():
                dup = os.dup(fd)  # the number is still the PerfEvent's: a close in another thread waits for this
        except OSError as exc:
            raise AttachError(exc.errno or errno.EBADF, f"perf event fd {fd} is not open", context=context) from None
        opts = ffi.new("struct bpf_perf_event_opts *")
        opts.sz = ffi.sizeof("struct bpf_perf_event_opts")
        opts.bpf_cookie = cookie
        ptr = self._call(lib.bpf_program__attach_perf_event_opts, dup, opts)
        if ptr == ffi.NULL:
            err = ffi.errno or errno.EINVAL
            os.close(dup)
            raise error_from_errno(err, context, AttachError)
        return PerfEventLink(ptr, self, description=f"perf event fd {fd}", perf_fd=fd, cpu=cpu)
