"""A sampling CPU profiler: stacks sampled through perf events, symbolized, written as flame graphs."""
