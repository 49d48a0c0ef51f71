"""One WebSocket's outgoing side, shared by ``/v1/realtime`` and ``/v1/audio/speech/stream``.

Sends are serialised under a lock (a session's receive loop and its generation tasks all send) and shielded
from cancellation, so a task cancelled mid-send (a barge-in, a closing session) never cuts a frame in two or
reorders events: the frame finishes and later sends queue behind it. A send to a client that is gone is
dropped and marks the connection dead; the receive loop then sees the disconnect and closes the session.
"""

from __future__ import annotations

import asyncio
import logging

from pydantic import BaseModel
from starlette.websockets import WebSocket, WebSocketState

log = logging.getLogger("speechserve.server")

WS_TRY_AGAIN_LATER = 1013
"""Close code for a handshake that arrives while the server shuts down."""


class Connection:
    """Serialised, failure-tolerant sends of events (pydantic models, as JSON text) and audio (bytes).
    Lifetime: the connection. ``label`` names the endpoint in debug logs; ``exclude_none`` drops unset
    fields from events (the speech stream's protocol omits them, the realtime one sends nulls)."""

    def __init__(self, websocket: WebSocket, label: str, exclude_none: bool = False) -> None:
        self.websocket = websocket
        self.label, self.exclude_none = label, exclude_none
        self._lock = asyncio.Lock()
        self.alive = True

    async def send(self, item: BaseModel | bytes) -> None:
        await asyncio.shield(self._send(item))

    async def _send(self, item: BaseModel | bytes) -> None:
        async with self._lock:
            if not self.alive:
                return
            try:
                if isinstance(item, bytes):
                    await self.websocket.send_bytes(item)
                else:
                    await self.websocket.send_text(item.model_dump_json(exclude_none=self.exclude_none))
            except Exception as exc:  # the client is gone (reset, closed): nothing more to tell it
                log.debug("%s send failed: %s", self.label, exc)
                self.alive = False

    async def close(self, code: int) -> None:
        if self.alive and self.websocket.application_state == WebSocketState.CONNECTED:
            self.alive = False
            try:
                await self.websocket.close(code)
            except Exception as exc:
                log.debug("%s close failed: %s", self.label, exc)
