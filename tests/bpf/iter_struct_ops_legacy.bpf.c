// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* The same congestion control registered by a map update (Linux 5.6), for kernels without struct_ops links. */
#define PYPROBE_CA_SEC ".struct_ops"
#define PYPROBE_CA_NAME "pyprobe_ca_old"
#include "iter_tcp_ca.h"
