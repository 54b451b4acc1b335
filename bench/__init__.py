"""Benchmarks: each bench_<domain>.py prints ours vs a baseline side by side (make bench)."""
