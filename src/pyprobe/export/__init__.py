"""BPF maps as Prometheus and OpenTelemetry metrics."""
