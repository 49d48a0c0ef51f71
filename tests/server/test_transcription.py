"""`POST /v1/audio/transcriptions` through the official openai client: every response format carries the
SDK's transcription (subtitles parsed by real parsers), SSE events arrive in OpenAI's order and join to the
same text, and the chunk-timed segments, usage and ignored-field reports are right."""

from __future__ import annotations

import json

import openai
import pytest
import srt
import webvtt

from speechserve import TranscriptionOptions

from ._util import stereo_file, wav_bytes

pytestmark = pytest.mark.anyio

TOKENS = 5  # per 30 s chunk: short generations keep the tests fast
LONG = wav_bytes(35.0)  # two chunks: segments 0–30 s and 30–35 s


@pytest.fixture(scope="module")
def sdk_result(tiny_asr):
    """What the SDK's one-request loop makes of the same file (greedy)."""
    return tiny_asr.transcribe(LONG, TranscriptionOptions(max_tokens=TOKENS))


async def _create(client: openai.AsyncOpenAI, fmt: str, **kwargs):
    return await client.audio.transcriptions.create(
        model="whisper-1",
        file=("talk.wav", LONG, "audio/wav"),
        response_format=fmt,  # type: ignore[arg-type]
        extra_body={"max_tokens": TOKENS},
        **kwargs,
    )


async def test_json_is_the_sdk_text_with_duration_usage(asr_client, sdk_result) -> None:
    result = await _create(asr_client, "json")
    assert result.text == sdk_result.text and result.text.strip()
    assert result.usage is not None and result.usage.type == "duration" and result.usage.seconds == 35.0


async def test_text_is_the_bare_text(asr_client, sdk_result) -> None:
    assert await _create(asr_client, "text") == sdk_result.text


async def test_srt_cues_follow_the_chunks(asr_client, sdk_result) -> None:
    cues = list(srt.parse(await _create(asr_client, "srt")))
    assert [(c.start.total_seconds(), c.end.total_seconds()) for c in cues] == [(0.0, 30.0), (30.0, 35.0)]
    assert [c.content for c in cues] == [s.text.strip() for s in sdk_result.segments]


async def test_vtt_cues_follow_the_chunks(asr_client, sdk_result) -> None:
    body = await _create(asr_client, "vtt")
    captions = webvtt.from_string(body).captions
    assert [(c.start, c.end) for c in captions] == [
        ("00:00:00.000", "00:00:30.000"),
        ("00:00:30.000", "00:00:35.000"),
    ]
    assert [c.text for c in captions] == [s.text.strip() for s in sdk_result.segments]


async def test_verbose_json_has_one_segment_per_chunk(asr_client, sdk_result) -> None:
    result = await _create(asr_client, "verbose_json", timestamp_granularities=["segment"], language="en")
    assert result.duration == 35.0 and result.language == "en"
    assert [(s.id, s.start, s.end, s.seek) for s in result.segments] == [
        (0, 0.0, 30.0, 0),
        (1, 30.0, 35.0, 3000),
    ]
    assert all(s.avg_logprob < 0 and len(s.tokens) == TOKENS for s in result.segments)
    assert result.words is None  # Voxtral gives no word timings
    english = (await _create(asr_client, "json", language="en")).text
    assert result.text == english


async def test_stream_events_arrive_in_order_and_join(asr_client, sdk_result) -> None:
    stream = await _create(asr_client, "json", stream=True)
    events = [event async for event in stream]
    *deltas, done = events
    assert deltas and {e.type for e in deltas} == {"transcript.text.delta"}
    assert done.type == "transcript.text.done"
    assert "".join(e.delta for e in deltas) == done.text == sdk_result.text
    assert [e.segment_id for e in deltas] == sorted(e.segment_id for e in deltas)
    u = sdk_result.usage
    assert (done.usage.input_tokens, done.usage.output_tokens) == (u.prompt_tokens, u.completion_tokens)


async def test_stream_ends_with_done_marker(asr_http) -> None:
    files = {"file": ("a.wav", wav_bytes(1.0), "audio/wav")}
    data = {"model": "whisper-1", "stream": "true", "max_tokens": "3"}
    response = await asr_http.post("/v1/audio/transcriptions", files=files, data=data)
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/event-stream")
    messages = [m for m in response.text.split("\n\n") if m]
    assert messages[-1] == "data: [DONE]"
    kinds = [json.loads(m.removeprefix("data: "))["type"] for m in messages[:-1]]
    assert kinds[-1] == "transcript.text.done" and set(kinds[:-1]) <= {"transcript.text.delta"}


async def test_unused_fields_are_reported(asr_http) -> None:
    files = {"file": ("a.wav", wav_bytes(1.0), "audio/wav")}
    data = {"prompt": "Context.", "max_tokens": "2", "chunking_strategy": "auto", "include[]": "logprobs"}
    response = await asr_http.post("/v1/audio/transcriptions", files=files, data=data)
    assert response.status_code == 200, response.text
    assert response.headers["x-ignored-fields"] == "prompt, include, chunking_strategy"
    assert response.headers["x-generation-id"].startswith("trsc-")


@pytest.mark.parametrize(
    ("name", "container", "codec", "rate"),
    [
        ("talk.flac", "flac", "flac", 44100),
        ("talk.ogg", "ogg", "libopus", 48000),
        ("talk.mp3", "mp3", "libmp3lame", 22050),
    ],
)
async def test_compressed_stereo_uploads_at_other_rates(
    asr_client, tiny_asr, name, container, codec, rate
) -> None:
    data = stereo_file(3.0, rate, container, codec)
    result = await asr_client.audio.transcriptions.create(
        model="whisper-1", file=(name, data), extra_body={"max_tokens": 3}
    )
    assert abs(result.usage.seconds - 3.0) < 0.06
    assert result.text == tiny_asr.transcribe(data, TranscriptionOptions(max_tokens=3)).text


async def test_a_failure_mid_stream_ends_with_an_error_event(asr_app, asr_http, monkeypatch) -> None:
    pipeline = asr_app.state.registry.models[0].pipeline
    original, calls = pipeline.prompt_embeddings, []

    def second_chunk_fails(prompt):
        calls.append(prompt)
        if len(calls) == 2:
            raise RuntimeError("encoder exploded")
        return original(prompt)

    monkeypatch.setattr(pipeline, "prompt_embeddings", second_chunk_fails)
    data = {"model": "whisper-1", "stream": "true", "max_tokens": str(TOKENS)}
    response = await asr_http.post("/v1/audio/transcriptions", files={"file": ("a.wav", LONG)}, data=data)
    assert response.status_code == 200  # the first chunk's text was already on its way
    raw = [m.removeprefix("data: ") for m in response.text.split("\n\n") if m]
    messages = [json.loads(m) for m in raw[:-1]]
    assert response.text.endswith("data: [DONE]\n\n")
    assert {m["type"] for m in messages[:-1]} == {"transcript.text.delta"}
    assert {m["segment_id"] for m in messages[:-1]} == {0}
    last = messages[-1]
    assert last["type"] == "error" and last["error"]["type"] == "server_error"
    assert "exploded" not in last["error"]["message"]  # internals are not leaked
    monkeypatch.undo()
    ok = await asr_http.post("/v1/audio/transcriptions", files={"file": ("a.wav", LONG)}, data=data)
    assert ok.status_code == 200 and ok.text.endswith("data: [DONE]\n\n")  # the engine kept serving
