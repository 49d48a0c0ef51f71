"""The three ways a speech response leaves the server: a complete file, raw audio as generated, SSE events.

Streamed responses wait for the first audio before sending headers, so an error in the first frame is still
a proper HTTP error; after that an error ends an SSE stream with a ``speech.audio.error`` event, and aborts
a raw audio stream (the client sees a truncated chunked body, never a silently short file).
"""

from __future__ import annotations

import asyncio
import base64
import logging
from collections.abc import AsyncIterator, Callable

import numpy as np
from fastapi import Request, Response
from starlette.responses import StreamingResponse

from speechserve.audio import StreamingEncoder, content_type, encode_audio
from speechserve.server.errors import error_object
from speechserve.server.speech.generation import SpeechGeneration
from speechserve.server.speech.protocol import (
    SpeechAudioDelta,
    SpeechAudioDone,
    SpeechAudioError,
    SpeechUsage,
)
from speechserve.server.streaming import SSE_HEADERS, ClosingStreamingResponse, sse, unless_gone

log = logging.getLogger("speechserve.server")


async def complete_file(gen: SpeechGeneration, headers: dict[str, str], request: Request) -> Response:
    """Collect the whole utterance and encode it once (exact WAV sizes, gapless mp3, FLAC sample count).

    ``ClientGone`` (generation cancelled) as soon as the client disconnects, queued or generating."""

    async def collect() -> list[np.ndarray]:
        return [x async for x in gen.samples()]

    parts = await unless_gone(request, collect())
    plan = gen.plan
    samples = np.concatenate(parts) if parts else np.zeros(0, np.float32)
    body = await asyncio.to_thread(encode_audio, samples, plan.sample_rate, plan.response_format)
    usage = gen.usage
    headers = headers | {
        "X-Usage-Output-Tokens": str(usage.output_tokens),
        "X-Usage-Total-Tokens": str(usage.total_tokens),
    }
    return Response(body, media_type=content_type(plan.response_format, plan.sample_rate), headers=headers)


async def _encoded(first: np.ndarray | None, rest: AsyncIterator[np.ndarray], enc: StreamingEncoder):
    """Encoder output for every sample block, empty pieces skipped, trailer last."""
    for x in [first] if first is not None else []:
        if data := enc.push(x):
            yield data
    async for x in rest:
        if data := enc.push(x):
            yield data
    if data := enc.finish():
        yield data


def audio_stream(
    gen: SpeechGeneration,
    first: np.ndarray | None,
    rest: AsyncIterator[np.ndarray],
    headers: dict[str, str],
    on_close: Callable[[], None],
) -> StreamingResponse:
    """Raw encoded audio, chunk by chunk as it is generated (chunked transfer encoding)."""
    plan = gen.plan
    encoder = StreamingEncoder(plan.response_format, plan.sample_rate)

    async def body() -> AsyncIterator[bytes]:
        try:
            async for data in _encoded(first, rest, encoder):
                yield data
        except Exception as exc:
            log.error("speech stream %s failed after it started: %s", gen.id, exc)
            raise
        finally:
            encoder.close()

    media_type = content_type(plan.response_format, plan.sample_rate)
    headers = headers | {"Cache-Control": "no-cache"}
    return ClosingStreamingResponse(body(), on_close, media_type=media_type, headers=headers)


def sse_stream(
    gen: SpeechGeneration,
    first: np.ndarray | None,
    rest: AsyncIterator[np.ndarray],
    headers: dict[str, str],
    on_close: Callable[[], None],
) -> StreamingResponse:
    """``speech.audio.delta`` events (base64 of the encoded format), then ``speech.audio.done`` with usage."""
    plan = gen.plan
    encoder = StreamingEncoder(plan.response_format, plan.sample_rate)

    async def body() -> AsyncIterator[bytes]:
        try:
            async for data in _encoded(first, rest, encoder):
                yield sse(SpeechAudioDelta(audio=base64.b64encode(data).decode("ascii")))
            u = gen.usage
            yield sse(SpeechAudioDone(usage=SpeechUsage(**vars(u), total_tokens=u.total_tokens)))
        except Exception as exc:
            log.error("speech stream %s failed after it started: %s", gen.id, exc)
            yield sse(SpeechAudioError(error=error_object(exc)))
        finally:
            encoder.close()

    headers = headers | SSE_HEADERS
    return ClosingStreamingResponse(body(), on_close, media_type="text/event-stream", headers=headers)
