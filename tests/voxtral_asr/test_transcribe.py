"""The SDK on a tiny random checkpoint: streaming == one-shot, segment timing, usage, sampling, limits."""

from __future__ import annotations

import dataclasses
import io

import numpy as np
import pytest
import soundfile as sf
import torch

from speechserve import InvalidRequest, TranscriptionOptions
from speechserve.models.voxtral_asr.generation import Sampler, generate_tokens

RATE = 16000
GREEDY4 = TranscriptionOptions(max_tokens=4)


def _noise(seconds: float, seed: int = 0, rate: int = RATE) -> np.ndarray:
    return (np.random.default_rng(seed).standard_normal(int(seconds * rate)) * 0.1).astype(np.float32)


def test_stream_joins_to_the_result_and_segments_follow_chunks(tiny_asr) -> None:
    stream = tiny_asr.transcribe_stream((_noise(65.0), RATE), GREEDY4)
    assert stream.audio_seconds == 65.0  # known before any text
    deltas = list(stream)
    result = stream.result()
    assert deltas and "".join(d.text for d in deltas) == result.text
    assert [(s.start, s.end) for s in result.segments] == [(0.0, 30.0), (30.0, 60.0), (60.0, 65.0)]
    assert [d.segment for d in deltas] == sorted(d.segment for d in deltas)
    for seg in result.segments:
        assert seg.text == tiny_asr.tokenizer.decode(seg.tokens)
        assert seg.finish_reason == "length" and len(seg.tokens) == 4 and seg.avg_logprob < 0
    assert result.usage.audio_seconds == result.duration == 65.0
    assert result.usage.prompt_tokens == 3 * (
        3 + 375 + 2
    )  # <s>[INST][BEGIN_AUDIO] [AUDIO]x375 [/INST][TRANSCRIBE]
    assert result.usage.completion_tokens == 12 and result.usage.total_tokens == 3 * 380 + 12
    assert tiny_asr.transcribe((_noise(65.0), RATE), GREEDY4) == result  # greedy is deterministic


def test_one_prompt_for_the_whole_audio(tiny_asr) -> None:
    opts = dataclasses.replace(GREEDY4, segment_chunks=False, language="en")
    result = tiny_asr.transcribe((_noise(65.0), RATE), opts)
    assert [(s.start, s.end) for s in result.segments] == [(0.0, 65.0)]
    assert result.usage.prompt_tokens == 3 + 3 * 375 + 1 + 3 + 1  # ... [/INST] lang:en [TRANSCRIBE]
    assert result.language == "en"


def test_kv_cached_decode_equals_full_recompute(tiny_asr) -> None:
    prompt = tiny_asr.tokenizer.encode_transcription(_noise(2.0), "fr")
    embeds = tiny_asr.prompt_embeddings(prompt)
    steps = list(generate_tokens(tiny_asr.model, embeds, 6, Sampler(0.0)))
    ids = torch.tensor([s.id for s in steps])
    with torch.inference_mode():
        full = torch.cat([embeds, tiny_asr.model.decoder.tok_embeddings(ids[:-1])])
        decoder = tiny_asr.model.decoder
        hidden = decoder(full[None], decoder.new_cache(1, full.shape[0]), 0)[0]
        logits = tiny_asr.model.logits(hidden[embeds.shape[0] - 1 :])
    assert torch.equal(logits.argmax(-1), ids)
    assert torch.allclose(logits[0], steps[0].logits, atol=1e-5)


def test_end_of_sequence_stops_and_is_not_text(tiny_asr, monkeypatch: pytest.MonkeyPatch) -> None:
    first = tiny_asr.transcribe((_noise(1.0), RATE), TranscriptionOptions(max_tokens=3)).segments[0].tokens
    monkeypatch.setattr(tiny_asr.tokenizer, "eos_id", first[1])  # pretend the 2nd token is </s>
    result = tiny_asr.transcribe((_noise(1.0), RATE), TranscriptionOptions(max_tokens=3))
    seg = result.segments[0]
    assert seg.finish_reason == "stop" and seg.tokens == first[:1]
    assert result.usage.completion_tokens == 2


def test_sampling_is_seeded_per_request(tiny_asr) -> None:
    audio = (_noise(1.0), RATE)
    hot = TranscriptionOptions(temperature=1.5, top_p=0.9, seed=7, max_tokens=8)
    a, b = tiny_asr.transcribe(audio, hot), tiny_asr.transcribe(audio, hot)
    assert a.segments[0].tokens == b.segments[0].tokens
    others = {
        tuple(tiny_asr.transcribe(audio, dataclasses.replace(hot, seed=s)).segments[0].tokens)
        for s in range(4)
    }
    assert len(others) > 1
    greedy = tiny_asr.transcribe(audio, TranscriptionOptions(max_tokens=8)).segments[0].tokens
    nucleus = tiny_asr.transcribe(audio, dataclasses.replace(hot, top_p=1e-6)).segments[0].tokens
    assert nucleus == greedy  # a vanishing nucleus keeps only the argmax


def test_audio_inputs_agree(tiny_asr, tmp_path) -> None:
    mono = np.round(_noise(1.5) * 32768) / 32768  # int16-exact, so every route gives identical samples
    buf = io.BytesIO()
    sf.write(buf, mono, RATE, format="WAV", subtype="FLOAT")
    path = tmp_path / "in.wav"
    path.write_bytes(buf.getvalue())
    stereo_int16 = (np.stack([mono, mono], axis=1) * 32768).astype(np.int16)
    texts = {
        tiny_asr.transcribe(audio, GREEDY4).text
        for audio in [(mono, RATE), buf.getvalue(), path, str(path), (stereo_int16, RATE)]
    }
    assert len(texts) == 1


@pytest.mark.parametrize(
    ("audio", "match"),
    [
        ((np.zeros(0, np.float32), RATE), "no audio samples"),
        (b"definitely not audio", "Could not decode"),
        (b"", "empty"),
        (np.zeros(100, np.float32), "sample rate"),
        ((np.full(100, np.nan, np.float32), RATE), "NaN"),
        ((np.zeros(100, np.float32), 0), "sample rate"),
    ],
)
def test_bad_audio_is_an_invalid_request(tiny_asr, audio, match: str) -> None:
    with pytest.raises(InvalidRequest, match=match):
        tiny_asr.transcribe_stream(audio, GREEDY4)


def test_duration_cap(tiny_asr, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tiny_asr, "max_audio_seconds", 2.0)
    with pytest.raises(InvalidRequest, match="limit is 2 s"):
        tiny_asr.transcribe_stream((_noise(2.5), RATE))
    content = [
        {"type": "audio", "audio": (_noise(1.5), RATE)},
        {"type": "audio", "audio": (_noise(1.5), RATE)},
    ]
    with pytest.raises(InvalidRequest, match="limit is 2 s"):
        tiny_asr.chat_stream([{"role": "user", "content": content}])


@pytest.mark.parametrize(
    ("kwargs", "param"),
    [({"language": "english"}, "language"), ({"temperature": -1}, "temperature"), ({"top_p": 0}, "top_p")],
)
def test_bad_options(kwargs: dict, param: str) -> None:
    with pytest.raises(InvalidRequest) as err:
        TranscriptionOptions(**kwargs)
    assert err.value.param == param


def test_unknown_language_code_is_rejected_before_streaming(tiny_asr) -> None:
    with pytest.raises(InvalidRequest, match="ISO-639-1") as err:
        tiny_asr.transcribe_stream((_noise(1.0), RATE), TranscriptionOptions(language="qq"))
    assert err.value.param == "language"
