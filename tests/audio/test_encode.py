"""Tests for speechserve.audio.encode: one-shot and streamed encoding decode back to the same audio.

Duration tolerances: lossless formats must round-trip sample-exact. One-shot mp3 and Ogg Opus carry their
encoder delay/padding (LAME gapless header, Opus pre-skip + end granule) and decode to the exact length;
streamed mp3 cannot write the LAME gapless header (FFmpeg writes it only into seekable output), so it
decodes with the encoder delay plus end padding: 1152 to 1727 samples long (< 72 ms at 24 kHz). ADTS AAC has no way to signal priming/padding, so it may be up to two 1024-sample AAC
frames (85 ms at 24 kHz) long.
"""

from __future__ import annotations

import struct

import numpy as np
import pytest

from speechserve.audio import (
    AUDIO_FORMATS,
    StreamingEncoder,
    decode_audio,
    decode_pcm,
    encode_audio,
    write_audio_file,
)
from speechserve.errors import InvalidRequest

from ._util import peak_hz, rms, sine

RATE = 24000
LOSSY = ("mp3", "opus", "aac")
RAW = ("pcm", "pcm_f32le")
TOLERANCE_S = {"mp3": 0.05, "opus": 0.05, "aac": 2 * 1024 / RATE}
STREAM_TOLERANCE_S = {**TOLERANCE_S, "mp3": 3 * 576 / RATE}
INT16_STEP = 1 / 32767


def _decode(data: bytes, fmt: str) -> tuple[np.ndarray, int]:
    if fmt in RAW:
        return decode_pcm(data, fmt), RATE
    return decode_audio(data, target_rate=RATE)


@pytest.mark.parametrize("fmt", AUDIO_FORMATS)
def test_one_shot_round_trip(fmt: str) -> None:
    x = sine(440, 1.5, RATE)
    data = encode_audio(x, RATE, fmt)
    y, rate = _decode(data, fmt)
    assert rate == RATE
    assert y.ndim == 1 and y.dtype == np.float32
    if fmt in LOSSY:
        assert 0 <= (len(y) - len(x)) / RATE <= TOLERANCE_S[fmt]
        assert abs(peak_hz(y, RATE) - 440) <= 5
        assert rms(y) == pytest.approx(rms(x), rel=0.15)
        if fmt != "aac":  # gapless formats are time-aligned with the input
            assert rms(y[: len(x)] - x) < 0.1 * rms(x)
    elif fmt == "pcm_f32le":
        np.testing.assert_array_equal(y, x)
    else:
        assert len(y) == len(x)
        assert np.max(np.abs(y - x)) <= INT16_STEP


@pytest.mark.parametrize("fmt", ["mp3", "opus", "aac", "flac"])
def test_one_shot_other_rate(fmt: str) -> None:
    x = sine(1000, 0.5, 16000)
    y, rate = decode_audio(encode_audio(x, 16000, fmt), target_rate=16000)
    assert rate == 16000
    assert abs(len(y) - len(x)) / 16000 <= 2 * 1024 / 16000 + 0.001
    assert abs(peak_hz(y, 16000) - 1000) <= 5


def test_pcm_values_scaled_and_clipped() -> None:
    x = np.array([0.0, 1.0, -1.0, 2.0, -3.0, 0.5, np.nan], dtype=np.float32)
    pcm = np.frombuffer(encode_audio(x, RATE, "pcm"), dtype="<i2")
    np.testing.assert_array_equal(pcm, [0, 32767, -32767, 32767, -32767, 16384, 0])
    f32 = np.frombuffer(encode_audio(x[:6], RATE, "pcm_f32le"), dtype="<f4")
    np.testing.assert_array_equal(f32, x[:6])


def test_wav_header_exact_sizes() -> None:
    x = sine(440, 0.1, RATE)
    data = encode_audio(x, RATE, "wav")
    assert data[:4] == b"RIFF" and data[8:16] == b"WAVEfmt "
    (riff_size,) = struct.unpack("<I", data[4:8])
    fmt_tag, channels, rate, byte_rate, align, bits = struct.unpack("<HHIIHH", data[20:36])
    (data_size,) = struct.unpack("<I", data[40:44])
    assert (fmt_tag, channels, rate, byte_rate, align, bits) == (1, 1, RATE, 2 * RATE, 2, 16)
    assert data[36:40] == b"data" and data_size == 2 * len(x) == len(data) - 44
    assert riff_size == len(data) - 8
    assert data[44:] == encode_audio(x, RATE, "pcm")


def _stream(fmt: str, x: np.ndarray, chunk: int) -> tuple[list[bytes], bytes]:
    enc = StreamingEncoder(fmt, RATE)
    pushed = [enc.push(x[i : i + chunk]) for i in range(0, len(x), chunk)]
    return pushed, enc.finish()


@pytest.mark.parametrize("fmt", AUDIO_FORMATS)
def test_streaming(fmt: str) -> None:
    x = sine(440, 3.0, RATE)
    pushed, tail = _stream(fmt, x, int(0.08 * RATE))
    first = next(i for i, b in enumerate(pushed) if b)
    if fmt in ("wav", *RAW):
        assert first == 0
    before_finish = b"".join(pushed)
    # Output really is incremental: what came out before finish() already holds most of the audio.
    y_early, _ = _decode(before_finish, fmt)
    assert len(y_early) / RATE >= 2.5
    y, rate = _decode(before_finish + tail, fmt)
    assert rate == RATE
    if fmt in LOSSY:
        assert 0 <= (len(y) - len(x)) / RATE <= STREAM_TOLERANCE_S[fmt]
        assert abs(peak_hz(y, RATE) - 440) <= 5
    else:
        assert len(y) == len(x)
        assert np.max(np.abs(y - x)) <= INT16_STEP


@pytest.mark.parametrize("fmt", ["pcm", "pcm_f32le"])
def test_streamed_raw_equals_one_shot(fmt: str) -> None:
    x = sine(440, 1.0, RATE)
    pushed, tail = _stream(fmt, x, 1000)
    assert all(pushed) and tail == b""
    assert b"".join(pushed) == encode_audio(x, RATE, fmt)


def test_streamed_wav_unknown_length_header() -> None:
    x = sine(440, 1.0, RATE)
    pushed, tail = _stream("wav", x, 1920)
    data = b"".join(pushed) + tail
    assert pushed[0][:4] == b"RIFF" and len(pushed[0]) == 44 + 2 * 1920
    assert struct.unpack("<I", data[4:8])[0] == 0xFFFFFFFF
    assert struct.unpack("<I", data[40:44])[0] == 0xFFFFFFFF
    assert data[44:] == encode_audio(x, RATE, "pcm")


def test_streaming_small_chunks_and_empty_pushes() -> None:
    x = sine(440, 0.5, RATE)
    enc = StreamingEncoder("mp3", RATE)
    parts = [enc.push(np.zeros(0, dtype=np.float32))]
    parts += [enc.push(x[i : i + 100]) for i in range(0, len(x), 100)]
    parts.append(enc.finish())
    assert enc.finish() == b""
    with pytest.raises(RuntimeError):
        enc.push(x)
    y, _ = decode_audio(b"".join(parts), target_rate=RATE)
    assert 0 <= (len(y) - len(x)) / RATE <= STREAM_TOLERANCE_S["mp3"]


def test_close_abandons_stream() -> None:
    enc = StreamingEncoder("opus", RATE)
    assert enc.push(sine(440, 0.5, RATE))
    enc.close()
    assert enc.finish() == b""
    with pytest.raises(RuntimeError):
        enc.push(sine(440, 0.1, RATE))


def test_encoder_rejects_bad_arguments() -> None:
    with pytest.raises(InvalidRequest):
        StreamingEncoder("ogg_vorbis", RATE)
    with pytest.raises(InvalidRequest):
        StreamingEncoder("mp3", 0)
    with pytest.raises(ValueError):
        encode_audio(np.zeros((100, 2), dtype=np.float32), RATE, "wav")


@pytest.mark.parametrize(("name", "fmt"), [("out.wav", "wav"), ("out.flac", "flac"), ("out.ogg", "opus")])
def test_write_audio_file(tmp_path, name: str, fmt: str) -> None:
    x = sine(440, 0.5, RATE)
    path = tmp_path / name
    assert write_audio_file(path, x, RATE) == fmt
    y, rate = decode_audio(path, target_rate=RATE)
    assert rate == RATE and abs(len(y) - len(x)) <= 0.02 * RATE
    assert abs(peak_hz(y, RATE) - 440) <= 5


def test_write_audio_file_unknown_extension(tmp_path) -> None:
    with pytest.raises(InvalidRequest):
        write_audio_file(tmp_path / "out.xyz", sine(440, 0.1, RATE), RATE)
    assert not (tmp_path / "out.xyz").exists()
