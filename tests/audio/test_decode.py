"""Tests for speechserve.audio.decode: files written by PyAV itself, mono/stereo, resampling, bad input."""

from __future__ import annotations

import base64
import io

import numpy as np
import pytest

from speechserve.audio import decode_audio, decode_base64_audio, decode_pcm, encode_audio
from speechserve.errors import InvalidRequest

from ._util import peak_hz, rms, sine, write_with_pyav

# (container, codec, sample format, extension, sample rates the codec accepts)
WRITERS = {
    "wav": ("wav", "pcm_s16le", "s16", "wav", (8000, 16000, 22050, 44100, 48000)),
    "flac": ("flac", "flac", "s16", "flac", (8000, 16000, 22050, 44100, 48000)),
    "mp3": ("mp3", "libmp3lame", "fltp", "mp3", (8000, 16000, 22050, 44100, 48000)),
    "opus": ("ogg", "libopus", "flt", "ogg", (8000, 16000, 48000)),
    "m4a": ("mp4", "aac", "fltp", "m4a", (16000, 44100)),
    "webm": ("webm", "libopus", "flt", "webm", (48000,)),
}
CASES = [
    (name, rate, channels) for name, (*_, rates) in WRITERS.items() for rate in rates for channels in (1, 2)
]
LEFT_AMP, RIGHT_AMP = 0.5, 0.3


def _write(tmp_path, name: str, rate: int, channels: int, seconds: float = 1.0):
    container, codec, sample_fmt, ext, _ = WRITERS[name]
    left = sine(440, seconds, rate, LEFT_AMP)
    x = left[None] if channels == 1 else np.stack([left, sine(440, seconds, rate, RIGHT_AMP)])
    path = tmp_path / f"in.{ext}"
    write_with_pyav(str(path), x, rate, container, codec, sample_fmt)
    return path, x


@pytest.mark.parametrize(("name", "rate", "channels"), CASES)
@pytest.mark.parametrize("target", [16000, 24000])
def test_decode_written_files(tmp_path, name: str, rate: int, channels: int, target: int) -> None:
    path, x = _write(tmp_path, name, rate, channels)
    y, out_rate = decode_audio(path, target_rate=target)
    assert out_rate == target
    assert y.ndim == 1 and y.dtype == np.float32
    tolerance = 0.1 if name == "m4a" else 0.05
    assert abs(len(y) / target - x.shape[1] / rate) <= tolerance
    assert abs(peak_hz(y, target) - 440) <= 5
    assert np.max(np.abs(y)) <= 1.0
    # Mono mix-down is the mean of the channels: 0.5 alone, (0.5 + 0.3) / 2 for stereo.
    expected_amp = LEFT_AMP if channels == 1 else (LEFT_AMP + RIGHT_AMP) / 2
    assert rms(y) == pytest.approx(expected_amp / np.sqrt(2), rel=0.1)


def test_decode_bytes_native_rate_and_exact_samples(tmp_path) -> None:
    path, x = _write(tmp_path, "flac", 22050, 1)
    y, rate = decode_audio(path.read_bytes())
    assert rate == 22050 and len(y) == x.shape[1]
    assert np.max(np.abs(y - x[0])) <= 1 / 32767


def test_decode_stereo_keeps_channels(tmp_path) -> None:
    path, x = _write(tmp_path, "wav", 44100, 2)
    y, rate = decode_audio(path, mono=False)
    assert rate == 44100 and y.shape == (x.shape[1], 2)
    assert np.max(np.abs(y - x.T)) <= 1 / 32767
    y16, rate16 = decode_audio(path, target_rate=16000, mono=False)
    assert rate16 == 16000 and y16.shape == (16000, 2)
    assert rms(y16[:, 0]) == pytest.approx(LEFT_AMP / np.sqrt(2), rel=0.02)
    assert rms(y16[:, 1]) == pytest.approx(RIGHT_AMP / np.sqrt(2), rel=0.02)


def _wav_bytes() -> bytes:
    return encode_audio(sine(440, 0.2, 16000), 16000, "wav")


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(b"", id="empty"),
        pytest.param(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes(), id="random"),
        pytest.param(b"\x00" * 1000, id="zeros"),
        pytest.param(_wav_bytes()[:20], id="truncated-wav-header"),
        pytest.param(encode_audio(sine(440, 0.2, 16000), 16000, "flac")[:30], id="truncated-flac-header"),
        pytest.param(encode_audio(sine(440, 0.2, 16000), 16000, "opus")[:40], id="truncated-ogg-header"),
        pytest.param(encode_audio(np.zeros(0, dtype=np.float32), 16000, "wav"), id="wav-without-samples"),
        pytest.param(b"hello, this is plain text and not audio at all\n" * 20, id="text"),
    ],
)
def test_bad_input_raises_invalid_request(data: bytes) -> None:
    with pytest.raises(InvalidRequest):
        decode_audio(data)


def test_no_samples_message() -> None:
    with pytest.raises(InvalidRequest, match="contains no audio samples"):
        decode_audio(encode_audio(np.zeros(0, dtype=np.float32), 16000, "wav"))


def test_video_only_file_has_no_audio_stream() -> None:
    import av

    buf = io.BytesIO()
    with av.open(buf, "w", format="matroska") as out:
        stream = out.add_stream("ffv1", rate=1)
        stream.width = stream.height = 16
        stream.pix_fmt = "yuv420p"
        frame = av.VideoFrame.from_ndarray(np.zeros((16, 16, 3), dtype=np.uint8), format="rgb24")
        for packet in [*stream.encode(frame.reformat(format="yuv420p")), *stream.encode(None)]:
            out.mux(packet)
    with pytest.raises(InvalidRequest, match="no audio stream"):
        decode_audio(buf.getvalue())


def test_missing_file(tmp_path) -> None:
    with pytest.raises(FileNotFoundError):
        decode_audio(tmp_path / "nope.wav")
    (tmp_path / "empty.wav").write_bytes(b"")
    with pytest.raises(InvalidRequest):
        decode_audio(tmp_path / "empty.wav")


def test_bad_target_rate() -> None:
    with pytest.raises(InvalidRequest):
        decode_audio(_wav_bytes(), target_rate=0)


@pytest.mark.parametrize("prefix", ["", "data:audio/wav;base64,", "DATA:audio/x-wav;BASE64,"])
def test_base64_round_trip(prefix: str) -> None:
    b64 = base64.b64encode(_wav_bytes()).decode()
    y, rate = decode_base64_audio(prefix + b64, target_rate=24000)
    assert rate == 24000 and len(y) == 4800
    assert abs(peak_hz(y, 24000) - 440) <= 5


def test_base64_tolerates_whitespace_urlsafe_and_missing_padding() -> None:
    raw = _wav_bytes() + b"\xff\xfe"  # makes the encoding end with padding and contain url-unsafe chars
    b64 = base64.b64encode(raw).decode()
    wrapped = "\n".join(b64[i : i + 76] for i in range(0, len(b64), 76))
    urlsafe = base64.urlsafe_b64encode(raw).decode().rstrip("=")
    for s in (wrapped, urlsafe):
        y, rate = decode_base64_audio(s)
        assert rate == 16000 and len(y) == 3200


@pytest.mark.parametrize(
    "s",
    [
        pytest.param("", id="empty"),
        pytest.param("not base64 at all!!", id="bad-chars"),
        pytest.param("QUJD$", id="bad-char-at-end"),
        pytest.param("data:audio/wav;base64,", id="empty-data-url"),
        pytest.param("data:audio/wav;base64,@@@@####", id="data-url-bad-base64"),
        pytest.param(
            "data:audio/wav;base64," + base64.b64encode(b"garbage" * 50).decode(), id="data-url-garbage"
        ),
        pytest.param("data:audio/wav,RIFF....", id="data-url-not-base64"),
        pytest.param("data:audio/wav;base64", id="data-url-without-comma"),
        pytest.param(base64.b64encode(b"\x00\x01\x02" * 300).decode(), id="valid-base64-not-audio"),
    ],
)
def test_bad_base64_raises_invalid_request(s: str) -> None:
    with pytest.raises(InvalidRequest) as info:
        decode_base64_audio(s)
    assert info.value.param is None


def test_decode_pcm() -> None:
    x = sine(440, 0.1, 24000)
    np.testing.assert_array_equal(decode_pcm(encode_audio(x, 24000, "pcm_f32le"), "pcm_f32le"), x)
    assert np.max(np.abs(decode_pcm(encode_audio(x, 24000, "pcm"), "pcm") - x)) <= 1 / 32767
    with pytest.raises(InvalidRequest):
        decode_pcm(b"\x00\x01\x02", "pcm")
    with pytest.raises(InvalidRequest):
        decode_pcm(b"\x00\x01", "mp3")
