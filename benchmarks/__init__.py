"""Benchmarks: performance claims are checked here, not in timed tests. Results go to BENCHMARKS.md."""
