#!/usr/bin/env python3
"""Cuts the kernel's BTF (.BTF section contents) out of a kernel image.

Usage: btf_from_image.py IMAGE OUT.btf

IMAGE is a kernel as Debian ships it in /boot: a raw arm64 Image, a gzip'd
Image, an EFI zboot image (compressed payload inside a PE file) or an
uncompressed ELF vmlinux. The BTF blob is found by its header: the magic
0xeB9F (bytes 9f eb 01 00, little endian), then hdr_len, type_off, type_len,
str_off, str_len; the largest blob whose header is consistent wins.
"""

from __future__ import annotations

import gzip
import lzma
import struct
import sys
import zlib

MAGIC = b"\x9f\xeb\x01\x00"
HEADER = struct.Struct("<HBBIIIII")


def _decompress(data: bytes) -> bytes:
    """The uncompressed kernel image inside ``data`` (``data`` itself when it is not compressed)."""
    if data[:2] == b"\x1f\x8b":
        return gzip.decompress(data)
    # EFI zboot: "MZ", then "zimg" at 4, payload offset and size at 8 and 12, compression name at 24.
    if data[:2] == b"MZ" and data[4:8] == b"zimg":
        offset, size = struct.unpack_from("<II", data, 8)
        kind = data[24:32].rstrip(b"\0").decode()
        payload = data[offset : offset + size]
        if kind == "gzip":
            return zlib.decompress(payload, 16 + zlib.MAX_WBITS)
        if kind in ("xz", "lzma"):
            return lzma.decompress(payload)
        if kind == "zstd":
            import subprocess

            return subprocess.run(["zstd", "-dc"], input=payload, capture_output=True, check=True).stdout
        sys.exit(f"btf_from_image: zboot payload compressed with {kind!r}, not supported")
    return data


def find_btf(image: bytes) -> bytes:
    """The largest consistent BTF blob in ``image``."""
    best = b""
    pos = image.find(MAGIC)
    while pos >= 0:
        if pos + HEADER.size <= len(image):
            _magic, _version, _flags, hdr_len, type_off, type_len, str_off, str_len = HEADER.unpack_from(image, pos)
            end = pos + hdr_len + max(type_off + type_len, str_off + str_len)
            strings = image[pos + hdr_len + str_off : pos + hdr_len + str_off + str_len]
            if (
                hdr_len == HEADER.size
                and type_off == 0
                and str_off == type_len
                and str_len > 0
                and end <= len(image)
                and strings[:1] == b"\0"
                and strings[-1:] == b"\0"
                and end - pos > len(best)
            ):
                best = image[pos:end]
        pos = image.find(MAGIC, pos + 1)
    if not best:
        sys.exit("btf_from_image: no BTF blob found (was the kernel built with CONFIG_DEBUG_INFO_BTF?)")
    return best


def main() -> None:
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    with open(sys.argv[1], "rb") as f:
        image = _decompress(f.read())
    blob = find_btf(image)
    with open(sys.argv[2], "wb") as f:
        f.write(blob)
    print(f"btf_from_image: {len(blob)} bytes of BTF from {sys.argv[1]}")


if __name__ == "__main__":
    main()
