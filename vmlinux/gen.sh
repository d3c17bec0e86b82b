#!/usr/bin/env bash
# Regenerates vmlinux/<arch>/vmlinux.h from the running kernel's BTF.
# Usage: vmlinux/gen.sh [BTF_FILE]   (default /sys/kernel/btf/vmlinux)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
btf=${1:-/sys/kernel/btf/vmlinux}
case "$(uname -m)" in
    x86_64) arch=x86 ;;
    aarch64) arch=arm64 ;;
    *) arch=$(uname -m) ;;
esac
mkdir -p "$here/$arch"
bpftool btf dump file "$btf" format c > "$here/$arch/vmlinux.h.tmp"
mv "$here/$arch/vmlinux.h.tmp" "$here/$arch/vmlinux.h"
echo "wrote $here/$arch/vmlinux.h from $btf ($(uname -r))"
