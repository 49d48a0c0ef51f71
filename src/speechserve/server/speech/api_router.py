"""Route of the speech API: parse, hand over to :class:`SpeechService`, return its response."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response

from speechserve.server.speech.protocol import CreateSpeechRequest
from speechserve.server.speech.serving import SpeechService

router = APIRouter()


def speech_service(request: Request) -> SpeechService:
    return request.app.state.speech


@router.post(
    "/v1/audio/speech",
    response_class=Response,
    responses={200: {"content": {"audio/mpeg": {}, "audio/pcm": {}, "text/event-stream": {}}}},
)
async def create_speech(
    body: CreateSpeechRequest, request: Request, service: Annotated[SpeechService, Depends(speech_service)]
) -> Response:
    """Synthesize ``input`` (OpenAI-compatible): a file, raw audio as generated, or SSE events."""
    return await service.create(body, request)
