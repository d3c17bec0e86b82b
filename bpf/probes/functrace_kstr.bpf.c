// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* functrace with the bpf_copy_from_user_str kfunc for the sleepable string reads
 * (see functrace.bpf.c): `pyprobe trace` loads it when a traced function has a
 * string argument. Loading it makes libbpf parse the kernel's BTF. */
#define FT_KFUNC_STR 1
#include "functrace.bpf.c"
