// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* A BPF congestion control registered through a struct_ops link (Linux 6.4). */
#define PYPROBE_CA_SEC ".struct_ops.link"
#define PYPROBE_CA_NAME "pyprobe_ca"
#include "iter_tcp_ca.h"
