"""Models, voices, health and metrics endpoints; long inputs split into segments and joined."""

from __future__ import annotations

import numpy as np
import pytest

from speechserve.tts.segmentation import split_text

from ._util import SPF, decode, make_settings, openai_client, serving

pytestmark = pytest.mark.anyio


async def test_models_list_and_lookup(client, tiny_checkpoint) -> None:
    models = (await client.models.list()).data
    assert [m.id for m in models] == [tiny_checkpoint.name]  # the directory's name, never its path
    card = models[0].model_dump()
    assert card["object"] == "model" and card["license"] == "CC-BY-NC-4.0"
    assert card["aliases"] == ["tts-1", "tts-1-hd", "gpt-4o-mini-tts"]
    assert card["capabilities"] == ["speech"] and card["voice_cloning"] is False
    assert (await client.models.retrieve("tts-1")).id == tiny_checkpoint.name


async def test_voices_carry_language_gender_license_and_aliases(http) -> None:
    body = (await http.get("/v1/audio/voices")).json()
    voices = {v["id"]: v for v in body["voices"]}
    assert sorted(voices) == ["casual_male", "cheerful_female", "fr_female"]
    assert (voices["fr_female"]["language"], voices["fr_female"]["gender"]) == ("fr", "female")
    assert (voices["casual_male"]["language"], voices["casual_male"]["gender"]) == ("en", "male")
    assert {v["license"] for v in voices.values()} == {"CC-BY-NC-4.0"}
    assert "nova" in voices["cheerful_female"]["aliases"]
    assert "alloy" not in str(body)  # its preset (neutral_female) is not in this checkpoint: dropped
    french = (await http.get("/v1/audio/voices", params={"language": "fr"})).json()["voices"]
    assert [v["id"] for v in french] == ["fr_female"]


async def test_health_and_metrics(http) -> None:
    health = (await http.get("/health")).json()
    assert health["status"] == "ok" and health["running"] == 0
    await http.post("/v1/audio/speech", json={"input": "Counting.", "voice": "nobody"})
    ok = await http.post("/v1/audio/speech", json={"input": "Counting.", "response_format": "wav"})
    assert ok.status_code == 200
    text = (await http.get("/metrics")).text
    assert 'speechserve_requests_total{route="/v1/audio/speech",status="200"}' in text
    assert 'speechserve_requests_total{route="/v1/audio/speech",status="400"}' in text
    assert 'speechserve_errors_total{type="voice_not_found"}' in text
    for name in ("speechserve_queue_waiting", "speechserve_queue_running", "speechserve_speech_in_flight"):
        assert f"\n{name} 0.0" in text, name
    ttfa = [
        line for line in text.splitlines() if line.startswith("speechserve_time_to_first_audio_seconds_count")
    ]
    assert ttfa and float(ttfa[0].split()[-1]) >= 1
    assert "speechserve_real_time_factor_bucket" in text and "speechserve_output_frames_total" in text


LONG_TEXT = (
    "The first sentence is short. The second one, however, goes on for a while, with clauses; "
    "it keeps going. Dr. Smith said so! Is this the fourth? Yes, and the fifth ends here."
)


async def test_long_input_is_segmented_and_joined_with_crossfades(tiny_checkpoint) -> None:
    settings = make_settings(tiny_checkpoint, segment_chars=40, crossfade_ms=15, max_frames=4)
    segments = split_text(LONG_TEXT, 40)
    assert len(segments) >= 4
    seam = round(0.015 * 24000)
    async with serving(settings) as app, openai_client(app) as client:

        async def speak(**extra):
            return await client.audio.speech.with_raw_response.create(
                model="tts-1",
                voice="nova",
                input=LONG_TEXT,
                response_format="pcm",
                extra_body={"seed": 9, **extra},
            )

        file = await speak(stream=False)
        assert int(file.headers["x-speech-segments"]) == len(segments)
        frames = int(file.headers["x-usage-output-tokens"])
        assert (
            len(file.content) // 2 == frames * SPF - (len(segments) - 1) * seam
        )  # no frame lost, seams overlap
        streamed = await speak()
        np.testing.assert_allclose(
            decode(streamed.content, "pcm")[0], decode(file.content, "pcm")[0], atol=2 / 32768
        )
        capped = await speak(stream=False, max_tokens=6)
        assert int(capped.headers["x-usage-output-tokens"]) == 6
        assert len(capped.content) // 2 == 6 * SPF - seam  # 4 frames of segment 1, 2 of segment 2
        assert not app.state.registry.models[0].in_flight
