"""Streamed sample processors: crossfade splicing, streaming tempo change and streaming resampling."""

from __future__ import annotations

import numpy as np
import pytest

from speechserve.audio import (
    StreamingCrossfade,
    StreamingResampler,
    StreamingTimeStretch,
    crossfade_join,
    resample,
    time_stretch,
)
from speechserve.errors import InvalidRequest

from ._util import peak_hz, rms, sine


def _pieces(x: np.ndarray, sizes: list[int]) -> list[np.ndarray]:
    out, start = [], 0
    for n in sizes:
        out.append(x[start : start + n])
        start += n
    return [*out, x[start:]]


def _stream(proc, pieces: list[np.ndarray]) -> np.ndarray:
    return np.concatenate([*(proc.push(p) for p in pieces), proc.flush()])


def test_crossfade_length_and_seam_values() -> None:
    a, b = np.ones(100, np.float32), np.zeros(60, np.float32)
    y = crossfade_join([a, b], 10)
    assert len(y) == 150  # one seam of 10 overlapped samples
    np.testing.assert_array_equal(y[:90], 1.0)
    assert np.all(np.diff(y[90:100]) < 0)  # a linear fade from a into b
    assert 0.9 < y[90] < 1.0 and 0.0 < y[99] < 0.1
    np.testing.assert_array_equal(y[100:], 0.0)


def test_crossfade_streamed_equals_one_shot_for_any_chunking() -> None:
    rng = np.random.default_rng(0)
    segs = [rng.standard_normal(n).astype(np.float32) for n in (500, 37, 3, 800)]
    want = crossfade_join(segs, 24)
    assert len(want) == sum(map(len, segs)) - 24 - 3 - 24  # each seam overlaps min(n, tail, head) samples
    joiner, out = StreamingCrossfade(24), []
    for i, seg in enumerate(segs):
        if i:
            out.append(joiner.boundary())
        out += [joiner.push(p) for p in _pieces(seg, [1, 5, 17, 2])]
    out.append(joiner.flush())
    np.testing.assert_allclose(np.concatenate(out), want, atol=1e-7)


def test_crossfade_zero_length_is_concatenation() -> None:
    segs = [np.arange(5, dtype=np.float32), np.arange(3, dtype=np.float32)]
    np.testing.assert_array_equal(crossfade_join(segs, 0), np.concatenate(segs))
    assert crossfade_join([], 10).shape == (0,)
    with pytest.raises(ValueError):
        StreamingCrossfade(-1)


@pytest.mark.parametrize("speed", [0.5, 2.0, 3.0])
def test_streaming_time_stretch_matches_duration_and_pitch(speed: float) -> None:
    rate = 24000
    x = sine(440, 1.0, rate)
    y = _stream(StreamingTimeStretch(rate, speed), _pieces(x, [1920] * 12))
    assert y.dtype == np.float32
    assert len(y) == len(time_stretch(x, rate, speed)) == round(len(x) / speed)  # exact: padded and trimmed
    assert abs(peak_hz(y, rate) - 440) <= 5
    assert rms(y) == pytest.approx(rms(x), rel=0.1)


@pytest.mark.parametrize("speed", [0.25, 0.8, 1.25, 4.0])
def test_streaming_time_stretch_length_is_exact_even_for_short_input(speed: float) -> None:
    x = sine(300, 0.08, 24000)  # one 80 ms frame
    y = _stream(StreamingTimeStretch(24000, speed), [x[:700], x[700:]])
    assert len(y) == round(len(x) / speed)
    assert rms(y[: len(y) // 2]) > 0.1  # sound, not the padding


def test_streaming_time_stretch_identity_empty_and_range() -> None:
    x = sine(440, 0.1, 16000)
    np.testing.assert_array_equal(_stream(StreamingTimeStretch(16000, 1.0), [x]), x)
    assert StreamingTimeStretch(16000, 2.0).flush().shape == (0,)
    with pytest.raises(InvalidRequest) as err:
        StreamingTimeStretch(16000, 5.0)
    assert err.value.param == "speed"
    s = StreamingTimeStretch(16000, 2.0)
    s.flush()
    with pytest.raises(RuntimeError):
        s.push(x)


@pytest.mark.parametrize(("src", "dst"), [(24000, 16000), (24000, 48000), (24000, 8000)])
def test_streaming_resampler_equals_one_shot(src: int, dst: int) -> None:
    x = sine(300, 1.0, src)
    y = _stream(StreamingResampler(src, dst), _pieces(x, [1920, 7, 3840, 100]))
    want = resample(x, src, dst)
    assert abs(len(y) - len(want)) <= 1
    n = min(len(y), len(want))
    assert np.abs(y[:n] - want[:n]).max() < 1e-3
    assert abs(peak_hz(y, dst) - 300) <= 2


def test_streaming_resampler_same_rate_and_errors() -> None:
    x = sine(300, 0.1, 24000)
    np.testing.assert_array_equal(_stream(StreamingResampler(24000, 24000), [x]), x)
    with pytest.raises(InvalidRequest):
        StreamingResampler(0, 24000)
