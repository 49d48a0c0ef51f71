"""Benchmarks: the offline engine sweeps (speech, speech to text), the one-command GPU run, the HTTP streaming
load generator, and their metrics."""
