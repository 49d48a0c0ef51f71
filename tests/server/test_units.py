"""Pure pieces of the server: text segmentation, settings, request delivery rules, voice metadata."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from speechserve.errors import InvalidRequest, UnknownVoice
from speechserve.server.settings import ServerSettings
from speechserve.server.speech.protocol import CreateSpeechRequest
from speechserve.server.voices import VoiceCatalog, describe_preset
from speechserve.tts.segmentation import split_text

TEXTS = [
    "Hello world.",
    "Dr. Smith arrived at 3.30 p.m. with Mr. J. Doe! Did they talk? Yes… for hours; about everything, really.",
    "A sentence without an end but with, many, commas, and clauses; and more words " * 6,
    "Line one\nLine two\n\n  Paragraph three is here.   ",
    "Supercalifragilisticexpialidocious" * 5 + " tail.",
    "これは日本語の文です。これも文です！最後の文？",
    "«Quoted sentence.» Next one. “Another!” Done.",
]


@pytest.mark.parametrize("text", TEXTS)
@pytest.mark.parametrize("max_chars", [1, 7, 25, 60, 4096])
def test_segments_cover_the_text_and_respect_the_size(text: str, max_chars: int) -> None:
    segments = split_text(text, max_chars)
    assert "".join(text.split()) == "".join("".join(s.split()) for s in segments)  # nothing dropped or added
    assert all(0 < len(s) <= max_chars and s == s.strip() for s in segments)


def test_segments_prefer_sentence_then_clause_boundaries() -> None:
    text = "Dr. Smith went home. He slept, dreamed, and woke up early; then he ate."
    want = ["Dr. Smith went home.", "He slept, dreamed,", "and woke up early;", "then he ate."]
    assert split_text(text, 30) == want  # not after "Dr.", and clause marks before bare spaces
    assert split_text(text, 1000) == [text]
    assert split_text("   \n ", 10) == []
    with pytest.raises(ValueError):
        split_text("x", 0)


def test_settings_from_environment(monkeypatch) -> None:
    monkeypatch.setenv("SPEECHSERVE_MODEL", "mistralai/Voxtral-4B-TTS-2603")
    monkeypatch.setenv("SPEECHSERVE_API_KEYS", "sk-1, sk-2")
    monkeypatch.setenv("SPEECHSERVE_VOICE_ALIASES", '{"Alloy": "FR_Female"}')
    monkeypatch.setenv("SPEECHSERVE_MAX_WAITING", "3")
    s = ServerSettings()
    assert (s.api_keys, s.voice_aliases, s.max_waiting) == (["sk-1", "sk-2"], {"alloy": "fr_female"}, 3)
    assert s.model_names()[:2] == ["mistralai/Voxtral-4B-TTS-2603", "Voxtral-4B-TTS-2603"]
    assert ServerSettings(served_model_name=["voxtral"]).model_names()[0] == "voxtral"  # constructor wins
    with pytest.raises(ValidationError):
        ServerSettings(first_chunk_frames=5, max_chunk_frames=2)


def test_every_setting_is_documented() -> None:
    import ast
    import inspect

    from speechserve.server import settings as module

    tree = ast.parse(inspect.getsource(module.ServerSettings))
    body = tree.body[0].body  # type: ignore[attr-defined]
    for i, node in enumerate(body):
        if isinstance(node, ast.AnnAssign) and node.target.id != "model_config":  # type: ignore[union-attr]
            doc = body[i + 1]
            assert isinstance(doc, ast.Expr) and isinstance(doc.value, ast.Constant), node.target.id  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("fields", "delivery"),
    [
        ({}, "audio"),
        ({"stream_format": "audio"}, "audio"),
        ({"stream_format": "sse"}, "sse"),
        ({"stream": True}, "sse"),
        ({"stream": False}, "file"),
        ({"stream": False, "stream_format": "audio"}, "file"),
        ({"stream": True, "stream_format": "audio"}, "audio"),
        ({"stream": True, "stream_format": "sse"}, "sse"),
    ],
)
def test_stream_and_stream_format_combine(fields: dict, delivery: str) -> None:
    assert CreateSpeechRequest(input="x", **fields).delivery() == delivery


def test_request_conversion() -> None:
    req = CreateSpeechRequest(
        input="x", voice={"id": "nova"}, temperature=0.5, cfg_alpha=2.0, max_tokens=9, seed=4
    )
    opts = req.to_options(max_frames=100, first_chunk_frames=1, max_chunk_frames=25)
    assert (opts.noise_scale, opts.cfg_alpha, opts.max_frames, opts.seed) == (0.5, 2.0, 9, 4)
    assert req.voice_name() == "nova"
    assert CreateSpeechRequest(input="x", max_tokens=500).to_options(100, 1, 25).max_frames == 100
    with pytest.raises(InvalidRequest):
        CreateSpeechRequest(input="x", stream=False, stream_format="sse").delivery()


@pytest.mark.parametrize(
    ("preset", "language", "gender", "name"),
    [
        ("fr_female", "fr", "female", "French female"),
        ("casual_male", "en", "male", "Casual male"),
        ("neutral_female", "en", "female", "Neutral female"),
        ("ar_male", "ar", "male", "Arabic male"),
        ("narrator", "en", None, "Narrator"),
    ],
)
def test_preset_metadata(preset: str, language: str, gender: str | None, name: str) -> None:
    assert describe_preset(preset) == (language, gender, name)


def test_voice_catalog_resolution() -> None:
    catalog = VoiceCatalog(
        ["casual_male", "fr_female"], {"ash": "casual_male", "nova": "neutral_female"}, None, "L"
    )
    assert catalog.aliases == {"ash": "casual_male"}  # nova's preset is missing: dropped
    assert catalog.resolve("ASH") == catalog.resolve("Casual_Male") == "casual_male"
    assert catalog.resolve(None) is None
    with pytest.raises(UnknownVoice) as err:
        catalog.resolve("nova")
    assert err.value.param == "voice" and "ash" in str(err.value)
    assert VoiceCatalog(["fr_female"], {}, "FR_FEMALE", "L").resolve(None) == "fr_female"
