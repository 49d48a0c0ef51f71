"""Decoding audio input (bytes, files, base64 / data URLs) into float32 sample arrays, within a duration cap.

Anything FFmpeg can demux and decode is accepted (wav, flac, mp3, ogg/opus, aac, m4a, webm, ...). Frames are
decoded one at a time, converted to float32 in [-1, 1], optionally mixed down to mono and resampled with soxr
as they arrive. The cap (``max_seconds``) is enforced twice: a container that declares a longer duration is
refused before any frame is decoded, and decoding stops as soon as the output passes the cap; with input rates
bounded too, memory follows the cap, never what a few kilobytes of FLAC silence or a 1 Hz header expand to.
Every way a caller's input can be unusable surfaces as :class:`speechserve.errors.InvalidRequest` (its
subclass :class:`~speechserve.errors.InvalidAudio` when the bytes are not usable audio).
"""

from __future__ import annotations

import base64
import binascii
import io
import math
import os
import re

import av
import numpy as np

from speechserve.audio.resample import StreamingResampler
from speechserve.errors import AudioTooLong, InvalidAudio, InvalidRequest

DEFAULT_MAX_SECONDS = 1800.0
"""Longest audio :func:`decode_audio` returns unless told otherwise (30 min, the server's
``max_audio_seconds`` default); ``max_seconds=None`` lifts the cap."""
MIN_INPUT_RATE = 1_000
"""Lowest input sample rate decoded (Hz). Below it no speech band survives, and soxr would buffer ~1k input
samples before its first output: at 1 Hz that is 16 million output samples at 16 kHz in one block."""
MAX_INPUT_RATE = 768_000
"""Highest input sample rate decoded (Hz): the top PCM rate in use. Higher only makes a file cost more to
decode than its duration says."""
_BATCH_IN = 1 << 15
"""Decoded samples gathered before one soxr call: codec frames are small (1152 for MP3), calls are not free."""
_BLOCK_OUT = 1 << 16
"""Resampled samples produced per soxr call (about): how far past the cap decoding can run before it stops."""

# Full-scale divisor and offset of FFmpeg's integer sample formats (planar variants end in "p").
_INT_SCALE = {"u8": (128.0, 128.0), "s16": (32768.0, 0.0), "s32": (2147483648.0, 0.0), "s64": (2.0**63, 0.0)}
INPUT_FORMATS = (
    "aac", "aif", "aiff", "amr", "caf", "flac", "m4a", "mka", "mkv", "mov", "mp3", "mp4", "mpeg", "mpga",
    "oga", "ogg", "opus", "wav", "weba", "webm", "wma",
)  # fmt: skip
"""File types (extensions, and ``input_audio.format`` names) taken as audio; anything FFmpeg decodes works,
these name the usual ones (OpenAI's list plus common audio containers)."""
_DATA_URL = re.compile(r"^data:(?P<mime>[^,]*?)(?P<b64>;base64)?,(?P<data>.*)$", re.IGNORECASE | re.DOTALL)


def audio_too_long(
    max_seconds: float, seconds: float | None = None, declared: bool = False, param: str | None = None
) -> AudioTooLong:
    """The over-length error. ``seconds`` None: decoding stopped at the cap, the full length is unknown."""
    if seconds is None:
        length = f"audio is longer than {max_seconds:g} s (decoding stopped there)"
    else:
        length = f"audio is {seconds:.1f} s long" + (" (as its container declares)" if declared else "")
    return AudioTooLong(f"{length}; the limit is {max_seconds:g} s", param)


def _frame_to_float(frame: av.AudioFrame) -> np.ndarray:
    """Return a decoded frame as float32 of shape ``(channels, samples)``.

    Integers are scaled in float32: exact for u8/s16, and s32's single rounding is the float64 route's."""
    channels = len(frame.layout.channels)
    arr = frame.to_ndarray()
    if not frame.format.is_planar:
        arr = arr.reshape(-1, channels).T
    name = frame.format.name.rstrip("p")
    if name in _INT_SCALE:
        scale, offset = _INT_SCALE[name]
        x = arr.astype(np.float32)
        if offset:
            x -= np.float32(offset)
        x /= np.float32(scale)
        return x
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


def _check_rate(rate: int) -> None:
    if not MIN_INPUT_RATE <= rate <= MAX_INPUT_RATE:
        raise InvalidAudio(
            f"Audio input has a sample rate of {rate} Hz; {MIN_INPUT_RATE}-{MAX_INPUT_RATE} Hz is supported"
        )


def _declared_seconds(container: av.container.InputContainer, stream: av.audio.AudioStream) -> float | None:
    """The duration the container states (header, index or last timestamp), before decoding; None if none."""
    if stream.duration and stream.time_base:
        return float(stream.duration * stream.time_base)
    if container.duration:
        return container.duration / av.time_base
    return None


class _Collector:
    """Decoded frames → float32 blocks ``(n, channels)`` at one output rate: mono mix-down, streamed soxr
    resampling (in batches of frames), clipping, and the cap checked per block, so at most the cap plus one
    batch and one block is held. Lifetime: one decode."""

    def __init__(self, target_rate: int | None, mono: bool, max_seconds: float | None) -> None:
        self.target_rate, self.mono, self.max_seconds = target_rate, mono, max_seconds
        self.out_rate: int | None = None
        self.limit = math.inf  # output samples allowed, known with the output rate
        self.channels: int | None = None
        self.blocks: list[np.ndarray] = []
        self.n_out = 0
        self._in_rate: int | None = None
        self._resampler: StreamingResampler | None = None
        self._pending: list[np.ndarray] = []  # decoded at the input rate, not yet resampled
        self._n_pending = 0

    def add(self, frame: av.AudioFrame) -> None:
        x = _frame_to_float(frame)
        if self.mono:
            x = x.mean(axis=0, keepdims=True)
        if self.channels is None:
            self.channels = x.shape[0]
        elif x.shape[0] != self.channels:
            raise InvalidRequest("Audio input changes its channel count mid-stream; decode it as mono")
        if frame.sample_rate != self._in_rate:
            self._drain()  # a rate change mid-stream: the old rate's samples first
            self._set_rate(frame.sample_rate)
        self._pending.append(x.T)
        self._n_pending += x.shape[1]
        if self._n_pending >= _BATCH_IN:
            self._drain()

    def _drain(self) -> None:
        if not self._pending:
            return
        x = self._pending[0] if len(self._pending) == 1 else np.concatenate(self._pending)
        self._pending, self._n_pending = [], 0
        if self._resampler is None:
            self._append(x)
            return
        for block in self._resampler.push_bounded(x, _BLOCK_OUT):
            self._append(block)

    def _set_rate(self, rate: int) -> None:
        _check_rate(rate)
        if self.out_rate is None:
            self.out_rate = self.target_rate or rate
            if self.max_seconds is not None:
                self.limit = self.max_seconds * self.out_rate
        self._end_resampler()
        self._in_rate = rate
        if rate != self.out_rate:
            self._resampler = StreamingResampler(rate, self.out_rate, channels=self.channels or 1)

    def _end_resampler(self) -> None:
        if self._resampler is not None:
            self._append(self._resampler.flush())
            self._resampler = None

    def _append(self, block: np.ndarray) -> None:
        if len(block) == 0:
            return
        block = block.reshape(len(block), -1)
        np.clip(block, -1.0, 1.0, out=block)  # after resampling: soxr can ring
        self.blocks.append(block)
        self.n_out += len(block)
        if self.n_out > self.limit:
            self.blocks.clear()
            raise audio_too_long(self.max_seconds)

    def finish(self) -> tuple[np.ndarray, int] | None:
        """``(samples, rate)`` as :func:`decode_audio` returns them; None when no sample was decoded."""
        self._drain()
        self._end_resampler()
        if self.n_out == 0 or self.out_rate is None:
            return None
        samples = np.concatenate(self.blocks)
        self.blocks.clear()
        return np.ascontiguousarray(samples[:, 0] if self.mono else samples), self.out_rate


def decode_audio(
    data: bytes | str | os.PathLike[str],
    target_rate: int | None = None,
    mono: bool = True,
    *,
    max_seconds: float | None = DEFAULT_MAX_SECONDS,
) -> tuple[np.ndarray, int]:
    """Decode an audio file (its bytes or its path) into float32 samples in [-1, 1].

    Returns ``(samples, sample_rate)``: ``samples`` has shape ``(n,)`` when ``mono`` (channels
    averaged) and ``(n, channels)`` otherwise; ``sample_rate`` is ``target_rate`` when given (soxr HQ
    resampling) or the stream's own rate. Audio longer than ``max_seconds`` raises :class:`InvalidRequest`
    (before decoding when the container declares the length; else once decoding passes the cap); a
    sample rate outside ``MIN_INPUT_RATE``..``MAX_INPUT_RATE``, empty, corrupt or audio-less input raises
    :class:`InvalidAudio`; a missing path raises :class:`FileNotFoundError`.
    """
    if target_rate is not None and target_rate <= 0:
        raise InvalidRequest(f"target_rate must be positive, got {target_rate}")
    container = _open(data)
    collector = _Collector(target_rate, mono, max_seconds)
    errors: list[str] = []
    try:
        if not container.streams.audio:
            raise InvalidAudio("Audio input has no audio stream")
        stream = container.streams.audio[0]
        declared = _declared_seconds(container, stream)
        if max_seconds is not None and declared is not None and declared > max_seconds:
            raise audio_too_long(max_seconds, declared, declared=True)
        if stream.rate:
            _check_rate(stream.rate)
        for packet in container.demux(stream):
            try:
                frames = packet.decode()
            except av.FFmpegError as exc:  # a damaged packet: skip it, as ffmpeg does
                errors.append(_ffmpeg_reason(exc))
                continue
            for frame in frames:
                collector.add(frame)
        result = collector.finish()
    except av.FFmpegError as exc:
        raise InvalidAudio(f"Could not decode audio input: {_ffmpeg_reason(exc)}") from exc
    finally:
        container.close()
    if result is None:
        if errors:
            raise InvalidAudio(f"Could not decode audio input: {errors[0]}")
        raise InvalidAudio("Audio input contains no audio samples")
    return result


def decode_base64_audio(
    s: str,
    target_rate: int | None = None,
    mono: bool = True,
    *,
    max_seconds: float | None = DEFAULT_MAX_SECONDS,
) -> tuple[np.ndarray, int]:
    """Decode base64 audio, given raw or as a ``data:audio/...;base64,...`` URL; see :func:`decode_audio`
    (``max_seconds`` caps it the same way).

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
    return decode_audio(raw, target_rate=target_rate, mono=mono, max_seconds=max_seconds)


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
