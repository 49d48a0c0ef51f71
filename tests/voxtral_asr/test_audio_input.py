"""Audio files the tests write in several containers, codecs, sample rates and channel counts, decoded into
the 16 kHz mono input of the log-mel front end."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
import torch

from speechserve.asr.audio_input import load_audio
from speechserve.audio.mel import chunked_log_mel, mel_filters, pad_to_chunks
from speechserve.errors import InvalidRequest

# name: (container, codec, sample format, extension, sample rates the encoder accepts)
WRITERS = {
    "wav": ("wav", "pcm_s16le", "s16", "wav", (8000, 16000, 22050, 44100, 48000)),
    "flac": ("flac", "flac", "s16", "flac", (8000, 16000, 22050, 44100, 48000)),
    "mp3": ("mp3", "libmp3lame", "fltp", "mp3", (8000, 16000, 22050, 44100, 48000)),
    "opus": ("ogg", "libopus", "flt", "ogg", (8000, 16000, 48000)),
    "m4a": ("mp4", "aac", "fltp", "m4a", (22050, 44100)),
}
CASES = [(name, rate, ch) for name, (*_, rates) in WRITERS.items() for rate in rates for ch in (1, 2)]
TONE_HZ, SECONDS = 440.0, 1.0


def _write(path: Path, x: np.ndarray, rate: int, name: str) -> None:
    """Encode ``x`` [channels, n] float32 with PyAV directly (independent of speechserve's encoders)."""
    container, codec, sample_fmt, _, _ = WRITERS[name]
    layout = "mono" if x.shape[0] == 1 else "stereo"
    with av.open(str(path), "w", format=container) as out:
        stream = out.add_stream(codec, rate=rate, layout=layout)
        stream.codec_context.format = sample_fmt
        stream.codec_context.open()
        frame_size = stream.codec_context.frame_size or None
        resampler = av.AudioResampler(format=sample_fmt, layout=layout, rate=rate, frame_size=frame_size)
        frame = av.AudioFrame.from_ndarray(
            np.ascontiguousarray(x.T).reshape(1, -1), format="flt", layout=layout
        )
        frame.sample_rate = rate
        pts = 0
        for f in [*resampler.resample(frame), *resampler.resample(None), None]:
            if f is not None:
                f.pts, f.time_base = pts, Fraction(1, rate)
                pts += f.samples
            for packet in stream.encode(f):
                out.mux(packet)


def _tone(rate: int, channels: int) -> np.ndarray:
    t = np.arange(int(SECONDS * rate)) / rate
    left = 0.5 * np.sin(2 * np.pi * TONE_HZ * t)
    return np.stack([left, 0.3 * np.sin(2 * np.pi * TONE_HZ * t)][:channels]).astype(np.float32)


@pytest.mark.parametrize(("name", "rate", "channels"), CASES)
def test_file_reaches_the_front_end_at_16_khz(tmp_path: Path, name: str, rate: int, channels: int) -> None:
    path = tmp_path / f"in.{WRITERS[name][3]}"
    _write(path, _tone(rate, channels), rate, name)
    samples = load_audio(path.read_bytes() if channels == 2 else path, 16000)
    assert samples.dtype == np.float32 and samples.ndim == 1
    assert abs(len(samples) / 16000 - SECONDS) <= (0.1 if name in ("m4a", "opus") else 0.06)
    middle = samples[len(samples) // 4 : 3 * len(samples) // 4]
    amp = 0.5 if channels == 1 else 0.4  # the mono mix-down is the channel mean
    assert np.sqrt(np.mean(middle.astype(np.float64) ** 2)) == pytest.approx(amp / np.sqrt(2), rel=0.1)
    mel = chunked_log_mel(torch.from_numpy(pad_to_chunks(samples)))
    assert mel.shape == (1, 128, 3000)
    loudest = int(mel[0, :, 10:90].mean(dim=1).argmax())  # frames inside the first second
    assert loudest == int(np.argmax(mel_filters()[11]))  # 440 Hz is FFT bin 11 (40 Hz spacing)


def test_corrupt_and_truncated_files(tmp_path: Path) -> None:
    path = tmp_path / "in.flac"
    _write(path, _tone(16000, 1), 16000, "flac")
    with pytest.raises(InvalidRequest):
        load_audio(b"RIFF\x00\x00\x00\x00WAVEjunk", 16000)
    with pytest.raises(InvalidRequest):
        load_audio(path.read_bytes()[:40], 16000)
    with pytest.raises(FileNotFoundError):
        load_audio(tmp_path / "missing.wav", 16000)
