/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* What every pyprobe BPF program includes: kernel types and libbpf's helpers. */
#ifndef PYPROBE_COMMON_H
#define PYPROBE_COMMON_H

#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include <pyprobe/btf.h>

#endif /* PYPROBE_COMMON_H */
