"""What a client sees when generation fails: before the first audio an HTTP error, after it an SSE error
event (or an aborted raw stream). Driven through a real :class:`AudioStream` fed from the engine side."""

from __future__ import annotations

import asyncio
import base64
import json

import numpy as np
import pytest

from speechserve.engine import AudioStream
from speechserve.errors import EngineDead
from speechserve.options import AudioChunk, SynthesisOptions
from speechserve.server.speech.generation import SpeechGeneration, SpeechPlan
from speechserve.server.speech.responses import audio_stream, sse_stream
from speechserve.server.streaming import peek

pytestmark = pytest.mark.anyio


def _generation(fmt: str = "pcm") -> tuple[SpeechGeneration, AudioStream]:
    plan = SpeechPlan(["Hi."], None, None, SynthesisOptions(), None, 1.0, 24000, fmt, 360)
    stream = AudioStream("req-0", 5, asyncio.get_running_loop())
    return SpeechGeneration("gen-test", plan, [stream], 24000, 1920), stream


def _chunk() -> AudioChunk:
    return AudioChunk(np.full(1920, 0.25, np.float32), 24000, 0, 1, False)


async def _body(response) -> list[bytes]:
    return [piece async for piece in response.body_iterator]


async def test_failure_before_first_audio_raises_before_headers() -> None:
    gen, stream = _generation()
    stream.fail(EngineDead("the speech engine stopped: boom"))
    with pytest.raises(EngineDead):
        await peek(gen.samples())
    assert gen.closed and gen.error is not None and not gen.cancelled


async def test_failure_mid_sse_stream_ends_with_an_error_event() -> None:
    gen, stream = _generation()
    stream.deliver(_chunk())
    stream.fail(EngineDead("the speech engine stopped: boom"))
    first, rest = await peek(gen.samples())
    closed = []
    response = sse_stream(gen, first, rest, {}, lambda: closed.append(True))
    events = [json.loads(piece.decode().removeprefix("data: ")) for piece in await _body(response)]
    assert [e["type"] for e in events] == ["speech.audio.delta", "speech.audio.error"]
    assert len(base64.b64decode(events[0]["audio"])) == (1920 - 360) * 2  # the seam tail is held back
    assert events[-1]["error"] == {
        "message": "the speech engine stopped: boom",
        "type": "server_error",
        "param": None,
        "code": "engine_unavailable",
    }
    assert gen.error is not None and not gen.cancelled


async def test_failure_mid_audio_stream_aborts_the_body() -> None:
    gen, stream = _generation("mp3")
    stream.deliver(_chunk())
    stream.fail(EngineDead("boom"))
    first, rest = await peek(gen.samples())
    response = audio_stream(gen, first, rest, {}, lambda: None)
    received = []
    with pytest.raises(EngineDead):
        async for piece in response.body_iterator:
            received.append(piece)
    assert received and received[0][:3] in (b"ID3", b"\xff\xf3", b"\xff\xfb")  # audio had started
