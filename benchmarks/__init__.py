"""Benchmarks: one script per workload; ratios measured in one run (see docs/benchmarks.md)."""
