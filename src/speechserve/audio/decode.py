"""Decoding audio input (bytes, files, base64 / data URLs) into float32 sample arrays.

Anything FFmpeg can demux and decode is accepted (wav, flac, mp3, ogg/opus, aac, m4a, webm, ...). Decoded
frames are converted to float32 in [-1, 1], optionally mixed down to mono and resampled with soxr.
Every way a caller's input can be unusable surfaces as :class:`speechserve.errors.InvalidRequest` (its
subclass :class:`~speechserve.errors.InvalidAudio` when the bytes are not usable audio).
"""

from __future__ import annotations

import base64
import binascii
import io
import os
import re

import av
import numpy as np

from speechserve.audio.resample import resample
from speechserve.errors import InvalidAudio, InvalidRequest

# Full-scale divisor and offset of FFmpeg's integer sample formats (planar variants end in "p").
_INT_SCALE = {"u8": (128.0, 128.0), "s16": (32768.0, 0.0), "s32": (2147483648.0, 0.0), "s64": (2.0**63, 0.0)}
INPUT_FORMATS = (
    "aac", "aif", "aiff", "amr", "caf", "flac", "m4a", "mka", "mkv", "mov", "mp3", "mp4", "mpeg", "mpga",
    "oga", "ogg", "opus", "wav", "weba", "webm", "wma",
)  # fmt: skip
"""File types (extensions, and ``input_audio.format`` names) taken as audio; anything FFmpeg decodes works,
these name the usual ones (OpenAI's list plus common audio containers)."""
_DATA_URL = re.compile(r"^data:(?P<mime>[^,]*?)(?P<b64>;base64)?,(?P<data>.*)$", re.IGNORECASE | re.DOTALL)


def _frame_to_float(frame: av.AudioFrame) -> np.ndarray:
    """Return a decoded frame as float32 of shape ``(channels, samples)``."""
    channels = len(frame.layout.channels)
    arr = frame.to_ndarray()
    if not frame.format.is_planar:
        arr = arr.reshape(-1, channels).T
    name = frame.format.name.rstrip("p")
    if name in _INT_SCALE:
        scale, offset = _INT_SCALE[name]
        return ((arr.astype(np.float64) - offset) / scale).astype(np.float32)
    return arr.astype(np.float32)


def _ffmpeg_reason(exc: Exception) -> str:
    return getattr(exc, "strerror", None) or str(exc) or type(exc).__name__


def _open(data: bytes | str | os.PathLike[str]) -> av.container.InputContainer:
    if isinstance(data, (bytes, bytearray, memoryview)):
        if len(data) == 0:
            raise InvalidAudio("Audio input is empty")
        source: io.BytesIO | str = io.BytesIO(bytes(data))
    else:
        source = os.fspath(data)
        if not os.path.isfile(source):
            raise FileNotFoundError(f"No such audio file: {source!r}")
        if os.path.getsize(source) == 0:
            raise InvalidAudio(f"Audio file {source!r} is empty")
    try:
        return av.open(source, "r", metadata_errors="replace")
    except av.FFmpegError as exc:
        raise InvalidAudio(f"Could not decode audio input: {_ffmpeg_reason(exc)}") from exc


def decode_audio(
    data: bytes | str | os.PathLike[str], target_rate: int | None = None, mono: bool = True
) -> tuple[np.ndarray, int]:
    """Decode an audio file (its bytes or its path) into float32 samples in [-1, 1].

    Returns ``(samples, sample_rate)``: ``samples`` has shape ``(n,)`` when ``mono`` (channels
    averaged) and ``(n, channels)`` otherwise; ``sample_rate`` is ``target_rate`` when given (soxr HQ
    resampling) or the stream's own rate. Empty, corrupt or audio-less input raises
    :class:`InvalidRequest`; a missing path raises :class:`FileNotFoundError`.
    """
    if target_rate is not None and target_rate <= 0:
        raise InvalidRequest(f"target_rate must be positive, got {target_rate}")
    container = _open(data)
    chunks: list[np.ndarray] = []
    rate: int | None = None
    errors: list[str] = []
    try:
        if not container.streams.audio:
            raise InvalidAudio("Audio input has no audio stream")
        stream = container.streams.audio[0]
        for packet in container.demux(stream):
            try:
                frames = packet.decode()
            except av.FFmpegError as exc:  # a damaged packet: skip it, as ffmpeg does
                errors.append(_ffmpeg_reason(exc))
                continue
            for frame in frames:
                x = _frame_to_float(frame)
                if mono:
                    x = x.mean(axis=0, keepdims=True)
                if rate is None:
                    rate = frame.sample_rate
                elif frame.sample_rate != rate:
                    x = resample(x.T, frame.sample_rate, rate).T
                if chunks and x.shape[0] != chunks[0].shape[0]:
                    raise InvalidRequest(
                        "Audio input changes its channel count mid-stream; decode it as mono"
                    )
                chunks.append(x)
    except av.FFmpegError as exc:
        raise InvalidAudio(f"Could not decode audio input: {_ffmpeg_reason(exc)}") from exc
    finally:
        container.close()

    total = sum(c.shape[1] for c in chunks)
    if rate is None or total == 0:
        if errors:
            raise InvalidAudio(f"Could not decode audio input: {errors[0]}")
        raise InvalidAudio("Audio input contains no audio samples")
    samples = np.concatenate(chunks, axis=1).T
    if target_rate is not None and target_rate != rate:
        samples = resample(samples, rate, target_rate)
        rate = target_rate
    samples = np.clip(samples[:, 0] if mono else samples, -1.0, 1.0)  # after resampling: soxr can ring
    return np.ascontiguousarray(samples, dtype=np.float32), int(rate)


def decode_base64_audio(s: str, target_rate: int | None = None, mono: bool = True) -> tuple[np.ndarray, int]:
    """Decode base64 audio, given raw or as a ``data:audio/...;base64,...`` URL; see :func:`decode_audio`.

    Malformed base64 or a non-base64 data URL raises :class:`InvalidRequest` (``param`` unset: the caller
    knows which request field it came from).
    """
    if not isinstance(s, str):
        raise InvalidRequest("Base64 audio must be a string")
    payload = s.strip()
    if payload[:5].lower() == "data:":
        m = _DATA_URL.match(payload)
        if m is None:
            raise InvalidRequest("Malformed data URL for audio")
        if not m.group("b64"):
            raise InvalidRequest("Only base64-encoded data URLs are supported for audio")
        payload = m.group("data")
    payload = "".join(payload.split())
    if not payload:
        raise InvalidAudio("Audio input is empty")
    alphabet = b"-_" if ("-" in payload or "_" in payload) else None
    payload += "=" * (-len(payload) % 4)
    try:
        raw = base64.b64decode(payload, altchars=alphabet, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise InvalidRequest(f"Audio input is not valid base64: {exc}") from exc
    return decode_audio(raw, target_rate=target_rate, mono=mono)


def decode_pcm(data: bytes, fmt: str = "pcm") -> np.ndarray:
    """Interpret headerless ``pcm`` (s16le) or ``pcm_f32le`` bytes as a float32 mono array."""
    if fmt == "pcm":
        if len(data) % 2:
            raise InvalidRequest("s16le PCM data must have an even number of bytes")
        return (np.frombuffer(data, dtype="<i2").astype(np.float32) / 32768.0).astype(np.float32)
    if fmt == "pcm_f32le":
        if len(data) % 4:
            raise InvalidRequest("f32le PCM data length must be a multiple of 4 bytes")
        return np.frombuffer(data, dtype="<f4").astype(np.float32)
    raise InvalidRequest(f"decode_pcm handles 'pcm' and 'pcm_f32le', not {fmt!r}")
