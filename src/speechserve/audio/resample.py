"""Sample-rate conversion (soxr) and pitch-preserving time stretching (FFmpeg ``atempo`` via PyAV).

One-shot functions (``resample``, ``time_stretch``) and their streaming forms (``StreamingResampler``,
``StreamingTimeStretch``), which the server uses to change rate and tempo of audio as it is generated.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
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


def _check_speed(speed: float, rate: int) -> None:
    if not (MIN_SPEED <= float(speed) <= MAX_SPEED) or math.isnan(float(speed)):
        raise InvalidRequest(f"speed must be between {MIN_SPEED} and {MAX_SPEED}, got {speed}", param="speed")
    if rate <= 0:
        raise InvalidRequest(f"sample rate must be positive, got {rate}")


class StreamingTimeStretch:
    """Pitch-preserving tempo change of a mono stream: a persistent FFmpeg ``atempo`` filter graph.

    ``push`` returns the stretched samples available so far, ``flush`` the rest; the concatenation is the
    whole stretched signal, exactly ``round(n / speed)`` samples long for ``n`` input samples (``speed`` 2
    halves the duration): atempo's overlap-add framing would drop or add a few tens of ms at the end, so
    ``flush`` feeds it a little silence and trims. ``speed == 1`` passes samples through.
    Lifetime: one stream; ``flush`` ends it.
    """

    def __init__(self, rate: int, speed: float) -> None:
        _check_speed(speed, rate)
        self.rate, self.speed = int(rate), float(speed)
        self._pts = 0  # input samples pushed
        self._out = 0  # output samples returned
        self._done = False
        self._graph: av.filter.Graph | None = None if self.speed == 1.0 else self._build()

    def _build(self) -> av.filter.Graph:
        graph = av.filter.Graph()
        tb = Fraction(1, self.rate)
        nodes = [graph.add_abuffer(format="flt", sample_rate=self.rate, layout="mono", time_base=tb)]
        for factor in _atempo_chain(self.speed):
            nodes.append(graph.add("atempo", f"tempo={factor:.10f}"))
        nodes.append(graph.add("abuffersink"))
        graph.link_nodes(*nodes).configure()
        return graph

    def _pull(self) -> np.ndarray:
        assert self._graph is not None
        out: list[np.ndarray] = []
        while True:
            try:
                frame = self._graph.pull()
            except (av.BlockingIOError, av.EOFError):
                break
            out.append(frame.to_ndarray().reshape(-1))
        return np.concatenate(out).astype(np.float32) if out else np.zeros(0, dtype=np.float32)

    def push(self, samples: np.ndarray) -> np.ndarray:
        """Add mono float32 samples; return the stretched samples ready now (maybe none)."""
        if self._done:
            raise RuntimeError("StreamingTimeStretch.push() after flush()")
        x = np.asarray(samples, dtype=np.float32)
        if x.ndim != 1:
            raise ValueError(f"expected mono samples of shape (n,), got shape {x.shape}")
        if self._graph is None or x.size == 0:
            return x.copy()
        frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(x)[None, :], format="flt", layout="mono")
        frame.sample_rate = self.rate
        frame.pts, frame.time_base = self._pts, Fraction(1, self.rate)
        self._pts += x.size
        self._graph.push(frame)
        return self._limit(self._pull())

    def _limit(self, y: np.ndarray, n_in: int | None = None) -> np.ndarray:
        """Cap the total output at ``round(n_in / speed)`` samples (default: all input so far)."""
        n_in = self._pts if n_in is None else n_in
        y = y[: max(0, round(n_in / self.speed) - self._out)]
        self._out += y.size
        return y

    def flush(self) -> np.ndarray:
        """End the stream and return the samples the filter still held."""
        done, self._done = self._done, True
        if done or self._graph is None or self._pts == 0:
            return np.zeros(0, dtype=np.float32)
        n_in = self._pts
        pad = np.zeros(self.rate // 10, dtype=np.float32)  # 100 ms of silence, trimmed off again
        frame = av.AudioFrame.from_ndarray(pad[None, :], format="flt", layout="mono")
        frame.sample_rate, frame.pts, frame.time_base = self.rate, n_in, Fraction(1, self.rate)
        self._graph.push(frame)
        self._graph.push(None)
        return self._limit(self._pull(), n_in)


class StreamingResampler:
    """Streaming soxr resampling of a float32 stream (``push`` then one ``flush``), mono or ``channels`` wide.

    The concatenated output equals one-shot :func:`resample` (soxr's output does not depend on how the input
    is cut); equal rates pass samples through. Mono takes and gives shape ``(n,)``, several channels
    ``(n, channels)``. Lifetime: one stream; ``flush`` ends it.
    """

    def __init__(self, from_rate: int, to_rate: int, quality: str = "HQ", channels: int = 1) -> None:
        if from_rate <= 0 or to_rate <= 0:
            raise InvalidRequest(f"sample rates must be positive, got {from_rate} -> {to_rate}")
        if channels < 1:
            raise ValueError(f"channels must be at least 1, got {channels}")
        self.from_rate, self.to_rate, self.channels = int(from_rate), int(to_rate), int(channels)
        same = self.from_rate == self.to_rate
        self._soxr = None if same else soxr.ResampleStream(from_rate, to_rate, channels, "float32", quality)
        self._done = False

    def push(self, samples: np.ndarray) -> np.ndarray:
        """Add float32 samples; return the resampled samples ready now."""
        if self._done:
            raise RuntimeError("StreamingResampler.push() after flush()")
        x = np.ascontiguousarray(samples, dtype=np.float32)
        if self._soxr is None:
            return x.copy()
        return self._soxr.resample_chunk(x).astype(np.float32, copy=False)

    def push_bounded(self, samples: np.ndarray, max_out: int) -> Iterator[np.ndarray]:
        """:meth:`push` in pieces of input small enough that each yielded block has about ``max_out``
        samples (plus soxr's own granularity: ~1,000 input samples times the ratio), so upsampling holds one
        block at a time, not the whole expanded input; the caller may stop iterating at any block."""
        step = max(1, max_out * self.from_rate // self.to_rate)
        for start in range(0, len(samples), step):
            yield self.push(samples[start : start + step])

    def flush(self) -> np.ndarray:
        """End the stream and return the resampler's tail."""
        done, self._done = self._done, True
        empty = np.zeros((0,) if self.channels == 1 else (0, self.channels), dtype=np.float32)
        if done or self._soxr is None:
            return empty
        return self._soxr.resample_chunk(empty, last=True).astype(np.float32)


def time_stretch(samples: np.ndarray, rate: int, speed: float) -> np.ndarray:
    """Change the tempo of mono ``samples`` by ``speed`` without changing pitch.

    ``speed`` 2 halves the duration, 0.5 doubles it; the allowed range is [0.25, 4.0]. The output has
    about ``len(samples) / speed`` samples (atempo's overlap-add framing adds or drops a few ms).
    One-shot form of :class:`StreamingTimeStretch`.
    """
    _check_speed(speed, rate)
    x = np.asarray(samples, dtype=np.float32)
    if x.ndim != 1:
        raise ValueError(f"expected mono samples of shape (n,), got shape {x.shape}")
    if speed == 1.0 or x.size == 0:
        return x.copy()
    stretch = StreamingTimeStretch(rate, speed)
    chunk = rate  # push one second at a time to bound the filter's buffering
    out = [stretch.push(x[start : start + chunk]) for start in range(0, x.size, chunk)]
    out.append(stretch.flush())
    return np.concatenate(out).astype(np.float32)
