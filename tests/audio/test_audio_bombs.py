"""Audio bombs against the decoder: small files that declare or expand to far more audio than the cap.

Memory is measured with tracemalloc, which sees every numpy allocation: decoding must hold about the cap's
worth of samples (refused from the header when the container declares its length), never the file's length.
"""

from __future__ import annotations

import base64
import io
import struct
import tracemalloc
from collections.abc import Callable
from fractions import Fraction

import av
import numpy as np
import pytest

from speechserve.asr.audio_input import load_audio
from speechserve.audio import StreamingResampler, decode_audio, decode_base64_audio, resample
from speechserve.audio.decode import DEFAULT_MAX_SECONDS, MAX_INPUT_RATE, MIN_INPUT_RATE
from speechserve.errors import AudioTooLong, InvalidAudio, InvalidRequest

from ._util import sine, write_with_pyav

FLAC_BLOCK = 65535  # FLAC's largest block: the fewest frames (and the fastest build) per second of silence


def silent_flac(seconds: float, rate: int, declare: bool = True) -> bytes:
    """Mono 16-bit FLAC of silence, encoded frame by frame (kilobytes for hours); ``declare=False`` zeroes
    STREAMINFO's total-samples field, so the length is unknown until decoded."""
    buf = io.BytesIO()
    with av.open(buf, "w", format="flac") as out:
        stream = out.add_stream("flac", rate=rate, layout="mono")
        stream.codec_context.format = "s16"
        stream.codec_context.options = {"frame_size": str(FLAC_BLOCK)}
        zeros, total = np.zeros((1, FLAC_BLOCK), np.int16), round(seconds * rate)
        for pts in range(0, total, FLAC_BLOCK):
            frame = av.AudioFrame.from_ndarray(zeros[:, : min(FLAC_BLOCK, total - pts)], "s16", "mono")
            frame.sample_rate, frame.pts, frame.time_base = rate, pts, Fraction(1, rate)
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    return buf.getvalue() if declare else declare_flac_samples(buf.getvalue(), 0)


def declare_flac_samples(flac: bytes, total: int) -> bytes:
    """``flac`` with STREAMINFO's 36-bit total-samples field set to ``total`` (0: unknown)."""
    assert flac[:4] == b"fLaC" and flac[4] & 0x7F == 0  # the first metadata block is STREAMINFO
    head = int.from_bytes(flac[18:26], "big") & ~((1 << 36) - 1)  # rate, channels, bits, then the count
    return flac[:18] + (head | total).to_bytes(8, "big") + flac[26:]


def pcm8_wav(rate: int, n: int) -> bytes:
    """A mono 8-bit WAV of ``n`` samples at ``rate`` Hz, header written by hand (any rate goes)."""
    fmt = struct.pack("<HHIIHH", 1, 1, rate, rate, 1, 8)
    body = b"WAVE" + b"fmt " + struct.pack("<I", 16) + fmt + b"data" + struct.pack("<I", n) + bytes([128]) * n
    return b"RIFF" + struct.pack("<I", len(body)) + body


def peak_bytes(fn: Callable[[], object]) -> tuple[int, BaseException | None]:
    """Peak traced allocation (bytes) while ``fn`` runs, and what it raised."""
    tracemalloc.start()
    tracemalloc.reset_peak()
    try:
        fn()
        error = None
    except Exception as exc:
        error = exc
    finally:
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    return peak, error


def _f32_bytes(seconds: float, rate: int) -> int:
    return int(seconds * rate) * 4


def test_a_declared_length_over_the_cap_is_refused_before_decoding() -> None:
    one_second = silent_flac(1.0, 16000)
    bomb = declare_flac_samples(one_second, 3 * 3600 * 16000)  # says 3 h, holds 1 s
    peak, error = peak_bytes(lambda: decode_audio(bomb, 16000, max_seconds=60))
    assert type(error) is AudioTooLong and error.param is None  # the over-length error, not InvalidAudio
    assert "10800.0 s long (as its container declares); the limit is 60 s" in str(error)
    assert peak < 64_000  # not one second of samples was decoded
    samples, rate = decode_audio(bomb, 16000, max_seconds=None)  # the header is only used for the cap
    assert rate == 16000 and len(samples) == 16000
    with pytest.raises(InvalidRequest, match=f"the limit is {DEFAULT_MAX_SECONDS:g} s"):
        decode_base64_audio(base64.b64encode(bomb).decode())  # TTS ref_audio: capped by default


@pytest.mark.parametrize("rate", [16000, 44100])  # as decoded, and streamed through soxr to 16 kHz
def test_decoding_stops_at_the_cap_when_the_length_is_unknown(rate: int) -> None:
    bomb = silent_flac(240.0, rate, declare=False)
    assert len(bomb) < 20_000
    peak, error = peak_bytes(lambda: decode_audio(bomb, 16000, max_seconds=2.0))
    assert type(error) is AudioTooLong and "longer than 2 s (decoding stopped there)" in str(error)
    # cap (128 kB) + one FLAC frame as float32 (256 kB) + one resampled block; all of it would be 15 MB
    assert peak < 2 * _f32_bytes(2.0, 16000) + 6 * FLAC_BLOCK * 4, peak
    full_peak, _ = peak_bytes(lambda: decode_audio(bomb, 16000, max_seconds=None))
    assert full_peak > _f32_bytes(240.0, 16000)  # the same file, uncapped: the measurement is real


def test_audio_within_the_cap_is_unchanged() -> None:
    samples, rate = decode_audio(silent_flac(3.0, 44100, declare=False), 16000, max_seconds=3.0)
    assert rate == 16000 and len(samples) == 48000  # exactly at the cap is allowed


def test_streamed_decoding_equals_one_shot_resampling(tmp_path) -> None:
    x = np.stack([sine(440, 2.5, 44100, 0.9), sine(300, 2.5, 44100, 0.7)])
    path = tmp_path / "in.flac"
    write_with_pyav(str(path), x, 44100, "flac", "flac", "s16")
    native, _ = decode_audio(path, mono=False)
    streamed, rate = decode_audio(path, 16000, mono=False)
    assert rate == 16000
    np.testing.assert_array_equal(streamed, np.clip(resample(native, 44100, 16000), -1, 1))


@pytest.mark.parametrize("rate", [1, MIN_INPUT_RATE - 1, MAX_INPUT_RATE + 1])
def test_pathological_sample_rates_are_refused(rate: int) -> None:
    wav = pcm8_wav(rate, 4000)  # 4 kB: at 1 Hz, 4000 s; 256 MB once resampled to 16 kHz
    peak, error = peak_bytes(lambda: decode_audio(wav, 16000, max_seconds=None))
    assert isinstance(error, InvalidAudio) and f"sample rate of {rate} Hz" in str(error)
    assert peak < 64_000
    if rate == 1:  # with a cap, the declared 4000 s is refused first
        with pytest.raises(InvalidRequest, match=r"4000\.0 s long"):
            decode_audio(wav, 16000)
    samples, _ = decode_audio(pcm8_wav(MIN_INPUT_RATE, 4000), 16000)  # the edge itself decodes
    assert len(samples) == 64000


def test_arrays_are_checked_before_they_are_resampled() -> None:
    slow = (np.zeros(4000, np.float32), 1)  # 4000 s at 1 Hz: 256 MB once at 16 kHz
    peak, error = peak_bytes(lambda: load_audio(slow, 16000, max_seconds=60))
    assert type(error) is AudioTooLong and "limit is 60 s" in str(error)
    assert peak < 64_000


@pytest.mark.parametrize("channels", [1, 2])
def test_bounded_pushes_equal_one_shot_resampling(channels: int) -> None:
    x = np.random.default_rng(0).uniform(-0.5, 0.5, (20_000, channels)).astype(np.float32)
    x = x[:, 0] if channels == 1 else x
    stream = StreamingResampler(MIN_INPUT_RATE, 48000, channels=channels)
    blocks = list(stream.push_bounded(x, 4096))
    # soxr releases output per ~1k input samples: a block is the bound plus at most one of those
    assert max(len(b) for b in blocks) <= 4096 + 1100 * 48
    np.testing.assert_array_equal(np.concatenate([*blocks, stream.flush()]), resample(x, 1000, 48000))
