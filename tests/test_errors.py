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
