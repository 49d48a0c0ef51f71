"""Streaming metrics, defined exactly as VoxServe's `benchmark/goodput.py` does (engine_lessons.md §3.1),
so our figures are comparable with its paper."""

from __future__ import annotations

import statistics
from collections.abc import Sequence


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0-100) by linear interpolation; NaN for no values."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    k = (len(ordered) - 1) * q / 100
    lo, hi = int(k), min(int(k) + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


def chunk_viability(arrivals: Sequence[float], durations: Sequence[float]) -> tuple[float, bool] | None:
    """Per-request viability from body-read arrival times and their audio durations.

    Chunk i ≥ 1 is on time iff d_0 + … + d_{i−1} > a_i − a_0 (playback starts at a_0, no buffer).
    Returns (on-time percentage, every chunk on time), or None for fewer than 2 reads (excluded).
    """
    if len(arrivals) < 2:
        return None
    on_time, played = 0, 0.0
    for i in range(1, len(arrivals)):
        played += durations[i - 1]
        on_time += played > arrivals[i] - arrivals[0]
    n = len(arrivals) - 1
    return 100.0 * on_time / n, on_time == n


def summarize(values: Sequence[float]) -> dict[str, float]:
    """mean / p50 / p90 / p95 / p99 of a list of numbers."""
    return {
        "mean": statistics.fmean(values) if values else float("nan"),
        "p50": percentile(values, 50),
        "p90": percentile(values, 90),
        "p95": percentile(values, 95),
        "p99": percentile(values, 99),
    }
