"""Turn whatever a caller passes as audio into 16 kHz mono float32 samples, within the duration cap.

Encoded files (bytes or a path: wav, flac, mp3, ogg/opus, m4a/aac, webm — anything FFmpeg reads) are decoded
with PyAV; arrays come as ``(samples, sample_rate)``. Channels are averaged and the rate converted with soxr.
The cap is applied before the big allocation: files are refused on their declared length or as decoding
passes it (:func:`speechserve.audio.decode.decode_audio`), arrays before they are resampled.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np

from speechserve.audio.decode import audio_too_long, decode_audio, decode_base64_audio
from speechserve.audio.resample import resample
from speechserve.errors import InvalidAudio, InvalidRequest

AudioInput = bytes | bytearray | str | os.PathLike | tuple[np.ndarray, int]
"""An encoded file's bytes, a path to one, or ``(samples, sample_rate)`` with samples [n] or 2-D with the
channels on the shorter axis ([n, channels] or [channels, n]); integer samples are scaled to [-1, 1)."""


def _from_array(
    samples: np.ndarray, rate: int, target_rate: int, max_seconds: float | None, param: str
) -> np.ndarray:
    x = np.asarray(samples)
    if np.issubdtype(x.dtype, np.integer):  # full scale → [-1, 1): int16 / 32768, (uint8 − 128) / 128
        info = np.iinfo(x.dtype)
        half = (int(info.max) - int(info.min) + 1) / 2
        x = (x.astype(np.float64) - (int(info.min) + half)) / half
    if x.ndim == 2:
        x = x.mean(axis=int(np.argmin(x.shape)))  # channels are the shorter axis
    if x.ndim != 1:
        raise InvalidRequest(f"audio samples must have shape [n] or [n, channels], got {x.shape}", param)
    x = x.astype(np.float32)
    if not np.isfinite(x).all():
        raise InvalidRequest("audio samples contain NaN or infinity", param)
    if not isinstance(rate, (int, np.integer)) or rate <= 0:
        raise InvalidRequest(f"sample rate must be a positive integer, got {rate!r}", param)
    check_duration(len(x) / int(rate), max_seconds, param)  # before resampling: 1 Hz → 16 kHz is 16000×
    return resample(x, int(rate), target_rate)


def load_audio(
    audio: AudioInput, sample_rate: int, max_seconds: float | None = None, param: str = "file"
) -> np.ndarray:
    """Decode ``audio`` to mono float32 at ``sample_rate``; InvalidRequest when empty, corrupt or longer than
    ``max_seconds`` (None: no cap), found without holding more than the cap's worth of samples.

    A path that does not exist raises FileNotFoundError.
    """
    if isinstance(audio, tuple):
        if len(audio) != 2:
            raise InvalidRequest("pass array audio as (samples, sample_rate)", param)
        samples = _from_array(audio[0], audio[1], sample_rate, max_seconds, param)
    elif isinstance(audio, np.ndarray):
        raise InvalidRequest("a bare array has no sample rate: pass (samples, sample_rate)", param)
    elif isinstance(audio, (bytes, bytearray, memoryview, str, os.PathLike)):
        with _blame(param):
            samples, _ = decode_audio(audio, target_rate=sample_rate, max_seconds=max_seconds)
    else:
        raise InvalidRequest(f"unsupported audio input of type {type(audio).__name__}", param)
    check_duration(len(samples) / sample_rate, max_seconds, param)
    return samples


def load_base64_audio(data: str, sample_rate: int, max_seconds: float | None, param: str) -> np.ndarray:
    """Decode base64 audio (raw or a ``data:`` URL) like :func:`load_audio`."""
    with _blame(param):
        samples, _ = decode_base64_audio(data, target_rate=sample_rate, max_seconds=max_seconds)
    check_duration(len(samples) / sample_rate, max_seconds, param)
    return samples


@contextmanager
def _blame(param: str) -> Iterator[None]:
    """Name the request field in decoding errors that do not name one."""
    try:
        yield
    except InvalidRequest as exc:
        exc.param = exc.param or param
        raise


def check_duration(seconds: float, max_seconds: float | None, param: str = "file") -> None:
    """InvalidAudio for empty audio, InvalidRequest for audio longer than ``max_seconds``."""
    if seconds <= 0:
        raise InvalidAudio("Audio input contains no audio samples", param)
    if max_seconds is not None and seconds > max_seconds:
        raise audio_too_long(max_seconds, seconds, param=param)
