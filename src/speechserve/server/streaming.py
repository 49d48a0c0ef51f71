"""HTTP streaming helpers every API family shares: a streaming response that always runs its clean-up,
peeking at a stream's first item (so early errors are still proper HTTP errors), SSE framing, disconnects.

Disconnects before the first byte: while a response waits for its first output (queued in the engine, or
being prefilled) or collects a whole answer, nothing is sent, so nothing would notice a client that hangs up
— its request would keep its queue place (and its slot) until generation reached it. :func:`unless_gone`
therefore waits on the ASGI receive channel too: an ``http.disconnect`` there cancels the wait at once (the
generation's iterator is closed, which cancels its engine requests: the engine drops a cancelled waiting
request at its next step) and raises :class:`ClientGone`, answered with 499.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, TypeVar

from fastapi import Request
from pydantic import BaseModel
from starlette.responses import StreamingResponse
from starlette.types import Receive, Scope, Send

CLIENT_CLOSED_REQUEST = 499  # nginx's status for a client that left before the answer
SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
SSE_DONE = b"data: [DONE]\n\n"
T = TypeVar("T")
log = logging.getLogger("speechserve.server")


class ClientGone(Exception):
    """The client disconnected before its response started; its generation has been cancelled."""


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


async def peek(items: AsyncIterator[T], request: Request | None = None) -> tuple[T | None, AsyncIterator[T]]:
    """Await the first item (errors raised here become HTTP errors) and return it with the rest. With the
    ``request``: :class:`ClientGone` when its client leaves first (the iterator is closed then)."""
    iterator = aiter(items)

    async def first() -> T | None:
        return await anext(iterator, None)

    return await (first() if request is None else unless_gone(request, first())), iterator


async def disconnected(request: Request) -> None:
    """Return once the client has gone: an ``http.disconnect`` on the ASGI receive channel (the request body
    has been read by then, so nothing else is waiting on that channel)."""
    while (await request.receive())["type"] != "http.disconnect":
        pass


async def unless_gone(request: Request, work: Awaitable[T]) -> T:
    """``await work`` while watching the connection: when the client disconnects first, ``work`` is cancelled
    (and awaited, so the generation it was reading has been closed) and :class:`ClientGone` raised."""
    task = asyncio.ensure_future(work)
    watch = asyncio.ensure_future(disconnected(request))
    try:
        await asyncio.wait((task, watch), return_when=asyncio.FIRST_COMPLETED)
        if not task.done() and watch.exception() is not None:  # cannot watch: just wait
            log.warning("cannot watch the client's connection: %s", watch.exception())
            await asyncio.wait((task,))
    finally:  # also when this coroutine is itself cancelled
        gone = not task.done()
        for t in (task, watch):
            t.cancel()
        await asyncio.gather(task, watch, return_exceptions=True)
    if gone:
        raise ClientGone()
    return task.result()


def sse(event: BaseModel | dict[str, Any]) -> bytes:
    """One ``data:`` message (JSON, no ``event:`` line: what OpenAI's clients parse)."""
    data = event.model_dump_json() if isinstance(event, BaseModel) else json.dumps(event, ensure_ascii=False)
    return f"data: {data}\n\n".encode()
