"""Bad input, auth, voice cloning without an encoder, overload: each answered in OpenAI's error envelope."""

from __future__ import annotations

import asyncio
import base64

import numpy as np
import openai
import pytest

from speechserve.audio import encode_audio

from ._util import http_client, make_settings, openai_client, serving

pytestmark = pytest.mark.anyio

OK = {"model": "tts-1", "input": "Hello there.", "voice": "casual_male", "response_format": "pcm"}
WAV_B64 = base64.b64encode(encode_audio(np.sin(np.arange(24000) / 10).astype(np.float32) * 0.3, 24000, "wav"))

# (case id, request body (dict → JSON, bytes → raw), status, param)
BAD_INPUT = [
    ("empty input", OK | {"input": ""}, 400, "input"),
    ("blank input", OK | {"input": " \n\t "}, 400, "input"),
    ("too long input", OK | {"input": "a" * 4097}, 400, "input"),
    ("missing input", {"model": "tts-1", "voice": "casual_male"}, 400, "input"),
    ("input not a string", OK | {"input": 42}, 400, "input"),
    ("unknown voice", OK | {"voice": "nobody"}, 400, "voice"),
    ("voice object without id", OK | {"voice": {"name": "casual_male"}}, 400, "voice"),
    ("voice of wrong type", OK | {"voice": 7}, 400, "voice"),
    ("unknown model", OK | {"model": "whisper-1"}, 404, "model"),
    ("bad response_format", OK | {"response_format": "ogg"}, 400, "response_format"),
    ("speed too low", OK | {"speed": 0.1}, 400, "speed"),
    ("speed too high", OK | {"speed": 4.5}, 400, "speed"),
    ("speed not a number", OK | {"speed": "fast"}, 400, "speed"),
    ("malformed JSON", b'{"input": "Hello", ', 400, None),
    ("body not an object", b'["Hello"]', 400, None),
    ("ref_audio without encoder weights", OK | {"ref_audio": WAV_B64.decode()}, 400, "ref_audio"),
    ("bad base64 ref_audio", OK | {"ref_audio": "data:audio/wav;base64,@@@"}, 400, "ref_audio"),
    ("max_tokens zero", OK | {"max_tokens": 0}, 400, "max_tokens"),
    ("max_tokens negative", OK | {"max_tokens": -5}, 400, "max_tokens"),
    ("negative seed", OK | {"seed": -1}, 400, "seed"),
    ("bad stream_format", OK | {"stream_format": "chunked"}, 400, "stream_format"),
    ("sse with stream false", OK | {"stream_format": "sse", "stream": False}, 400, "stream"),
    ("temperature too high", OK | {"temperature": 3}, 400, "temperature"),
    ("top_p zero", OK | {"top_p": 0}, 400, "top_p"),
    ("cfg_alpha negative", OK | {"cfg_alpha": -1}, 400, "cfg_alpha"),
    ("sample_rate too low", OK | {"sample_rate": 1000}, 400, "sample_rate"),
    ("stream not a bool", OK | {"stream": "maybe"}, 400, "stream"),
]


async def test_bad_input_table_then_a_normal_request(http) -> None:
    for case, body, status, param in BAD_INPUT:
        kwargs = {"content": body, "headers": {"content-type": "application/json"}}
        response = await http.post(
            "/v1/audio/speech", **(kwargs if isinstance(body, bytes) else {"json": body})
        )
        assert response.status_code == status, (case, response.text)
        error = response.json()["error"]
        assert set(error) == {"message", "type", "param", "code"}, case
        assert (error["param"], error["type"]) == (param, "invalid_request_error"), (case, error)
        assert error["message"], case
    assert len(BAD_INPUT) >= 15
    response = await http.post("/v1/audio/speech", json=OK | {"stream": False})
    assert response.status_code == 200 and len(response.content) > 0


async def test_errors_name_the_valid_choices(client) -> None:
    with pytest.raises(openai.BadRequestError) as err:
        await client.audio.speech.create(model="tts-1", voice="nobody", input="Hi.")
    assert err.value.param == "voice" and err.value.code == "voice_not_found"
    assert "casual_male" in err.value.message and "nova" in err.value.message
    with pytest.raises(openai.NotFoundError) as missing:
        await client.audio.speech.create(model="no-such-model", voice="nova", input="Hi.")
    assert missing.value.param == "model" and "tts-1" in missing.value.message


async def test_ref_audio_on_a_checkpoint_without_encoder_explains_why(client) -> None:
    with pytest.raises(openai.BadRequestError) as err:
        await client.audio.speech.create(
            model="tts-1", voice="nova", input="Hi.", extra_body={"ref_audio": WAV_B64.decode()}
        )
    assert err.value.param == "ref_audio" and err.value.code == "voice_cloning_unavailable"
    assert "encoder weights" in err.value.message


async def test_unknown_route_and_method_use_the_envelope(http) -> None:
    missing = await http.get("/v1/audio/nothing")
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "not_found"
    wrong = await http.get("/v1/audio/speech")
    assert wrong.status_code == 405 and wrong.json()["error"]["type"] == "invalid_request_error"


async def test_api_keys(tiny_checkpoint) -> None:
    settings = make_settings(
        tiny_checkpoint, api_keys=["sk-right", "sk-other"], cors_origins=["https://app.test"]
    )
    async with serving(settings) as app:
        async with openai_client(app, api_key="sk-wrong") as wrong:
            with pytest.raises(openai.AuthenticationError) as err:
                await wrong.audio.speech.create(model="tts-1", voice="nova", input="Hi.")
            assert err.value.code == "invalid_api_key"
            with pytest.raises(openai.AuthenticationError):
                await wrong.models.list()
        async with openai_client(app, api_key="sk-other") as right:
            audio = await right.audio.speech.create(
                model="tts-1", voice="nova", input="Hi.", response_format="wav"
            )
            assert audio.content[:4] == b"RIFF"
        async with http_client(app) as http:
            no_key = await http.get("/v1/models")
            assert no_key.status_code == 401 and no_key.headers["www-authenticate"] == "Bearer"
            assert (await http.get("/health")).status_code == 200  # health and metrics stay open
            assert (await http.get("/metrics")).status_code == 200
            preflight = await http.options(
                "/v1/audio/speech",
                headers={"Origin": "https://app.test", "Access-Control-Request-Method": "POST"},
            )
            assert preflight.status_code == 200  # CORS preflight needs no key
            assert preflight.headers["access-control-allow-origin"] == "https://app.test"
            cross = await http.post(
                "/v1/audio/speech",
                json=OK | {"stream": False},
                headers={"Origin": "https://app.test", "Authorization": "Bearer sk-right"},
            )
            assert cross.status_code == 200
            assert "X-Generation-Id" in cross.headers["access-control-expose-headers"]


async def test_voice_cloning_with_encoder_weights(tiny_checkpoint_with_encoder) -> None:
    async with serving(make_settings(tiny_checkpoint_with_encoder)) as app, http_client(app) as http:
        data_url = "data:audio/wav;base64," + WAV_B64.decode()
        response = await http.post("/v1/audio/speech", json=OK | {"ref_audio": data_url, "stream": False})
        assert response.status_code == 200, response.text
        assert response.headers["x-ignored-fields"] == "voice"  # ref_audio wins over the preset
        assert len(response.content) == int(response.headers["x-usage-output-tokens"]) * 1920 * 2 > 0
        garbage = base64.b64encode(b"not audio at all" * 10).decode()
        bad = await http.post("/v1/audio/speech", json=OK | {"ref_audio": garbage})
        assert bad.status_code == 400 and bad.json()["error"]["param"] == "ref_audio"


async def test_overload_is_429_and_the_server_recovers(tiny_checkpoint) -> None:
    settings = make_settings(tiny_checkpoint, max_waiting=1, max_batch=1, max_frames=12)
    async with serving(settings) as app, openai_client(app) as client:

        async def speak(i: int) -> bytes:
            audio = await client.audio.speech.create(
                model="tts-1", voice="nova", input=f"Request number {i}.", response_format="pcm"
            )
            return audio.content

        results = await asyncio.gather(*(speak(i) for i in range(6)), return_exceptions=True)
        limited = [r for r in results if isinstance(r, openai.RateLimitError)]
        served = [r for r in results if isinstance(r, bytes)]
        assert limited and served and len(limited) + len(served) == 6, results
        assert limited[0].code == "overloaded" and limited[0].response.headers["retry-after"] == "1"
        assert await speak(99)
        stats = app.state.registry.models[0].engine.stats()
        assert (stats.waiting, stats.running) == (0, 0)


def test_error_envelope_shape_for_internal_errors() -> None:
    from speechserve.server.errors import error_object

    internal = error_object(RuntimeError("secret detail"))
    assert internal == {
        "message": "internal server error; see the server log",
        "type": "server_error",
        "param": None,
        "code": "internal_error",
    }
