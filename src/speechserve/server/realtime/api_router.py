"""Route of the realtime API: ``WS /v1/realtime``, handed to :class:`RealtimeService`."""

from __future__ import annotations

from fastapi import APIRouter, WebSocket

from speechserve.server.realtime.serving import RealtimeService

router = APIRouter()
REALTIME = "/v1/realtime"


@router.websocket(REALTIME)
async def realtime(websocket: WebSocket) -> None:
    """Live transcription sessions: OpenAI's transcription-session events or vLLM's (told apart by the
    events); PCM16 in, text deltas out while the audio still arrives."""
    state = websocket.app.state
    await RealtimeService(state.settings, state.registry, state.metrics).serve(websocket)
