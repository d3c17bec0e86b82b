"""pyprobe build / cflags: probes compiled against the headers installed with the package, then loaded."""

from __future__ import annotations

import os
import platform
import shutil
import struct
import subprocess
import sys
from pathlib import Path

import pytest

import pyprobe
from conftest import import_file
from pyprobe._elf import ElfFile
from pyprobe.compiler import ClangNotFoundError, CompileError, cflags, compile_probe, include_dir

HOST_ARCH = {"x86_64": "x86", "aarch64": "arm64"}.get(platform.machine(), "")

PROBE = r"""
#include <pyprobe/common.h>
#include <bpf/bpf_endian.h>
#include <bpf/usdt.bpf.h>

struct add_args {
	__u64 a;
	__u64 b;
};

struct add_event {
	__u32 seq;
	__u32 tgid;
	__u64 sum;
	__u8 has_pid;
};
PYPROBE_EXPORT_TYPE(struct add_event);

#ifndef SCALE
#define SCALE 1
#endif

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct add_event);
} last SEC(".maps");

SEC("syscall")
int add(struct add_args *ctx)
{
	__u32 key = 0;
	struct add_event *ev = bpf_map_lookup_elem(&last, &key);
	if (!ev)
		return -ENOENT;
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	ev->seq += 1;
	ev->sum = (ctx->a + ctx->b) * SCALE;
	ev->tgid = BPF_CORE_READ(task, tgid); /* CO-RE: relocated against the running kernel's BTF */
	ev->has_pid = bpf_core_field_exists(task->pid);
	return (int)ev->sum + (bpf_htons(1) == 1);
}

char LICENSE[] SEC("license") = "GPL";
"""


def _write(directory: Path, name: str, text: str) -> Path:
    path = directory / name
    path.write_text(text)
    return path


def _sections(path: str | Path) -> set[str]:
    with open(path, "rb") as f:
        return {s.name for s in ElfFile(f).sections}


def _pyprobe(
    *args: str, cwd: Path | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pyprobe", *args], capture_output=True, text=True, check=False, cwd=cwd, env=env
    )


def test_include_dir_holds_the_shipped_headers() -> None:
    inc = Path(include_dir())
    assert pyprobe.include_dir() == str(inc)
    assert inc == Path(pyprobe.__file__).parent / "include"
    for rel in (
        "pyprobe/common.h",
        "pyprobe/btf.h",
        "bpf/bpf_helpers.h",
        "bpf/bpf_helper_defs.h",
        "bpf/bpf_tracing.h",
        "bpf/bpf_core_read.h",
        "bpf/bpf_endian.h",
        "bpf/usdt.bpf.h",
        "vmlinux/x86/vmlinux.h",
        "vmlinux/arm64/vmlinux.h",
        "compat/linux/errno.h",
    ):
        assert (inc / rel).is_file(), rel
    # libbpf's headers are copies of the build machine's, unchanged
    licence = "/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */"
    assert (inc / "bpf/bpf_helpers.h").read_text().startswith(licence)
    assert "struct user_pt_regs {" in (inc / "vmlinux/arm64/vmlinux.h").read_text()


def test_import_pyprobe_does_not_import_the_compiler() -> None:
    code = "import sys, pyprobe; print('pyprobe.compiler' in sys.modules, 'subprocess' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]


def test_cflags_name_target_arch_and_include_dirs() -> None:
    inc = include_dir()
    flags = cflags("arm64")
    assert flags[:2] == ["-target", "bpf"]
    assert "-D__TARGET_ARCH_arm64" in flags
    assert flags.index(f"-I{inc}/vmlinux/arm64") < flags.index(f"-I{inc}")
    # the host's multiarch dir (asm/types.h) is searched after pyprobe's, then the fallback headers
    dirs = [flags[i + 1] for i, f in enumerate(flags) if f == "-idirafter"]
    assert dirs[-1] == f"{inc}/compat"
    assert "/usr/include" in dirs
    if HOST_ARCH:
        assert f"-D__TARGET_ARCH_{HOST_ARCH}" in cflags()
    assert "-D__TARGET_ARCH_x86" in cflags("x86_64")
    assert cflags("x86", host_includes=False) == [
        "-target", "bpf", "-D__TARGET_ARCH_x86", f"-I{inc}/vmlinux/x86", f"-I{inc}", "-idirafter", f"{inc}/compat"
    ]  # fmt: skip
    with pytest.raises(ValueError, match=r"unknown architecture 'mips'.*x86, arm64"):
        cflags("mips")


def test_cflags_command_prints_them_shell_quoted() -> None:
    out = _pyprobe("cflags", "--arch", "arm64")
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == cflags("arm64")
    assert _pyprobe("cflags", "--arch", "sparc").returncode == 2


def test_compiled_object_keeps_btf_and_drops_dwarf(tmp_path: Path) -> None:
    src = _write(tmp_path, "adder.bpf.c", PROBE)
    out = compile_probe(src)
    assert out == str(tmp_path / "adder.bpf.o")
    sections = _sections(out)
    assert {".BTF", ".BTF.ext", "syscall", ".maps", "license"} <= sections
    assert not [s for s in sections if s.startswith(".debug")], sections
    assert not [p.name for p in tmp_path.iterdir() if p.name.startswith(".pyprobe-")]  # no temporary left


def test_probe_built_without_the_host_headers(tmp_path: Path) -> None:
    # No /usr/include at all (-nostdinc): what a machine without libbpf-dev and linux-libc-dev has.
    # vmlinux.h, pyprobe's and libbpf's headers and the fallback <linux/errno.h> are enough.
    src = _write(tmp_path, "adder.bpf.c", PROBE)
    clang = shutil.which("clang")
    assert clang is not None
    flags = cflags("x86", host_includes=False)
    proc = subprocess.run(
        [clang, "-nostdinc", "-g", "-O2", *flags, "-c", str(src), "-o", str(tmp_path / "a.o")],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr


@pytest.mark.bpf
def test_compiled_probe_loads_and_runs(tmp_path: Path) -> None:
    src = _write(tmp_path, "adder.bpf.c", PROBE)
    obj_path = compile_probe(src, tmp_path / "adder.o", defines=["SCALE=3"])
    assert obj_path == str(tmp_path / "adder.o")
    with pyprobe.load(obj_path) as obj:
        result = obj.programs["add"].test_run(ctx=struct.pack("<QQ", 20, 2))
        assert result.retval == 66  # (20 + 2) * SCALE, SCALE from -D; bpf_htons(1) != 1 on little endian
        value = obj.maps["last"][0]
        assert (value.seq, value.sum, value.tgid, value.has_pid) == (1, 66, os.getpid(), 1)
        # the type reached the object's BTF, typed; PYPROBE_EXPORT_TYPE (<pyprobe/btf.h>) compiled
        assert [f[0] for f in obj.btf.type_by_name("add_event")._fields_][:4] == ["seq", "tgid", "sum", "has_pid"]


@pytest.mark.bpf
def test_build_command_writes_object_and_skeleton(tmp_path: Path) -> None:
    _write(tmp_path, "adder.bpf.c", PROBE)
    proc = _pyprobe("build", "adder.bpf.c", "-o", "adder.bpf.o", "--skeleton", "adder_skel.py", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "wrote adder.bpf.o and adder_skel.py" in proc.stderr
    module = import_file(tmp_path / "adder_skel.py")
    with module.AdderSkeleton().open() as skel:
        skel.load()
        assert skel.progs.add.test_run(ctx=struct.pack("<QQ", 40, 2)).retval == 42
        assert skel.maps.last[0].sum == 42


def test_include_dirs_and_defines_reach_clang(tmp_path: Path) -> None:
    inc = tmp_path / "inc"
    inc.mkdir()
    _write(inc, "limits_here.h", "#define LIMIT 7\n")
    src = _write(
        tmp_path,
        "defs.bpf.c",
        "#include <pyprobe/common.h>\n#include <limits_here.h>\n"
        "#if !defined(MODE) || MODE != 2\n#error MODE must be 2\n#endif\n"
        'SEC("syscall") int f(void *ctx) { return LIMIT; }\nchar LICENSE[] SEC("license") = "GPL";\n',
    )
    with pytest.raises(CompileError, match=r"limits_here\.h' file not found"):
        compile_probe(src, defines=["MODE=2"])
    with pytest.raises(CompileError, match="MODE must be 2"):
        compile_probe(src, include_dirs=[inc])
    assert os.path.isfile(compile_probe(src, include_dirs=[inc], defines=["MODE=2"]))
    proc = _pyprobe("build", str(src), "-o", str(tmp_path / "d.o"), "-I", str(inc), "-D", "MODE=2")
    assert proc.returncode == 0, proc.stderr


def test_arm64_build_compiles(tmp_path: Path) -> None:
    # struct user_pt_regs exists only in the arm64 vmlinux.h; PT_REGS_PARM1 reads regs[0] there
    src = _write(
        tmp_path,
        "arm.bpf.c",
        "#include <pyprobe/common.h>\n"
        'SEC("uprobe") int BPF_KPROBE(on_call, long a) { struct user_pt_regs r = {}; return a + r.pc; }\n'
        'char LICENSE[] SEC("license") = "GPL";\n',
    )
    proc = _pyprobe("build", "--arch", "arm64", str(src), "-o", str(tmp_path / "arm.bpf.o"))
    assert proc.returncode == 0, proc.stderr
    assert ".BTF" in _sections(tmp_path / "arm.bpf.o")
    with pytest.raises(CompileError) as info:
        compile_probe(src, tmp_path / "x86.bpf.o", arch="x86")
    assert "user_pt_regs" in info.value.output


def test_compile_error_keeps_clang_output_and_exit_code(tmp_path: Path) -> None:
    src = _write(tmp_path, "bad.bpf.c", "#include <pyprobe/common.h>\nint f(void) { return undeclared_thing; }\n")
    with pytest.raises(CompileError) as info:
        compile_probe(src)
    err = info.value
    assert err.returncode == 1
    assert f"{src}:2:" in err.output and "use of undeclared identifier 'undeclared_thing'" in err.output
    assert err.command[0].endswith("clang") or "clang-" in err.command[0]
    assert "exit status 1" in str(err) and err.hint == ""
    assert not (tmp_path / "bad.bpf.o").exists()
    assert not [p.name for p in tmp_path.iterdir() if p.name.startswith(".pyprobe-")]

    proc = _pyprobe("build", str(src))
    assert proc.returncode == 1
    assert proc.stderr.startswith(f"{src}:2:")  # clang's own text, first
    assert "1 error generated." in proc.stderr


def test_build_command_prints_clang_warnings(tmp_path: Path) -> None:
    src = _write(
        tmp_path,
        "warn.bpf.c",
        '#include <pyprobe/common.h>\nSEC("syscall") int f(void *ctx) { int unused; return 0; }\n'
        'char LICENSE[] SEC("license") = "GPL";\n',
    )
    proc = _pyprobe("build", str(src))
    assert proc.returncode == 0, proc.stderr
    assert f"{src}:2:39: warning: unused variable 'unused'" in proc.stderr
    assert (tmp_path / "warn.bpf.o").is_file()
    missing_dir = _pyprobe("build", str(src), "-o", str(tmp_path / "no" / "w.o"))
    assert missing_dir.returncode == 2 and f"no such directory {tmp_path / 'no'}" in missing_dir.stderr


def test_missing_uapi_header_names_the_package(tmp_path: Path) -> None:
    src = _write(tmp_path, "uapi.bpf.c", "#include <linux/no_such_uapi_header.h>\n")
    with pytest.raises(CompileError) as info:
        compile_probe(src)
    assert "linux-libc-dev" in info.value.hint
    proc = _pyprobe("build", str(src))
    assert proc.returncode == 1 and "install linux-libc-dev" in proc.stderr


def test_missing_clang_names_the_package(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    src = _write(tmp_path, "adder.bpf.c", PROBE)
    empty = tmp_path / "empty-path"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    monkeypatch.delenv("PYPROBE_CLANG", raising=False)
    with pytest.raises(ClangNotFoundError, match=r"apt-get install clang llvm"):
        compile_probe(src)
    env = {**os.environ, "PATH": str(empty)}
    proc = _pyprobe("build", str(src), env=env)
    assert proc.returncode == 69
    assert "clang" in proc.stderr and "apt-get install clang llvm" in proc.stderr
    assert _pyprobe("cflags", env=env).returncode == 69
    monkeypatch.setenv("PYPROBE_CLANG", "clang-0")
    with pytest.raises(ClangNotFoundError, match="PYPROBE_CLANG names 'clang-0'"):
        compile_probe(src)


def test_build_command_usage_errors(tmp_path: Path) -> None:
    missing = _pyprobe("build", str(tmp_path / "nope.bpf.c"))
    assert missing.returncode == 2 and "no such BPF source file" in missing.stderr
    assert _pyprobe("build").returncode == 2
    assert _pyprobe("build", "x.bpf.c", "--arch", "mips").returncode == 2
