"""HTTP streaming helpers every API family shares: a streaming response that always runs its clean-up,
peeking at a stream's first item (so early errors are still proper HTTP errors), SSE framing, disconnects.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator, Callable
from typing import Any, TypeVar

from fastapi import Request
from pydantic import BaseModel
from starlette.responses import StreamingResponse
from starlette.types import Receive, Scope, Send

CLIENT_CLOSED_REQUEST = 499  # nginx's status for a client that left before the answer
SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
SSE_DONE = b"data: [DONE]\n\n"
T = TypeVar("T")


class ClosingStreamingResponse(StreamingResponse):
    """A streaming response that runs ``on_close`` however it ends (done, failed, client disconnected)."""

    def __init__(self, content: AsyncIterator[bytes], on_close: Callable[[], None], **kwargs) -> None:
        super().__init__(content, **kwargs)
        self._on_close = on_close

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            self._on_close()
            with contextlib.suppress(Exception):
                await self.body_iterator.aclose()  # type: ignore[attr-defined]


async def peek(items: AsyncIterator[T]) -> tuple[T | None, AsyncIterator[T]]:
    """Await the first item (errors raised here become HTTP errors) and return it with the rest."""
    iterator = aiter(items)
    first = await anext(iterator, None)
    return first, iterator


def sse(event: BaseModel | dict[str, Any]) -> bytes:
    """One ``data:`` message (JSON, no ``event:`` line: what OpenAI's clients parse)."""
    data = event.model_dump_json() if isinstance(event, BaseModel) else json.dumps(event, ensure_ascii=False)
    return f"data: {data}\n\n".encode()


async def client_gone(request: Request) -> bool:
    """True once the client has disconnected (non-blocking)."""
    return await request.is_disconnected()
