"""Benchmarks: the offline engine sweep, the HTTP streaming load generator, and their metrics."""
