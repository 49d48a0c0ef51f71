"""Routes of the speech-to-text API: hand the multipart request to :class:`TranscriptionService`.

The body is read by the service (not declared as FastAPI form parameters) so the upload cap applies while
it streams in; ``openapi_extra`` documents the form for ``/docs``.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response

from speechserve.server.openapi import POST, error_responses
from speechserve.server.transcription.protocol import TranscriptionRequest, TranslationRequest
from speechserve.server.transcription.serving import TranscriptionService

router = APIRouter()
_TEXT = {"application/json": {}, "text/plain": {}, "text/event-stream": {}}
TRANSCRIPTIONS, TRANSLATIONS = "/v1/audio/transcriptions", "/v1/audio/translations"
UPLOAD_PATHS = frozenset({TRANSCRIPTIONS, TRANSLATIONS})
"""Routes whose body is a multipart upload (capped by ``max_upload_mb``, see ``gate.py``)."""


def transcription_service(request: Request) -> TranscriptionService:
    return request.app.state.transcription


def _form_schema(model: type) -> dict:
    schema = model.model_json_schema(by_alias=True)  # type: ignore[attr-defined]
    schema["properties"] = {"file": {"type": "string", "format": "binary"}} | schema["properties"]
    schema["required"] = ["file"]
    return {"requestBody": {"required": True, "content": {"multipart/form-data": {"schema": schema}}}}


@router.post(
    TRANSCRIPTIONS,
    response_class=Response,
    responses={200: {"content": _TEXT}, **error_responses(*POST, 404, 429)},
    openapi_extra=_form_schema(TranscriptionRequest),
)
async def create_transcription(
    request: Request, service: Annotated[TranscriptionService, Depends(transcription_service)]
) -> Response:
    """Transcribe an uploaded audio file (OpenAI-compatible): json, text, srt, vtt, verbose_json, or SSE."""
    return await service.create(request)


@router.post(
    TRANSLATIONS,
    response_class=Response,
    responses=error_responses(*POST, 404),
    openapi_extra=_form_schema(TranslationRequest),
)
async def create_translation(
    request: Request, service: Annotated[TranscriptionService, Depends(transcription_service)]
) -> Response:
    """Translate audio into English: 400 on Voxtral (no translation task in its transcription prompt)."""
    return await service.translate(request)
