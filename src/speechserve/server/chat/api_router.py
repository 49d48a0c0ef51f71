"""Route of the chat API: parse, hand over to :class:`ChatService`, return its response."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response

from speechserve.server.chat.protocol import ChatCompletionRequest
from speechserve.server.chat.serving import ChatService
from speechserve.server.openapi import POST, error_responses

router = APIRouter()


def chat_service(request: Request) -> ChatService:
    return request.app.state.chat


@router.post(
    "/v1/chat/completions",
    response_class=Response,
    responses={
        200: {"content": {"application/json": {}, "text/event-stream": {}}},
        **error_responses(*POST, 404, 429),
    },
)
async def create_chat_completion(
    body: ChatCompletionRequest, request: Request, service: Annotated[ChatService, Depends(chat_service)]
) -> Response:
    """Answer a chat whose user turns may carry audio (``input_audio`` or ``audio_url`` parts)."""
    return await service.create(body, request)
