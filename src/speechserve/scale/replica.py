"""What a Ray Serve replica adds to the app: its id on every response, and a start-up that waits for the models.

Nothing here imports Ray; :mod:`speechserve.scale.ray_serve` applies it inside each replica.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from starlette.types import ASGIApp, Message, Receive, Scope, Send

REPLICA_HEADER = "X-Speechserve-Replica"
"""Response header naming the replica that answered (HTTP responses and the WebSocket handshake)."""


class ReplicaHeader:
    """Pure ASGI middleware adding ``X-Speechserve-Replica: <id>`` to every response start and every accepted
    WebSocket (pure ASGI: streamed bodies and disconnects pass through untouched)."""

    def __init__(self, app: ASGIApp, replica_id: str) -> None:
        self.app = app
        self.header = (REPLICA_HEADER.lower().encode(), replica_id.encode("latin-1"))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            return await self.app(scope, receive, send)

        async def send_with_id(message: Message) -> None:
            if message["type"] in ("http.response.start", "websocket.accept"):
                message = {**message, "headers": [*message.get("headers", []), self.header]}
            await send(message)

        await self.app(scope, receive, send_with_id)


def wait_for_models(app: FastAPI) -> None:
    """Make ``app``'s lifespan start-up end only once every model is loaded and warmed up (or raise if one
    failed), so Ray Serve routes no request to a replica that would answer 503 ``loading``: a replica counts
    as started when its ASGI lifespan start-up returns."""
    inner = app.router.lifespan_context

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with inner(app):
            startup = app.state.startup
            await startup.wait()
            if startup.status != "ok":
                raise RuntimeError("a model failed to load in this replica; see its log above")
            yield

    app.router.lifespan_context = lifespan
