"""``WS /v1/audio/speech/stream``: text in as an LLM writes it, audio out sentence by sentence (vLLM-Omni's
protocol, see ``stream_protocol.py``), handed to a :class:`StreamSession`.

The API key was checked by the request gate before the handshake reached this code (``gate.py``), as for
``/v1/realtime``. Sends are serialised under a lock and shielded from cancellation, so a barge-in that stops
the speaker mid-send never cuts a frame in two or reorders events. When the client goes away, cleanly or
not, the session is closed and every generation it had in the engine is cancelled (each slot is freed at the
engine's next step).
"""

from __future__ import annotations

import asyncio
import logging

from fastapi import APIRouter, WebSocket

from speechserve.server.speech import stream_protocol as p
from speechserve.server.speech.stream_config import StreamError
from speechserve.server.speech.stream_protocol import STREAM_PATH
from speechserve.server.speech.stream_session import Drain, StreamSession
from speechserve.server.ws_connection import WS_TRY_AGAIN_LATER, Connection

log = logging.getLogger("speechserve.server")
router = APIRouter()


@router.websocket(STREAM_PATH)
async def speech_stream(websocket: WebSocket) -> None:
    """Streaming text-to-speech for voice agents (vLLM-Omni's events, plus ``input.cancel``)."""
    service = getattr(websocket.app.state, "speech", None)
    if websocket.app.state.registry is None or service is None:  # shutting down
        await websocket.close(WS_TRY_AGAIN_LATER)
        return
    await websocket.accept()
    connection = Connection(websocket, "speech stream", exclude_none=True)
    session = StreamSession(service, connection.send)
    session.start()
    code = 1000
    try:
        await _receive(websocket, session, connection)
    except Exception:
        log.exception("speech stream session failed")
        code = 1011
    finally:
        await session.close()
        await connection.close(code)


async def _receive(websocket: WebSocket, session: StreamSession, connection: Connection) -> None:
    """Client messages into the session until the client disconnects, closes the session, or leaves it idle
    (no event for ``speech_stream_idle_timeout_s`` while nothing is queued or spoken)."""
    idle = session.settings.speech_stream_idle_timeout_s
    while connection.alive:
        # one receive task, waited on in periods: a period's end never cancels a receive (no message lost)
        incoming = asyncio.ensure_future(websocket.receive())
        try:
            while not incoming.done():
                await asyncio.wait([incoming], timeout=idle)
                if not incoming.done() and not session.busy:
                    why = f"no event for {idle:g} s and nothing to speak: closing (speech_stream_idle_timeout_s)"
                    await session.error(StreamError(p.IDLE_TIMEOUT, why))
                    return
        finally:
            incoming.cancel()
        message = incoming.result()
        if message["type"] == "websocket.disconnect":
            connection.alive = False
            return
        text = message.get("text")
        if text is None:
            await session.binary()
            continue
        drain = await session.handle(text)
        if drain is not None:
            await _until_drained(websocket, drain, connection)
            return


async def _until_drained(websocket: WebSocket, drain: Drain, connection: Connection) -> None:
    """``session.close``: wait until everything flushed before it was sent, unless the client leaves first."""
    left = asyncio.ensure_future(websocket.receive())
    try:
        await asyncio.wait([drain.done, left], return_when=asyncio.FIRST_COMPLETED)
    finally:
        left.cancel()
    if left.done() and not left.cancelled() and left.result()["type"] == "websocket.disconnect":
        connection.alive = False
