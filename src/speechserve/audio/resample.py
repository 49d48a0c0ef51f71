"""Sample-rate conversion (soxr) and pitch-preserving time stretching (FFmpeg ``atempo`` via PyAV)."""

from __future__ import annotations

import math
from fractions import Fraction

import av
import av.filter
import numpy as np
import soxr

from speechserve.errors import InvalidRequest

MIN_SPEED = 0.25
MAX_SPEED = 4.0
_ATEMPO_MAX = 2.0  # atempo takes [0.5, 2.0] per instance in older FFmpeg releases; chain beyond that


def resample(samples: np.ndarray, from_rate: int, to_rate: int, quality: str = "HQ") -> np.ndarray:
    """Resample ``samples`` (shape ``(n,)`` or ``(n, channels)``) from ``from_rate`` to ``to_rate`` Hz.

    Uses ``soxr.resample`` at the given quality; returns a float32 copy when the rates are equal.
    """
    if from_rate <= 0 or to_rate <= 0:
        raise InvalidRequest(f"sample rates must be positive, got {from_rate} -> {to_rate}")
    x = np.asarray(samples, dtype=np.float32)
    if from_rate == to_rate:
        return x.copy()
    if x.shape[0] == 0:
        return np.zeros((0, *x.shape[1:]), dtype=np.float32)
    return soxr.resample(np.ascontiguousarray(x), from_rate, to_rate, quality=quality).astype(np.float32)


def _atempo_chain(speed: float) -> list[float]:
    """Split ``speed`` into equal factors that each lie in atempo's [0.5, 2.0] range."""
    n = max(1, math.ceil(abs(math.log(speed)) / math.log(_ATEMPO_MAX) - 1e-9))
    return [speed ** (1.0 / n)] * n


def time_stretch(samples: np.ndarray, rate: int, speed: float) -> np.ndarray:
    """Change the tempo of mono ``samples`` by ``speed`` without changing pitch.

    ``speed`` 2 halves the duration, 0.5 doubles it; the allowed range is [0.25, 4.0]. The output has
    about ``len(samples) / speed`` samples (atempo's overlap-add framing adds or drops a few ms).
    """
    if not (MIN_SPEED <= float(speed) <= MAX_SPEED) or math.isnan(float(speed)):
        raise InvalidRequest(f"speed must be between {MIN_SPEED} and {MAX_SPEED}, got {speed}")
    if rate <= 0:
        raise InvalidRequest(f"sample rate must be positive, got {rate}")
    x = np.asarray(samples, dtype=np.float32)
    if x.ndim != 1:
        raise ValueError(f"expected mono samples of shape (n,), got shape {x.shape}")
    if speed == 1.0 or x.size == 0:
        return x.copy()

    graph = av.filter.Graph()
    nodes = [graph.add_abuffer(format="flt", sample_rate=rate, layout="mono", time_base=Fraction(1, rate))]
    for factor in _atempo_chain(float(speed)):
        nodes.append(graph.add("atempo", f"tempo={factor:.10f}"))
    nodes.append(graph.add("abuffersink"))
    graph.link_nodes(*nodes).configure()

    out: list[np.ndarray] = []

    def pull_available() -> None:
        while True:
            try:
                frame = graph.pull()
            except (av.BlockingIOError, av.EOFError):
                return
            out.append(frame.to_ndarray().reshape(-1))

    chunk = rate  # push one second at a time to bound the filter's buffering
    for start in range(0, x.size, chunk):
        piece = np.ascontiguousarray(x[start : start + chunk])
        frame = av.AudioFrame.from_ndarray(piece[None, :], format="flt", layout="mono")
        frame.sample_rate = rate
        frame.pts, frame.time_base = start, Fraction(1, rate)
        graph.push(frame)
        pull_available()
    graph.push(None)
    pull_available()
    return np.concatenate(out).astype(np.float32) if out else np.zeros(0, dtype=np.float32)
