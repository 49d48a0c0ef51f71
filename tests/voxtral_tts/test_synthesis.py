"""SDK behaviour on a tiny checkpoint: streaming equals one-shot, latency of the first chunk, determinism,
errors for bad requests, voice cloning with and without encoder weights."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from speechserve import EncoderWeightsMissing, InvalidRequest, SynthesisOptions, UnknownVoice

TEXT = "The museums open at nine, and the river is calm tonight."


def _joined(chunks) -> np.ndarray:
    return np.concatenate([c.samples for c in chunks])


def test_stream_equals_one_shot(tiny_tts) -> None:
    opts = SynthesisOptions(seed=3, max_frames=60)
    chunks = list(tiny_tts.synthesize(TEXT, voice="casual_male", options=opts))
    codes = torch.stack([f.codes for f in tiny_tts.frames(TEXT, "casual_male", opts) if not f.is_end])
    one_shot = tiny_tts.model.audio_tokenizer.decode(codes[None])[0].numpy()
    streamed = _joined(chunks)
    assert streamed.shape == one_shot.shape == (1920 * codes.shape[0],)
    assert np.abs(streamed - one_shot).max() <= 1e-4
    # the stream has many chunks, some decoded with a context window that starts after frame 0
    assert len(chunks) >= 6 and sum(c.n_frames for c in chunks) == codes.shape[0]


@pytest.mark.parametrize("first", [1, 2])
def test_first_chunk_after_at_most_two_frames(tiny_tts, first: int) -> None:
    opts = SynthesisOptions(seed=1, max_frames=40, first_chunk_frames=first)
    stream = tiny_tts.synthesize(TEXT, options=opts)
    chunk = next(stream)
    assert chunk.first_frame == 0 and chunk.n_frames == first
    assert len(chunk.samples) == 1920 * first and chunk.sample_rate == 24000
    assert np.isfinite(chunk.samples).all()


def test_same_seed_same_audio_other_seed_differs(tiny_tts) -> None:
    a = tiny_tts.generate(TEXT, options=SynthesisOptions(seed=7, max_frames=20)).samples
    b = tiny_tts.generate(TEXT, options=SynthesisOptions(seed=7, max_frames=20)).samples
    c = tiny_tts.generate(TEXT, options=SynthesisOptions(seed=8, max_frames=20)).samples
    assert np.array_equal(a, b)
    assert a.shape == c.shape and not np.array_equal(a, c)


def test_explicit_noise_overrides_seed(tiny_tts) -> None:
    noise = torch.randn(10, 36, generator=torch.Generator().manual_seed(0))
    a = tiny_tts.generate(TEXT, options=SynthesisOptions(seed=1, max_frames=10, noise=noise)).samples
    b = tiny_tts.generate(TEXT, options=SynthesisOptions(seed=2, max_frames=10, noise=noise)).samples
    assert np.array_equal(a, b)


def test_max_frames_bounds_duration(tiny_tts) -> None:
    audio = tiny_tts.generate(TEXT, options=SynthesisOptions(seed=0, max_frames=12))
    assert audio.duration <= 12 * 0.08 + 1e-9 and audio.sample_rate == 24000


def test_voice_names_are_case_insensitive(tiny_tts) -> None:
    opts = SynthesisOptions(seed=5, max_frames=5)
    a = tiny_tts.generate(TEXT, voice="Fr_Female", options=opts).samples
    b = tiny_tts.generate(TEXT, voice="fr_female", options=opts).samples
    assert np.array_equal(a, b)


def test_unknown_voice_lists_valid_names(tiny_tts) -> None:
    with pytest.raises(UnknownVoice, match="casual_male, cheerful_female, fr_female") as info:
        tiny_tts.synthesize(TEXT, voice="alloy")
    assert info.value.param == "voice"


@pytest.mark.parametrize("text", ["", "   \n"])
def test_empty_text_rejected(tiny_tts, text: str) -> None:
    with pytest.raises(InvalidRequest) as info:
        tiny_tts.synthesize(text)
    assert info.value.param == "input"


@pytest.mark.parametrize(
    ("field", "value"),
    [("max_frames", 0), ("cfg_alpha", -1.0), ("n_decoding_steps", 0), ("first_chunk_frames", 0)],
)
def test_bad_options_rejected(field: str, value: float) -> None:
    with pytest.raises(InvalidRequest) as info:
        SynthesisOptions(**{field: value})
    assert info.value.param == field


def _sine(seconds: float, rate: int = 24000) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    return (0.3 * np.sin(2 * np.pi * 220 * t)).astype(np.float32)


def test_ref_audio_without_encoder_weights(tiny_tts) -> None:
    with pytest.raises(EncoderWeightsMissing, match="encoder weights are not in this checkpoint") as info:
        tiny_tts.synthesize(TEXT, ref_audio=(_sine(1.0), 24000))
    assert info.value.param == "ref_audio"


@pytest.mark.parametrize("seconds", [0.5, 1.3, 2.0])
def test_ref_audio_with_encoder_weights(tiny_tts_with_encoder, seconds: float) -> None:
    tts = tiny_tts_with_encoder
    assert tts.supports_voice_cloning
    ids, embeds = tts.prompt(TEXT, ref_audio=(_sine(seconds), 24000))
    n_rows = math.ceil(seconds * 12.5) + 1
    assert ids.count(24) == n_rows
    assert ids[:2] == [1, 25] and ids[2 + n_rows] == 36 and ids[-2:] == [35, 25]
    audio_rows = embeds[torch.tensor(ids) == 24]
    # the last row is the end-of-audio frame: [END_AUDIO] + raw [EMPTY_AUDIO] codes (no +2), summed
    eoa = torch.zeros(1, 37, dtype=torch.long)
    eoa[0, 0] = 1
    torch.testing.assert_close(audio_rows[-1], tts.model.audio_embeddings(eoa)[0])
    audio = tts.generate(
        TEXT, ref_audio=(_sine(seconds), 24000), options=SynthesisOptions(seed=0, max_frames=4)
    )
    assert audio.sample_rate == 24000 and np.isfinite(audio.samples).all()


def test_ref_audio_resampled_from_other_rates(tiny_tts_with_encoder) -> None:
    tts = tiny_tts_with_encoder
    ids, _ = tts.prompt(TEXT, ref_audio=(_sine(1.0, 16000), 16000))
    assert ids.count(24) == math.ceil(1.0 * 12.5) + 1
