#!/usr/bin/env bash
# Regenerates vmlinux/<arch>/vmlinux.h with bpftool.
# Usage:
#   vmlinux/gen.sh [BTF_FILE]         the running kernel's BTF (default /sys/kernel/btf/vmlinux)
#   vmlinux/gen.sh --debian ARCH [PKG]
#                                     the BTF of a Debian kernel for ARCH (arm64, amd64), cut out of its
#                                     image; PKG defaults to bookworm-backports' newest
#                                     linux-image-6.12.*+deb12-ARCH-unsigned. apt runs with a private
#                                     state directory: the machine's dpkg architectures and lists stay as they are.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)

header_arch() {
    case "$1" in
        x86_64 | amd64) echo x86 ;;
        aarch64 | arm64) echo arm64 ;;
        *) echo "$1" ;;
    esac
}

write_header() {  # BTF_FILE ARCH ORIGIN
    mkdir -p "$here/$2"
    bpftool btf dump file "$1" format c > "$here/$2/vmlinux.h.tmp"
    mv "$here/$2/vmlinux.h.tmp" "$here/$2/vmlinux.h"
    echo "wrote $here/$2/vmlinux.h from $3"
}

if [ "${1:-}" = --debian ]; then
    deb_arch=${2:?usage: gen.sh --debian ARCH [PKG]}
    [ "$deb_arch" = aarch64 ] && deb_arch=arm64
    [ "$deb_arch" = x86_64 ] && deb_arch=amd64
    work=$(mktemp -d)
    trap 'rm -rf "$work"' EXIT
    mkdir -p "$work/lists/partial" "$work/cache/archives/partial"
    echo "deb [arch=$deb_arch signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian bookworm-backports main" \
        > "$work/sources.list"
    apt_opts=(-o "Dir::Etc::SourceList=$work/sources.list" -o Dir::Etc::SourceParts=/dev/null
              -o "Dir::State::Lists=$work/lists" -o "Dir::Cache=$work/cache" -o Dir::State::status=/dev/null -o APT::Sandbox::User=root
              -o "APT::Architecture=$deb_arch" -o "APT::Architectures::=$deb_arch")
    apt-get -q "${apt_opts[@]}" update >/dev/null
    pkg=${3:-$(apt-cache "${apt_opts[@]}" search --names-only "^linux-image-6\.12\.[0-9.]*\+deb12-$deb_arch-unsigned\$" \
               | cut -d' ' -f1 | sort -V | tail -1)}
    [ -n "$pkg" ] || { echo "gen.sh: no linux-image package for $deb_arch found" >&2; exit 1; }
    (cd "$work" && apt-get -q "${apt_opts[@]}" download "$pkg")
    dpkg-deb --fsys-tarfile "$work"/"${pkg}"_*.deb | tar -x -C "$work" --wildcards './boot/vmlinuz-*'
    python3 "$here/btf_from_image.py" "$work"/boot/vmlinuz-* "$work/vmlinux.btf"
    write_header "$work/vmlinux.btf" "$(header_arch "$deb_arch")" "$pkg ($(basename "$work"/boot/vmlinuz-*))"
    exit 0
fi

btf=${1:-/sys/kernel/btf/vmlinux}
write_header "$btf" "$(header_arch "$(uname -m)")" "$btf ($(uname -r))"
