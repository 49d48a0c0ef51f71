"""Signal generators and measurements shared by the audio tests (all audio is synthesised here)."""

from __future__ import annotations

from fractions import Fraction

import av
import numpy as np


def sine(freq: float, seconds: float, rate: int, amp: float = 0.5) -> np.ndarray:
    """A float32 sine wave."""
    t = np.arange(round(seconds * rate)) / rate
    return (amp * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def peak_hz(x: np.ndarray, rate: int) -> float:
    """Frequency of the largest FFT bin of a (Hann-windowed) mono signal."""
    x = np.asarray(x, dtype=np.float64)
    spectrum = np.abs(np.fft.rfft(x * np.hanning(len(x))))
    return float(np.argmax(spectrum) * rate / len(x))


def rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(np.asarray(x, dtype=np.float64)))))


def write_with_pyav(dest, x: np.ndarray, rate: int, container: str, codec: str, sample_fmt: str) -> None:
    """Encode ``x`` (shape (channels, n), float32) with PyAV directly, independent of speechserve's encoder."""
    channels = x.shape[0]
    layout = "mono" if channels == 1 else "stereo"
    out = av.open(dest, "w", format=container)
    stream = out.add_stream(codec, rate=rate, layout=layout)
    stream.codec_context.format = sample_fmt
    stream.codec_context.open()
    resampler = av.AudioResampler(
        format=sample_fmt, layout=layout, rate=rate, frame_size=stream.codec_context.frame_size or None
    )
    frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(x.T).reshape(1, -1), format="flt", layout=layout)
    frame.sample_rate = rate
    pts = 0
    for f in [*resampler.resample(frame), *resampler.resample(None), None]:
        if f is not None:
            f.pts, f.time_base = pts, Fraction(1, rate)
            pts += f.samples
        for packet in stream.encode(f):
            out.mux(packet)
    out.close()
