#!/usr/bin/env bash
# Installs the Debian packages the build, the tests and the kernel matrix (tests/vm) need (root, Debian 12).
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
src=/etc/apt/sources.list.d/pyprobe-backports.sources
if [ ! -f "$src" ]; then
    # Copy the machine's own Debian entry (not the security one) for bookworm-backports.
    awk -v RS= '/Suites:[^\n]*bookworm( |$|\n)/ && !/security/' \
        /etc/apt/sources.list.d/debian.sources \
        | sed -E 's/^Suites:.*/Suites: bookworm-backports/' > "$src"
fi
apt-get update -qq
apt-get install -y -qq --no-install-recommends \
    clang llvm libelf-dev zlib1g-dev systemtap-sdt-dev g++ cmake pkg-config \
    make python3-dev git ca-certificates iproute2 \
    qemu-system-x86 busybox-static kmod cpio xz-utils zstd prometheus >/dev/null
apt-get install -y -qq --no-install-recommends -t bookworm-backports libbpf-dev bpftool golang-go linux-perf >/dev/null
