"""Several models in one server: a TTS and an ASR model side by side, each request routed by its ``model``
field (or, naming none, to the first model able to do the task); ``/v1/models`` lists both with their
capabilities; settings and the CLI accept one model or several."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from speechserve.cli import build_parser
from speechserve.server.settings import ServerSettings

from ._util import SPF, decode, wav_bytes

pytestmark = pytest.mark.anyio


async def test_models_lists_both_with_capabilities(asr_client, tiny_asr_checkpoint: Path, tiny_checkpoint: Path) -> None:  # fmt: skip
    cards = {m.id: m.model_dump() for m in (await asr_client.models.list()).data}
    asr, tts = cards[tiny_asr_checkpoint.name], cards[tiny_checkpoint.name]
    assert list(cards) == [tiny_asr_checkpoint.name, tiny_checkpoint.name]
    assert asr["capabilities"] == ["transcription", "chat"] and tts["capabilities"] == ["speech"]
    assert (asr["license"], tts["license"]) == ("Apache-2.0", "CC-BY-NC-4.0")
    assert "whisper-1" in asr["aliases"] and "tts-1" in tts["aliases"]
    assert "tts-1" not in asr["aliases"] and "whisper-1" not in tts["aliases"]
    assert (await asr_client.models.retrieve("whisper-1")).id == tiny_asr_checkpoint.name


async def test_each_request_goes_to_its_model(asr_app, asr_client, asr_http) -> None:
    speech = await asr_client.audio.speech.create(model="tts-1", voice="casual_male", input="Hi.", response_format="wav")  # fmt: skip
    samples, rate, _ = decode(speech.content, "wav")
    assert rate == 24000 and 0 < len(samples) <= 8 * SPF
    text = await asr_client.audio.transcriptions.create(
        model="whisper-1",
        file=("a.wav", wav_bytes(1.0)),
        response_format="text",
        extra_body={"max_tokens": 2},
    )
    assert text.strip()
    # naming no model: the first model that can do the task (ASR is listed first, TTS still speaks)
    unnamed = await asr_http.post(
        "/v1/audio/speech", json={"input": "Hi.", "response_format": "pcm", "stream": False}
    )
    assert unnamed.status_code == 200 and len(unnamed.content) > 0
    voices = await asr_http.get("/v1/audio/voices")
    assert voices.status_code == 200 and voices.json()["voices"]
    health = (await asr_http.get("/health")).json()
    assert health["status"] == "ok" and len(health["models"]) == 2


async def test_the_engines_are_separate_and_all_idle_afterwards(asr_app) -> None:
    asr, tts = asr_app.state.registry.models
    assert asr.engine is not tts.engine and (asr.family.name, tts.family.name) == (
        "voxtral_asr",
        "voxtral_tts",
    )
    assert asr.engine.stats().running == tts.engine.stats().running == 0
    assert not asr.in_flight and not tts.in_flight


def test_one_model_or_several_from_env_and_flags(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SPEECHSERVE_MODEL", "mistralai/Voxtral-4B-TTS-2603")
    assert ServerSettings().model == ["mistralai/Voxtral-4B-TTS-2603"]  # the single-model form still works
    monkeypatch.setenv("SPEECHSERVE_MODEL", "/ckpt/tts, /ckpt/asr")
    assert ServerSettings().model == ["/ckpt/tts", "/ckpt/asr"]
    monkeypatch.setenv("SPEECHSERVE_MODEL", '["/ckpt/tts", "/ckpt/asr"]')
    s = ServerSettings()
    assert s.model == ["/ckpt/tts", "/ckpt/asr"] and s.model_names(1) == ["/ckpt/asr", "asr"]
    named = ServerSettings(served_model_name=["voice", "ears"])
    assert (named.model_names(0), named.model_names(1)) == (["voice"], ["ears"])
    with pytest.raises(ValidationError, match="one name each"):
        ServerSettings(served_model_name=["only-one"])
    with pytest.raises(ValidationError):
        ServerSettings(model=[])
    assert ServerSettings(model="/one").model_names() == ["/one", "one"]
    args = build_parser().parse_args(
        ["serve", "--model", "/ckpt/tts", "--model", "/ckpt/asr", "--max-upload-mb", "5"]
    )
    assert args.model == ["/ckpt/tts", "/ckpt/asr"] and args.max_upload_mb == 5.0
