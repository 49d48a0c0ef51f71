"""Route of the speech API: parse, hand over to :class:`SpeechService`, return its response."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response

from speechserve.server.openapi import POST, error_responses
from speechserve.server.speech.protocol import CreateSpeechRequest
from speechserve.server.speech.serving import SpeechService

router = APIRouter()
AUDIO_TYPES = ["audio/mpeg", "audio/ogg", "audio/aac", "audio/flac", "audio/wav", "audio/pcm"]
"""Content types of the ``response_format`` choices (``audio/pcm`` carries ``rate``, ``channels``, ``encoding``)."""


def speech_service(request: Request) -> SpeechService:
    return request.app.state.speech


@router.post(
    "/v1/audio/speech",
    response_class=Response,
    responses={
        200: {"content": {t: {} for t in [*AUDIO_TYPES, "text/event-stream"]}},
        **error_responses(*POST, 404, 429),
    },
)
async def create_speech(
    body: CreateSpeechRequest, request: Request, service: Annotated[SpeechService, Depends(speech_service)]
) -> Response:
    """Synthesize ``input`` (OpenAI-compatible): a file, raw audio as generated, or SSE events."""
    return await service.create(body, request)
