"""Running agents on environments: the episode loop, the benchmark, its summary, metrics and plots."""
