#!/usr/bin/env bash
# examples/tool built as another project builds on pyprobe: its wheel is made by pip with build
# isolation from pyprobe's wheel in dist/ (pyprobe's CMake package compiles the probe and writes its
# skeleton), both wheels go into a fresh venv outside the tree, mypy --strict checks the installed tool
# with its generated skeleton, and the tool runs against the real kernel (as root) and must see the
# openat() calls of a process started here. Any failure exits non-zero.
#   tests/package/tool.sh            (after ./dev wheel; PYTHON picks the interpreter, default python3)
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
PYTHON=${PYTHON:-python3}
MYPY=${MYPY:-$ROOT/.venv/bin/mypy}

fail() { echo "tool: $*" >&2; exit 1; }

shopt -s nullglob
wheels=("$ROOT"/dist/pyprobe-*.whl)
[ ${#wheels[@]} = 1 ] || fail "need exactly one pyprobe wheel in $ROOT/dist (found ${#wheels[@]}): run ./dev wheel first"
wheel=${wheels[0]}
version=$(basename "$wheel" | cut -d- -f2)

work=$(mktemp -d /tmp/pyprobe-tool.XXXXXX)
trap 'rm -rf "$work"' EXIT
# pyprobe comes from dist/ and nowhere else; the rest (scikit-build-core, cffi) from the configured index
echo "pyprobe==$version" >"$work/constraints.txt"
export PIP_CONSTRAINT=$work/constraints.txt PIP_FIND_LINKS="$ROOT/dist ${PIP_FIND_LINKS:-}"

# the project as its own author has it: a copy outside this tree
cp -r "$ROOT/examples/tool" "$work/src"
"$PYTHON" -m venv "$work/venv"
V=$work/venv/bin
start=$(date +%s)
(cd "$work" && "$V/pip" wheel -q --no-deps "$work/src" -w "$work/wheels") || fail "building the opencount wheel failed"
tool_wheel=$(ls "$work"/wheels/opencount-*.whl)
echo "tool: built $(basename "$tool_wheel") in $(($(date +%s) - start)) s"
(cd "$work" && "$V/pip" install -q "$wheel" "$tool_wheel")
contents=$(unzip -Z1 "$tool_wheel")
grep -qx "opencount/opencount_skel.py" <<<"$contents" || fail "the wheel has no generated skeleton"
grep -qx "opencount/opencount.bpf.o" <<<"$contents" || fail "the wheel has no BPF object"

# the installed tool, generated skeleton included, is mypy --strict clean against the installed pyprobe
(cd "$work" && "$MYPY" --strict --no-incremental --python-executable "$V/python" -p opencount)

# run it against the kernel: it must count a process that opens a known file 50 times
[ "$(id -u)" = 0 ] || fail "run as root: the tool loads a BPF program"
marker=$work/opened-by-the-check
touch "$marker"
(cd "$work" && exec "$V/opencount" --duration 3 --top 1000000 --json) >"$work/out.json" 2>"$work/err.txt" &
tool=$!
for _ in $(seq 300); do
    grep -q "counting openat" "$work/err.txt" && break
    kill -0 "$tool" 2>/dev/null || break
    sleep 0.1
done
grep -q "counting openat" "$work/err.txt" || { cat "$work/err.txt" >&2; fail "opencount did not start counting"; }
"$PYTHON" -c "import sys
for _ in range(50): open(sys.argv[1]).close()" "$marker" &
opener=$!
wait "$opener"
wait "$tool" || { cat "$work/err.txt" >&2; fail "opencount failed"; }
"$PYTHON" - "$work/out.json" "$opener" "$marker" <<'PYEOF'
import json, sys
doc = json.load(open(sys.argv[1]))
pid, marker = int(sys.argv[2]), sys.argv[3]
mine = [p for p in doc["processes"] if p["pid"] == pid]
assert mine, f"opencount did not see pid {pid} among {len(doc['processes'])} processes"
seen = mine[0]
assert seen["count"] >= 50, seen
assert seen["last_path"] == marker, seen
print(f"tool ok: opencount saw pid {pid} ({seen['comm']}) open {seen['count']} files, the last {seen['last_path']}")
PYEOF
