"""Tests for speechserve.audio.resample: soxr resampling and pitch-preserving time stretch."""

from __future__ import annotations

import math

import numpy as np
import pytest

from speechserve.audio import resample, time_stretch
from speechserve.audio.resample import _atempo_chain
from speechserve.errors import InvalidRequest

from ._util import peak_hz, rms, sine


@pytest.mark.parametrize(("src", "dst"), [(24000, 16000), (16000, 24000), (44100, 24000), (8000, 48000)])
def test_resample_length_and_pitch(src: int, dst: int) -> None:
    x = sine(440, 1.0, src)
    y = resample(x, src, dst)
    assert y.dtype == np.float32 and len(y) == dst
    assert abs(peak_hz(y, dst) - 440) <= 2
    assert rms(y) == pytest.approx(rms(x), rel=0.01)


def test_resample_same_rate_is_copy() -> None:
    x = sine(440, 0.1, 24000)
    y = resample(x, 24000, 24000)
    np.testing.assert_array_equal(y, x)
    assert y is not x


def test_resample_multichannel_and_empty() -> None:
    x = np.stack([sine(440, 1.0, 24000), sine(880, 1.0, 24000)], axis=1)
    y = resample(x, 24000, 16000)
    assert y.shape == (16000, 2)
    assert abs(peak_hz(y[:, 1], 16000) - 880) <= 2
    assert resample(np.zeros(0, dtype=np.float32), 24000, 16000).shape == (0,)
    with pytest.raises(InvalidRequest):
        resample(x, 0, 16000)


@pytest.mark.parametrize("speed", [0.25, 0.5, 0.8, 1.25, 2.0, 3.0, 4.0])
def test_time_stretch_duration_and_pitch(speed: float) -> None:
    rate = 24000
    x = sine(440, 1.0, rate)
    y = time_stretch(x, rate, speed)
    assert y.dtype == np.float32 and y.ndim == 1
    assert len(y) == pytest.approx(len(x) / speed, rel=0.03)
    assert abs(peak_hz(y, rate) - 440) <= 5  # pitch unchanged; plain resampling would move it to 440*speed
    assert rms(y) == pytest.approx(rms(x), rel=0.1)


def test_time_stretch_identity_and_empty() -> None:
    x = sine(440, 0.2, 16000)
    np.testing.assert_array_equal(time_stretch(x, 16000, 1.0), x)
    assert time_stretch(np.zeros(0, dtype=np.float32), 16000, 2.0).shape == (0,)


@pytest.mark.parametrize("speed", [0.0, 0.2, 4.5, -1.0, float("nan")])
def test_time_stretch_out_of_range(speed: float) -> None:
    with pytest.raises(InvalidRequest, match="speed"):
        time_stretch(sine(440, 0.1, 16000), 16000, speed)


@pytest.mark.parametrize("speed", [0.25, 0.3, 0.5, 0.9, 1.7, 2.0, 2.5, 4.0])
def test_atempo_chain_factors_in_range(speed: float) -> None:
    factors = _atempo_chain(speed)
    assert all(0.5 - 1e-9 <= f <= 2.0 + 1e-9 for f in factors)
    assert math.prod(factors) == pytest.approx(speed)
    assert len(factors) == (1 if 0.5 <= speed <= 2.0 else 2)
