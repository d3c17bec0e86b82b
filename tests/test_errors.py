"""The exception hierarchy and the errno mapping (no kernel needed)."""

from __future__ import annotations

import errno
import pickle

import pytest

import pyprobe
from pyprobe import _ffi
from pyprobe.errors import check_int, error_from_errno


def test_hierarchy_follows_the_contract() -> None:
    assert issubclass(pyprobe.BpfError, OSError)
    assert issubclass(pyprobe.KeyNotFoundError, pyprobe.MapError)
    assert issubclass(pyprobe.KeyNotFoundError, KeyError)
    assert issubclass(pyprobe.MapFullError, pyprobe.MapError)
    assert issubclass(pyprobe.SymbolNotFoundError, pyprobe.AttachError)
    assert issubclass(pyprobe.SymbolNotFoundError, LookupError)
    assert issubclass(pyprobe.AmbiguousSymbolError, LookupError)
    assert issubclass(pyprobe.BpfPermissionError, PermissionError)
    assert issubclass(pyprobe.UnsupportedError, pyprobe.BpfError)
    assert pyprobe.LoadError.__module__ == "pyprobe"


def test_message_names_what_was_done_and_the_errno() -> None:
    err = error_from_errno(errno.ENOENT, "attach uprobe utest_add in /bin/x", pyprobe.AttachError)
    assert isinstance(err, pyprobe.AttachError)
    assert err.errno == errno.ENOENT
    assert str(err) == "attach uprobe utest_add in /bin/x: No such file or directory [ENOENT]"


def test_specific_class_is_kept() -> None:
    assert type(error_from_errno(errno.E2BIG, "update map 'm'", pyprobe.MapFullError)) is pyprobe.MapFullError
    assert type(error_from_errno(errno.EOPNOTSUPP, "x")) is pyprobe.UnsupportedError


def test_check_int_passes_through_and_raises() -> None:
    assert check_int(3, "x") == 3
    with pytest.raises(pyprobe.MapError, match="lookup: Invalid argument"):
        check_int(-errno.EINVAL, "lookup", pyprobe.MapError)


def test_errors_pickle() -> None:
    err = pyprobe.LoadError(errno.EACCES, "rejected", context="load", log="the log", program="p")
    again = pickle.loads(pickle.dumps(err))
    assert type(again) is pyprobe.LoadError
    assert (again.errno, again.log, again.program, str(again)) == (err.errno, "the log", "p", str(err))


def test_extension_matches_the_libbpf_it_runs_with() -> None:
    assert _ffi.BUILT_VERSION == _ffi.RUNTIME_VERSION
    assert _ffi.RUNTIME_VERSION >= (1, 4)
    assert pyprobe.libbpf_version().startswith("v1.")


def test_kernel_only_enotsupp_is_named_and_unsupported() -> None:
    err = error_from_errno(524, "test_run program 'p'")
    assert isinstance(err, pyprobe.UnsupportedError)
    assert str(err) == "test_run program 'p': Operation not supported by this program or map type [ENOTSUPP]"


def test_libbpf_private_errnos_are_named() -> None:
    names = [
        "LIBELF", "FORMAT", "KVERSION", "ENDIAN", "INTERNAL", "RELOC", "LOAD", "VERIFY", "PROG2BIG", "KVER",
        "PROGTYPE", "WRNGPID", "INVSEQ", "NLPARSE",
    ]  # fmt: skip
    for err, name in enumerate(names, start=4000):
        exc = error_from_errno(err, "open BPF object x", pyprobe.LoadError)
        assert type(exc) is pyprobe.LoadError
        assert f"[LIBBPF_ERRNO__{name}]" in str(exc) and "Unknown error" not in str(exc), str(exc)
    assert str(error_from_errno(4001, "open x")) == "open x: BPF object format invalid [LIBBPF_ERRNO__FORMAT]"
    verify = "load x: Kernel verifier blocks program loading [LIBBPF_ERRNO__VERIFY]"
    assert str(error_from_errno(-4007, "load x")) == verify
