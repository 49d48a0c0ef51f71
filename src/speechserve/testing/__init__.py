"""Helpers for tests and benchmarks: tiny checkpoints, tokenizer fixtures, golden-case runners."""
