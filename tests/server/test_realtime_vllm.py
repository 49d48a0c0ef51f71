"""``WS /v1/realtime`` in vLLM's Voxtral events over a plain WebSocket client, on a real uvicorn server.

``session.update {model}``, ``commit`` to start, 16 kHz PCM16 appends, ``commit {final: true}`` to end:
``transcription.delta`` events arrive while the audio is still being sent, and ``transcription.done`` carries
the joined deltas, which are exactly the SDK's offline transcript; one connection runs utterances back to
back; bad input is a flat ``error {error, code}`` and the session goes on; a client that vanishes mid-stream
(abruptly or cleanly) has its engine stream cancelled and its slot freed at once.
"""

from __future__ import annotations

import asyncio
import base64
import json
import time
from typing import Any

import pytest

from ._util import LiveServer, wait_until
from .test_realtime_ws import (
    MAX_BUFFER_SECONDS,
    b64,
    chunks,
    model_id,
    offline,
    pcm16,
    realtime_server,
    recv,
    recv_until,
    running,
    vllm_session,
    ws,
)

from speechserve.testing.realtime_checkpoint import write_random_realtime_checkpoint  # isort: skip

pytestmark = pytest.mark.anyio


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory):
    checkpoint = write_random_realtime_checkpoint(tmp_path_factory.mktemp("rt_vllm"), "mistral", seed=0)
    with realtime_server(checkpoint) as server:
        yield server


def _send(event: dict[str, Any]) -> str:
    return json.dumps(event)


def _append(pcm: Any) -> str:
    return _send({"type": "input_audio_buffer.append", "audio": b64(pcm)})


async def test_vllm_events_stream_text_while_audio_arrives(live: LiveServer) -> None:
    pcm = pcm16(3.0, 21, 16_000)
    events = await vllm_session(live, pcm, None, text_before_end=True)
    types = [e["type"] for e in events]
    assert types[0] == "transcription.delta"  # received before the last append was sent
    assert set(types[:-1]) == {"transcription.delta"} and types[-1] == "transcription.done"
    done = events[-1]
    assert "".join(e["delta"] for e in events[:-1]) == done["text"] == offline(live, pcm, 16_000) != ""
    usage = done["usage"]
    assert usage["completion_tokens"] > 0 and usage["prompt_tokens"] > 0
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]
    assert running(live) == 0 and not live.app.state.registry.models[0].in_flight


async def test_utterances_back_to_back_on_one_connection(live: LiveServer) -> None:
    """vLLM's flow: audio sent before the starting commit is held and heard once it starts."""
    first, second = pcm16(1.5, 22, 16_000), pcm16(2.0, 23, 16_000)
    async with ws(live, "") as conn:
        created = await recv(conn)
        assert created["type"] == "session.created" and created["id"] and created["created"] > 0
        await conn.send(_send({"type": "session.update", "model": model_id(live)}))
        texts = []
        for pcm, start_first in ((first, True), (second, False)):
            if start_first:
                await conn.send(_send({"type": "input_audio_buffer.commit"}))
            for piece in chunks(pcm, 16_000):
                await conn.send(_append(piece))
            if not start_first:
                await conn.send(_send({"type": "input_audio_buffer.commit"}))
            await conn.send(_send({"type": "input_audio_buffer.commit", "final": True}))
            texts.append((await recv_until(conn, "transcription.done"))[-1]["text"])
    assert texts == [offline(live, first, 16_000), offline(live, second, 16_000)]


BAD_VLLM = [  # (event, code)
    ({"type": "input_audio_buffer.append", "audio": "%%%"}, "invalid_audio"),
    ({"type": "input_audio_buffer.append", "audio": base64.b64encode(b"\x00" * 5).decode()}, "invalid_audio"),
    ({"type": "session.update", "model": "no-such-model"}, "model_not_found"),
    ({"type": "session.update", "model": None, "delay": 123}, "invalid_value"),
    ({"type": "input_audio_buffer.commit", "final": True}, "input_audio_buffer_commit_empty"),
    ({"type": "transcription.start"}, "unknown_event"),
]


async def test_bad_input_is_a_flat_error_and_the_session_goes_on(live: LiveServer) -> None:
    async with ws(live, "") as conn:
        await recv(conn)
        await conn.send(_send({"type": "session.update", "model": model_id(live)}))
        for event, code in BAD_VLLM:
            await conn.send(_send(event))
            error = await recv(conn)
            assert error["type"] == "error" and error["code"] == code, (event, error)
            assert isinstance(error["error"], str) and error["error"]
        await conn.send("][")
        assert (await recv(conn))["code"] == "invalid_json"
        # audio held before the starting commit counts against the session's buffer cap
        held = pcm16(MAX_BUFFER_SECONDS * 0.6, 24, 16_000)
        await conn.send(_append(held))
        await conn.send(_append(held))
        assert (await recv(conn))["code"] == "buffer_full"
        await conn.send(_send({"type": "input_audio_buffer.commit"}))
        await conn.send(_send({"type": "input_audio_buffer.commit", "final": True}))
        done = (await recv_until(conn, "transcription.done"))[-1]
    assert done["text"] == offline(live, held, 16_000)  # the refused append was dropped, the session went on
    assert running(live) == 0


@pytest.mark.parametrize("abrupt", [True, False])
async def test_a_vanished_client_frees_its_slot_at_once(live: LiveServer, abrupt: bool) -> None:
    model = live.app.state.registry.models[0]
    slots = model.engine.core.scheduler.slots
    free = slots.n_free
    pcm = pcm16(3.0, 25, 16_000)
    async with ws(live, "") as conn:
        await recv(conn)
        await conn.send(_send({"type": "session.update", "model": model_id(live)}))
        await conn.send(_send({"type": "input_audio_buffer.commit"}))
        for piece in chunks(pcm, 16_000):
            await conn.send(_append(piece))
        assert (await recv(conn))["type"] == "transcription.delta"  # the stream is running on the engine
        (item,) = model.in_flight.values()
        assert running(live) == 1
        gone = time.perf_counter()
        if abrupt:
            conn.transport.abort()  # a reset connection: no close frame
        else:
            await conn.close()
    freed = await asyncio.to_thread(wait_until, lambda: running(live) == 0 and not model.in_flight, 10, 0.001)
    elapsed = time.perf_counter() - gone
    assert freed and elapsed < 2.0, elapsed  # the audio never ended: only the cancel can have stopped it
    assert item.stream.finish_reason == "cancelled"
    assert slots.n_free == free
    async with ws(live, "") as conn:  # and the server goes on
        assert (await recv(conn))["type"] == "session.created"
