"""``WS /v1/realtime``: accept the connection, pump client messages into a :class:`RealtimeSession`, send its
events, and cancel everything it runs when the client goes away — cleanly or not.

The API key was checked by the request gate before the handshake reached this code (``gate.py``). Events
are sent one at a time under a lock (the receive loop and every utterance's text task send), in the order
they were produced. A send to a client that is gone is dropped; the receive loop then sees the disconnect
and closes the session, which cancels its engine streams (each slot is freed at the engine's next step).
"""

from __future__ import annotations

import logging

from starlette.websockets import WebSocket

from speechserve.server.gate import KEY_SUBPROTOCOL, websocket_subprotocols
from speechserve.server.metrics import ServerMetrics
from speechserve.server.realtime.session import RealtimeSession
from speechserve.server.settings import ServerSettings
from speechserve.server.state import ModelRegistry
from speechserve.server.ws_connection import WS_TRY_AGAIN_LATER, Connection

log = logging.getLogger("speechserve.server")

SUBPROTOCOL = "realtime"
"""Echoed when offered (browsers offer it next to ``openai-insecure-api-key.<key>``, which is never echoed)."""
WS_POLICY_VIOLATION = 1008


def subprotocol(websocket: WebSocket) -> str | None:
    offered = [p for p in websocket_subprotocols(websocket.scope) if not p.startswith(KEY_SUBPROTOCOL)]
    return SUBPROTOCOL if SUBPROTOCOL in offered else None


class RealtimeService:
    """Serves realtime sessions. Lifetime: one connection (cheap; built per connection from the app state)."""

    def __init__(
        self, settings: ServerSettings, registry: ModelRegistry | None, metrics: ServerMetrics
    ) -> None:
        self.settings, self.registry, self.metrics = settings, registry, metrics

    async def serve(self, websocket: WebSocket) -> None:
        if self.registry is None:  # shutting down (the gate refuses while loading)
            await websocket.close(WS_TRY_AGAIN_LATER)
            return
        await websocket.accept(subprotocol=subprotocol(websocket))
        connection = Connection(websocket, "realtime")
        session = RealtimeSession(
            self.settings, self.registry, self.metrics, connection.send, dict(websocket.query_params)
        )
        code = 1000
        try:
            if await session.open():
                await self._receive(websocket, session, connection)
            else:
                code = WS_POLICY_VIOLATION
        except Exception:
            log.exception("realtime session %s failed", session.id)
            code = 1011
        finally:
            await session.close()
            await connection.close(code)

    @staticmethod
    async def _receive(websocket: WebSocket, session: RealtimeSession, connection: Connection) -> None:
        """Client messages into the session until the client disconnects."""
        while connection.alive:
            message = await websocket.receive()
            if message["type"] == "websocket.disconnect":
                connection.alive = False
                return
            text = message.get("text")
            if text is None:
                await session.binary()
            else:
                await session.handle(text)
