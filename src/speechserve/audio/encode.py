"""Encoding float32 mono audio into the output formats of ``formats.py``, one-shot or streamed.

Compressed formats (mp3, opus, aac, flac) are produced by PyAV/FFmpeg: samples are converted and re-framed
by ``av.AudioResampler`` to the encoder's sample format, rate and fixed frame size, encoded and muxed into
an in-memory sink that :class:`StreamingEncoder` drains on every push. WAV and raw PCM are plain sample
dumps (plus a 44-byte RIFF header for WAV) written with numpy.
"""

from __future__ import annotations

import contextlib
import io
import os
import struct
from fractions import Fraction

import av
import numpy as np

from speechserve.audio.formats import FormatSpec, format_from_path, get_format
from speechserve.errors import InvalidRequest

_UNKNOWN_SIZE = 0xFFFFFFFF


def _as_mono_f32(samples: np.ndarray) -> np.ndarray:
    """Return ``samples`` as a contiguous 1-D float32 array with NaN/inf replaced."""
    x = np.asarray(samples, dtype=np.float32)
    if x.ndim == 2 and 1 in x.shape:
        x = x.reshape(-1)
    if x.ndim != 1:
        raise ValueError(f"expected mono samples of shape (n,), got shape {x.shape}")
    return np.ascontiguousarray(np.nan_to_num(x, nan=0.0, posinf=1.0, neginf=-1.0))


def _to_s16le(x: np.ndarray) -> bytes:
    """Float samples → int16 little-endian bytes, clipped to [-1, 1] and scaled by 32767."""
    return (np.clip(x, -1.0, 1.0) * 32767.0).round().astype("<i2").tobytes()


def _raw_bytes(spec: FormatSpec, x: np.ndarray) -> bytes:
    """Headerless sample bytes of ``x`` for ``wav``/``pcm`` (s16le) or ``pcm_f32le``."""
    if spec.name == "pcm_f32le":
        return x.astype("<f4").tobytes()
    return _to_s16le(x)


def _wav_header(sample_rate: int, data_bytes: int | None) -> bytes:
    """Canonical 44-byte RIFF/WAVE header for mono s16le; ``data_bytes=None`` writes 0xFFFFFFFF sizes."""
    if data_bytes is None:
        riff_size = data_size = _UNKNOWN_SIZE
    else:
        data_size, riff_size = data_bytes, min(36 + data_bytes, _UNKNOWN_SIZE)
    fmt_chunk = struct.pack("<HHIIHH", 1, 1, sample_rate, sample_rate * 2, 2, 16)
    return (
        b"RIFF"
        + struct.pack("<I", riff_size)
        + b"WAVEfmt "
        + struct.pack("<I", 16)
        + fmt_chunk
        + b"data"
        + struct.pack("<I", data_size)
    )


class _Sink:
    """Write-only, non-seekable file-like object collecting what the muxer writes."""

    def __init__(self) -> None:
        self._buf = bytearray()

    def write(self, data: bytes) -> int:
        self._buf += data
        return len(data)

    def flush(self) -> None:
        pass

    def drain(self) -> bytes:
        out = bytes(self._buf)
        self._buf.clear()
        return out


def _codec_rate(spec: FormatSpec, sample_rate: int) -> int:
    """Sample rate to run ``spec``'s encoder at: fixed, the input rate, or the nearest supported one."""
    if spec.codec_rate is not None:
        return spec.codec_rate
    rates = av.Codec(spec.codec, "w").audio_rates
    if not rates or sample_rate in rates:
        return sample_rate
    higher = [r for r in rates if r >= sample_rate]
    return min(higher) if higher else max(rates)


class _PyAVWriter:
    """An FFmpeg muxer + encoder + resampler writing into ``file`` (a sink or a seekable BytesIO)."""

    def __init__(self, spec: FormatSpec, sample_rate: int, file: _Sink | io.BytesIO) -> None:
        self.rate_in = sample_rate
        self.rate = _codec_rate(spec, sample_rate)
        options = {"flush_packets": "1", **dict(spec.muxer_options)}
        self.container = av.open(file, "w", format=spec.container, container_options=options)
        self.stream = self.container.add_stream(spec.codec, rate=self.rate, layout="mono")
        ctx = self.stream.codec_context
        ctx.format = spec.sample_fmt
        if spec.bit_rate:
            ctx.bit_rate = spec.bit_rate
        ctx.open()  # fixes frame_size, which the resampler below must know
        self.resampler = av.AudioResampler(
            format=spec.sample_fmt, layout="mono", rate=self.rate, frame_size=ctx.frame_size or None
        )
        self.container.start_encoding()  # writes the container header now
        self._pts_in = 0
        self._pts_out = 0

    def _encode(self, frames: list[av.AudioFrame] | None) -> None:
        for frame in frames if frames is not None else [None]:
            if frame is not None:
                frame.pts, frame.time_base = self._pts_out, Fraction(1, self.rate)
                self._pts_out += frame.samples
            for packet in self.stream.encode(frame):
                self.container.mux(packet)

    def write(self, x: np.ndarray) -> None:
        """Encode and mux the samples of ``x`` (1-D float32) that fill whole encoder frames."""
        if x.size == 0:
            return
        frame = av.AudioFrame.from_ndarray(x[None, :], format="flt", layout="mono")
        frame.sample_rate = self.rate_in
        frame.pts, frame.time_base = self._pts_in, Fraction(1, self.rate_in)
        self._pts_in += x.size
        self._encode(self.resampler.resample(frame))

    def close(self) -> None:
        """Flush resampler and encoder, write the trailer and close the container."""
        self._encode(self.resampler.resample(None))
        self._encode(None)
        self.container.close()


class StreamingEncoder:
    """Incrementally encode float32 mono audio; each call returns the bytes that are ready.

    The concatenation of every :meth:`push` result followed by :meth:`finish` is a complete file of
    format ``fmt``. Streamed WAV carries 0xFFFFFFFF ("unknown") RIFF and data sizes; streamed mp3/flac
    lack the seek-back fix-ups (Xing/LAME gapless info, FLAC total-sample count) a one-shot file has.
    """

    def __init__(self, fmt: str, sample_rate: int) -> None:
        """Start a stream of format ``fmt`` for input at ``sample_rate`` Hz (raises InvalidRequest)."""
        self.spec = get_format(fmt)
        if int(sample_rate) <= 0:
            raise InvalidRequest(f"sample_rate must be positive, got {sample_rate}")
        self.fmt = self.spec.name
        self.sample_rate = int(sample_rate)
        self._finished = False
        self._sink: _Sink | None = None
        self._writer: _PyAVWriter | None = None
        self._pending = b""
        if self.spec.name == "wav":
            self._pending = _wav_header(self.sample_rate, None)
        elif not self.spec.raw:
            self._sink = _Sink()
            self._writer = _PyAVWriter(self.spec, self.sample_rate, self._sink)

    def _take(self) -> bytes:
        out = self._pending + (self._sink.drain() if self._sink is not None else b"")
        self._pending = b""
        return out

    def push(self, samples: np.ndarray) -> bytes:
        """Add float32 mono samples in [-1, 1]; return the encoded bytes available now (maybe ``b""``)."""
        if self._finished:
            raise RuntimeError("StreamingEncoder.push() called after finish()")
        x = _as_mono_f32(samples)
        if self._writer is not None:
            self._writer.write(x)
            return self._take()
        return self._take() + _raw_bytes(self.spec, x)

    def finish(self) -> bytes:
        """Flush the encoder and return the remaining bytes (trailer included). Idempotent."""
        if self._finished:
            return b""
        self._finished = True
        if self._writer is not None:
            self._writer.close()
            self._writer = None
        return self._take()

    def close(self) -> None:
        """Abandon the stream (e.g. the client went away): release the encoder, discard pending bytes."""
        if self._writer is not None:
            with contextlib.suppress(av.FFmpegError):
                self._writer.container.close()
            self._writer = None
        self._finished = True
        self._pending = b""
        if self._sink is not None:
            self._sink.drain()


def encode_audio(samples: np.ndarray, sample_rate: int, fmt: str) -> bytes:
    """Encode a whole float32 mono signal into format ``fmt`` and return the file's bytes.

    Unlike streaming, WAV gets exact RIFF/data sizes and mp3/flac are muxed into a seekable buffer, so
    their headers carry the final length (gapless mp3 decodes to the exact sample count).
    """
    spec = get_format(fmt)
    if int(sample_rate) <= 0:
        raise InvalidRequest(f"sample_rate must be positive, got {sample_rate}")
    x = _as_mono_f32(samples)
    if spec.name == "wav":
        data = _raw_bytes(spec, x)
        return _wav_header(int(sample_rate), len(data)) + data
    if spec.raw:
        return _raw_bytes(spec, x)
    buf = io.BytesIO()
    writer = _PyAVWriter(spec, int(sample_rate), buf)
    writer.write(x)
    writer.close()
    return buf.getvalue()


def write_audio_file(path: str | os.PathLike[str], samples: np.ndarray, sample_rate: int) -> str:
    """Encode ``samples`` in the format implied by ``path``'s extension, write the file, return the format."""
    fmt = format_from_path(path)
    data = encode_audio(samples, sample_rate, fmt)
    with open(path, "wb") as f:
        f.write(data)
    return fmt
