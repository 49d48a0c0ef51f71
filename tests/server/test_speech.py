"""``POST /v1/audio/speech`` through the official openai client: every format, options, headers, SSE."""

from __future__ import annotations

import base64
import json

import numpy as np
import pytest

from ._util import SPF, decode

pytestmark = pytest.mark.anyio

TEXT = "Paris is a beautiful city."
LOSSY_PADDING_S = 0.1  # encoder delay / frame padding of mp3, aac and opus


async def _speech(client, fmt: str = "pcm", seed: int = 3, **extra):
    return await client.audio.speech.create(
        model="tts-1",
        voice="casual_male",
        input=TEXT,
        response_format=fmt,
        extra_body={"seed": seed, **extra},
    )


@pytest.mark.parametrize("fmt", ["mp3", "opus", "aac", "flac", "wav", "pcm", "pcm_f32le"])
@pytest.mark.parametrize("stream", [None, False], ids=["streamed", "file"])
async def test_every_format_decodes_to_24k_mono_of_the_generated_length(client, fmt, stream) -> None:
    reference = decode((await _speech(client, "pcm", stream=False)).content, "pcm")[0]
    frames = len(reference) // SPF
    assert frames >= 1 and len(reference) == frames * SPF
    extra = {} if stream is None else {"stream": stream}
    response = await _speech(client, fmt, **extra)
    samples, rate, channels = decode(response.content, fmt)
    assert channels == 1
    assert rate == (48000 if fmt == "opus" else 24000)  # Ogg Opus always decodes at 48 kHz
    assert np.isfinite(samples).all() and np.abs(samples).max() > 0
    seconds, want = len(samples) / 24000, frames * 0.08
    if fmt in ("mp3", "opus", "aac"):
        assert want - 0.01 <= seconds <= want + LOSSY_PADDING_S, (fmt, seconds, want)
    else:
        assert seconds == pytest.approx(want, abs=1e-9)
        np.testing.assert_allclose(np.clip(samples, -1, 1), reference, atol=2 / 32768)  # f32 is unclipped


async def test_default_is_mp3_streamed_with_generation_headers(client) -> None:
    response = await client.audio.speech.with_raw_response.create(
        model="tts-1", voice="nova", input=TEXT, extra_body={"instructions": "whisper", "seed": 1}
    )
    headers = response.headers
    assert headers["content-type"] == "audio/mpeg"
    assert "content-length" not in headers  # streamed as generated (chunked over HTTP/1.1)
    assert headers["x-generation-id"].startswith("gen-")
    assert int(headers["x-usage-input-tokens"]) > 0
    assert headers["x-ignored-fields"] == "instructions"
    assert response.content[:3] in (b"ID3", b"\xff\xf3", b"\xff\xfb")


async def test_file_has_usage_headers_and_pcm_content_type(client) -> None:
    response = await client.audio.speech.with_raw_response.create(
        model="tts-1",
        voice={"id": "fr_female"},
        input=TEXT,
        response_format="pcm",
        extra_body={"stream": False, "language": "fr", "top_p": 0.9, "speaker_style": "x"},
    )
    h = response.headers
    assert h["content-type"] == "audio/pcm;rate=24000;channels=1;encoding=s16le"
    frames = int(h["x-usage-output-tokens"])
    assert int(h["x-usage-total-tokens"]) == int(h["x-usage-input-tokens"]) + frames
    assert int(h["content-length"]) == frames * SPF * 2
    assert h["x-ignored-fields"] == "language, top_p, speaker_style"


async def test_same_seed_same_audio_and_voice_aliases(client) -> None:
    a = decode((await _speech(client, seed=11, stream=False)).content, "pcm")[0]
    b = decode((await _speech(client, seed=11, stream=False)).content, "pcm")[0]
    np.testing.assert_allclose(a, b, atol=2 / 32768)
    alias = await client.audio.speech.create(
        model="tts-1",
        voice="nova",
        input=TEXT,
        response_format="pcm",
        extra_body={"seed": 5, "stream": False},
    )
    preset = await client.audio.speech.create(
        model="tts-1",
        voice="Cheerful_Female",
        input=TEXT,
        response_format="pcm",
        extra_body={"seed": 5, "stream": False},
    )
    np.testing.assert_allclose(
        decode(alias.content, "pcm")[0], decode(preset.content, "pcm")[0], atol=2 / 32768
    )


async def test_temperature_zero_is_deterministic_without_seed(client) -> None:
    runs = [
        decode((await _speech(client, seed=None, stream=False, temperature=0.0)).content, "pcm")[0]
        for _ in range(2)
    ]
    np.testing.assert_allclose(runs[0], runs[1], atol=2 / 32768)


@pytest.mark.parametrize("speed", [2.0, 0.5])
async def test_speed_changes_duration(client, speed: float) -> None:
    normal = decode((await _speech(client, stream=False)).content, "pcm")[0]
    fast = decode((await _speech(client, stream=False, speed=speed)).content, "pcm")[0]
    assert len(fast) == pytest.approx(len(normal) / speed, rel=0.05)


async def test_sample_rate_resamples_output(client) -> None:
    normal = decode((await _speech(client, stream=False)).content, "pcm")[0]
    response = await client.audio.speech.with_raw_response.create(
        model="tts-1",
        voice="casual_male",
        input=TEXT,
        response_format="wav",
        extra_body={"seed": 3, "sample_rate": 16000},
    )
    assert response.headers["content-type"] == "audio/wav"
    samples, rate, channels = decode(response.content, "wav")
    assert (rate, channels) == (16000, 1)
    assert abs(len(samples) - len(normal)) <= 24  # decode() brings it back to 24 kHz
    pcm = await client.audio.speech.with_raw_response.create(
        model="tts-1",
        voice="casual_male",
        input=TEXT,
        response_format="pcm",
        extra_body={"sample_rate": 8000},
    )
    assert "rate=8000" in pcm.headers["content-type"]


async def test_max_tokens_caps_frames(client) -> None:
    response = await client.audio.speech.with_raw_response.create(
        model="tts-1",
        voice="casual_male",
        input=TEXT,
        response_format="pcm",
        extra_body={"max_tokens": 3, "stream": False},
    )
    assert int(response.headers["x-usage-output-tokens"]) <= 3
    assert len(response.content) == int(response.headers["x-usage-output-tokens"]) * SPF * 2


@pytest.mark.parametrize("how", [{"stream_format": "sse"}, {"stream": True}])
async def test_sse_events_join_to_the_file(client, how) -> None:
    file = decode((await _speech(client, stream=False)).content, "pcm")[0]
    async with client.audio.speech.with_streaming_response.create(
        model="tts-1", voice="casual_male", input=TEXT, response_format="pcm", extra_body={"seed": 3, **how}
    ) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        lines = [line async for line in response.iter_lines() if line]
    events = [json.loads(line.removeprefix("data: ")) for line in lines]
    assert all(line.startswith("data: ") for line in lines)
    assert [e["type"] for e in events[:-1]] == ["speech.audio.delta"] * (len(events) - 1)
    done = events[-1]
    assert done["type"] == "speech.audio.done"
    audio = b"".join(base64.b64decode(e["audio"]) for e in events[:-1])
    np.testing.assert_allclose(decode(audio, "pcm")[0], file, atol=2 / 32768)
    usage = done["usage"]
    assert usage["output_tokens"] == len(file) // SPF
    assert usage["total_tokens"] == usage["input_tokens"] + usage["output_tokens"] > usage["output_tokens"]


async def test_sse_mp3_deltas_form_a_decodable_file(client) -> None:
    async with client.audio.speech.with_streaming_response.create(
        model="tts-1",
        voice="casual_male",
        input=TEXT,
        response_format="mp3",
        extra_body={"seed": 3, "stream_format": "sse"},
    ) as response:
        events = [json.loads(line[6:]) async for line in response.iter_lines() if line]
    data = b"".join(base64.b64decode(e["audio"]) for e in events if e["type"] == "speech.audio.delta")
    samples, rate, _ = decode(data, "mp3")
    frames = events[-1]["usage"]["output_tokens"]
    assert rate == 24000 and frames * 0.08 - 0.01 <= len(samples) / 24000 <= frames * 0.08 + LOSSY_PADDING_S
