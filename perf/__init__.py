"""Benchmarks (run as scripts or modules) and the regression check ``python -m perf.compare``."""
