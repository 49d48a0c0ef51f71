"""The SDK: ``transcribe``/``transcribe_stream`` with the 2507 models' types, and the live transcriber
(``pipeline.stream()``) whose text, pushed in any pieces, is the whole file's text."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from speechserve.asr import TextDelta, Transcription, TranscriptionOptions
from speechserve.audio.resample import resample
from speechserve.errors import InvalidRequest


@pytest.fixture(scope="module")
def whole(realtime_pipe, en_samples) -> Transcription:  # type: ignore[no-untyped-def]
    return realtime_pipe.transcribe((en_samples, 16_000))


def _pieces(x: np.ndarray, seed: int) -> list[np.ndarray]:
    rng, out, start = np.random.default_rng(seed), [], 0
    while start < len(x):
        n = int(rng.integers(1, 20_000))
        out.append(x[start : start + n])
        start += n
    return out


def test_transcribe_stream_joins_to_transcribe(realtime_pipe, en_samples, whole: Transcription) -> None:
    stream = realtime_pipe.transcribe_stream((en_samples, 16_000))
    assert stream.audio_seconds == pytest.approx(len(en_samples) / 16_000)
    deltas = list(stream)
    assert all(isinstance(d, TextDelta) and d.segment == 0 for d in deltas)
    assert "".join(d.text for d in deltas) == stream.result().text == whole.text != ""
    assert len(whole.segments) == 1 and whole.segments[0].start == 0.0
    assert whole.duration == pytest.approx(3.4384375) and whole.language is None


def test_live_transcriber_equals_the_whole_file(realtime_pipe, en_samples, whole: Transcription) -> None:
    live = realtime_pipe.stream()
    deltas = []
    for piece in _pieces(en_samples, 0):
        deltas += live.push(piece)
        assert live.text == "".join(d.text for d in deltas)
    deltas += live.finish()
    result = live.result()
    assert "".join(d.text for d in deltas) == result.text == whole.text
    assert result.segments[0].tokens == whole.segments[0].tokens and result.usage == whole.usage
    assert list(live) == deltas  # the same pieces, queued for iteration
    with pytest.raises(InvalidRequest):
        live.push(en_samples[:100])


def test_iterate_from_another_thread(realtime_pipe, en_samples, whole: Transcription) -> None:
    live = realtime_pipe.stream()
    got: list[TextDelta] = []
    reader = threading.Thread(target=lambda: got.extend(live))
    reader.start()
    for piece in _pieces(en_samples, 1):
        live.push(piece)
    live.finish()
    reader.join(timeout=60)
    assert "".join(d.text for d in got) == whole.text


def test_int16_and_other_rates(realtime_pipe, en_samples, whole: Transcription) -> None:
    pcm16 = np.round(en_samples * 32768).astype(np.int16)  # the wav's own PCM16 values
    live = realtime_pipe.stream()
    for piece in _pieces(pcm16, 2):
        live.push(piece)
    live.finish()
    assert live.result().text == whole.text
    x8k = resample(en_samples, 16_000, 8_000)
    live = realtime_pipe.stream(sample_rate=8_000)
    for piece in _pieces(x8k, 3):
        live.push(piece)
    live.finish()
    assert live.result().segments[0].tokens == realtime_pipe.transcribe((x8k, 8_000)).segments[0].tokens


def test_options(realtime_pipe, en_samples) -> None:
    capped = realtime_pipe.transcribe((en_samples, 16_000), TranscriptionOptions(max_tokens=5, language="en"))
    assert len(capped.segments[0].tokens) == 5 and capped.segments[0].finish_reason == "length"
    assert capped.language == "en"
    with pytest.raises(InvalidRequest, match="language"):
        realtime_pipe.transcribe((en_samples, 16_000), TranscriptionOptions(language="xx"))
    sampled = [
        realtime_pipe.transcribe((en_samples, 16_000), TranscriptionOptions(temperature=1.0, seed=7)).text
        for _ in range(2)
    ]
    assert sampled[0] == sampled[1]


def test_server_protocol(realtime_pipe, en_samples, whole: Transcription) -> None:
    """What the server's transcription route asks of a transcribing pipeline."""
    samples = realtime_pipe.load_audio((en_samples, 16_000), "file")
    ((prompt, start, end, cap),) = realtime_pipe.transcription_prompts(samples, TranscriptionOptions())
    assert prompt.ids == [1, *[32] * 38] and (start, end) == (0.0, pytest.approx(3.4384375))
    assert cap == len(whole.segments[0].tokens) == 53
    realtime_pipe.tokenizer.check_language("fr")
    assert realtime_pipe.tokenizer.eos_id == 2 and realtime_pipe.tokenizer.text_decoder().push(32) == ""
    assert realtime_pipe.warmup_request().max_tokens == 2
    assert not realtime_pipe.supports_chat and realtime_pipe.supports_transcription
