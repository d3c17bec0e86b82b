// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* cpu-samples: cpu-clock samples at 99 Hz on every CPU (perf_event section in ebpf_exporter's form).
 *
 * The exporter opens the perf event the section names (type 1 = software, config 0 =
 * cpu-clock) on each online CPU; the per-CPU array gives one count per CPU, which the
 * config's last label `cpu` turns into a label.
 */
#include <pyprobe/common.h>

char LICENSE[] SEC("license") = "Dual BSD/GPL";

struct {
    __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
    __uint(max_entries, 1);
    __type(key, u32);
    __type(value, u64);
} cpu_samples_total SEC(".maps");

SEC("perf_event/type=1,config=0,frequency=99")
int on_sample(struct bpf_perf_event_data *ctx)
{
    u32 zero = 0;
    u64 *count = bpf_map_lookup_elem(&cpu_samples_total, &zero);

    if (count)
        *count += 1;
    return 0;
}
