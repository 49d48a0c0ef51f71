"""``WS /v1/realtime`` in OpenAI's dialect, on a real uvicorn server with a tiny Voxtral Realtime model.

The official ``openai`` client's transcription session gets its events in order, text deltas while the audio
is still arriving, and a completed transcript that is the joined deltas and exactly the SDK's offline
transcript of the same audio (24 kHz resampled inside, or 16 kHz); items commit, clear and follow each other
in one session; the beta ``transcription_session.update`` works; the API key is checked on the handshake
(header or browser subprotocol); every bad input is an ``error`` event with a code and the session goes on;
eight sessions in both dialects run at once and each gets its own transcript; the realtime model also
answers a chat with audio by transcribing it.
"""

from __future__ import annotations

import asyncio
import base64
import json
from pathlib import Path
from typing import Any

import numpy as np
import openai
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from ._util import LiveServer, make_settings, noise, wav_bytes

from speechserve.server import create_app  # isort: skip
from speechserve.testing.realtime_checkpoint import write_random_realtime_checkpoint  # isort: skip

pytestmark = pytest.mark.anyio

KEY = "sk-realtime"
MAX_EVENT_MB = 0.5
MAX_BUFFER_SECONDS = 5.0
DELTA = "conversation.item.input_audio_transcription.delta"
COMPLETED = "conversation.item.input_audio_transcription.completed"


@pytest.fixture(scope="module")
def realtime_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_random_realtime_checkpoint(tmp_path_factory.mktemp("rt_ws"), "mistral", seed=0)


def realtime_server(checkpoint: Path) -> LiveServer:
    settings = make_settings(
        checkpoint, api_keys=[KEY], realtime_max_event_mb=MAX_EVENT_MB,
        realtime_max_buffer_seconds=MAX_BUFFER_SECONDS,
    )  # fmt: skip
    return LiveServer(create_app(settings))


@pytest.fixture(scope="module")
def live(realtime_checkpoint: Path):
    with realtime_server(realtime_checkpoint) as server:
        yield server


# ---- helpers (the vLLM tests use them too) --------------------------------------------------------------------
def pcm16(seconds: float, seed: int, rate: int) -> np.ndarray:
    """Noise as the int16 samples a client sends (the tiny random model turns anything into text)."""
    return np.round(np.clip(noise(seconds, seed, rate), -1, 1) * 32767).astype("<i2")


def b64(pcm: np.ndarray) -> str:
    return base64.b64encode(pcm.astype("<i2").tobytes()).decode()


def chunks(pcm: np.ndarray, rate: int, seconds: float = 0.1) -> list[np.ndarray]:
    step = int(rate * seconds)
    return [pcm[i : i + step] for i in range(0, len(pcm), step)]


def offline(live: LiveServer, pcm: np.ndarray, rate: int, delay: Any = None) -> str:
    """The SDK's transcript of the same samples (the engine is idle while the test asks)."""
    pipeline = live.app.state.registry.models[0].pipeline
    return pipeline.transcribe((pcm.astype(np.float32) / 32768, rate), delay=delay).text


def ws_url(live: LiveServer, query: str = "") -> str:
    return live.url.replace("http://", "ws://", 1) + "/v1/realtime" + query


def ws(live: LiveServer, query: str = "?intent=transcription", **kwargs: Any) -> Any:
    """A plain WebSocket client with the key."""
    return connect(ws_url(live, query), additional_headers={"Authorization": f"Bearer {KEY}"}, max_size=None, **kwargs)  # fmt: skip


async def recv(conn: Any, timeout: float = 60) -> dict[str, Any]:
    return json.loads(await asyncio.wait_for(conn.recv(), timeout))


async def recv_until(conn: Any, kind: str, timeout: float = 120) -> list[dict[str, Any]]:
    """Events up to and including the first of type ``kind``."""
    events = []
    while not events or events[-1]["type"] != kind:
        events.append(await recv(conn, timeout))
    return events


def running(live: LiveServer) -> int:
    return live.app.state.registry.models[0].engine.stats().running


def model_id(live: LiveServer) -> str:
    return live.app.state.registry.models[0].id


# ---- the official client ---------------------------------------------------------------------------------------
async def openai_session(
    live: LiveServer, pcm: np.ndarray, rate: int, transcription: dict[str, Any], wait_for_text: bool = True
) -> tuple[list[Any], int]:
    """One utterance through ``client.realtime.connect``: (every event, how many had arrived before the last
    append). With ``wait_for_text`` the last append waits until a delta has arrived."""
    client = openai.AsyncOpenAI(base_url=f"{live.url}/v1", api_key=KEY, max_retries=0)
    events: list[Any] = []
    text_arrived = asyncio.Event()
    async with client.realtime.connect(model=model_id(live), extra_query={"intent": "transcription"}) as conn:

        async def read() -> None:
            async for event in conn:
                events.append(event)
                if event.type == DELTA:
                    text_arrived.set()
                if event.type in (COMPLETED, "error"):
                    return

        reader = asyncio.create_task(read())
        audio_format = {"type": "audio/pcm", "rate": rate}
        await conn.session.update(session={"type": "transcription", "audio": {"input": {"format": audio_format, "transcription": transcription}}})  # fmt: skip
        pieces = chunks(pcm, rate)
        for piece in pieces[:-1]:
            await conn.input_audio_buffer.append(audio=b64(piece))
            await asyncio.sleep(0.005)
        if wait_for_text:
            await asyncio.wait_for(text_arrived.wait(), 60)
        before_last = len(events)
        await conn.input_audio_buffer.append(audio=b64(pieces[-1]))
        await conn.input_audio_buffer.commit()
        await asyncio.wait_for(reader, 120)
    await client.close()
    return events, before_last


@pytest.mark.parametrize(
    ("rate", "transcription", "delay_ms"),
    [(24_000, {"delay": "low"}, 240), (16_000, {"delay_ms": 800, "language": "en"}, 800)],
)
async def test_openai_client_gets_text_while_audio_arrives_and_the_offline_transcript(
    live: LiveServer, rate: int, transcription: dict[str, Any], delay_ms: int
) -> None:
    pcm = pcm16(3.0, 1, rate)
    events, before_last = await openai_session(live, pcm, rate, transcription | {"model": model_id(live)})
    types = [e.type for e in events]
    assert types[:2] == ["session.created", "session.updated"] and types[-1] == COMPLETED, types
    assert set(types[2:-1]) == {DELTA, "input_audio_buffer.committed"}
    assert types.count("input_audio_buffer.committed") == 1
    assert DELTA in types[:before_last]  # text came while the audio was still arriving
    shown = events[1].session.audio.input
    assert (shown.format.rate, shown.transcription.delay_ms) == (rate, delay_ms)
    committed, completed = events[types.index("input_audio_buffer.committed")], events[-1]
    assert {e.item_id for e in events if e.type == DELTA} == {committed.item_id} == {completed.item_id}
    deltas = "".join(e.delta for e in events if e.type == DELTA)
    expected = offline(live, pcm, rate, transcription.get("delay_ms", transcription.get("delay")))
    assert deltas == completed.transcript == expected != ""
    usage = completed.usage
    assert usage.type == "tokens" and usage.output_tokens > 0
    assert usage.total_tokens == usage.input_tokens + usage.output_tokens
    assert running(live) == 0 and not live.app.state.registry.models[0].in_flight


async def test_items_commit_clear_and_follow_each_other(live: LiveServer) -> None:
    first, dropped, second = pcm16(1.5, 2, 24_000), pcm16(1.0, 3, 24_000), pcm16(2.0, 4, 24_000)
    async with ws(live) as conn:
        assert (await recv(conn))["type"] == "session.created"
        for pcm in (first,):
            await conn.send(json.dumps({"type": "input_audio_buffer.append", "audio": b64(pcm)}))
        await conn.send(json.dumps({"type": "input_audio_buffer.commit"}))
        a = await recv_until(conn, COMPLETED)
        await conn.send(json.dumps({"type": "input_audio_buffer.append", "audio": b64(dropped)}))
        await conn.send(json.dumps({"type": "input_audio_buffer.clear"}))
        cleared = await recv_until(conn, "input_audio_buffer.cleared")
        await conn.send(json.dumps({"type": "input_audio_buffer.append", "audio": b64(second)}))
        await conn.send(json.dumps({"type": "input_audio_buffer.commit"}))
        b = await recv_until(conn, COMPLETED)
    committed_a = next(e for e in a if e["type"] == "input_audio_buffer.committed")
    committed_b = next(e for e in b if e["type"] == "input_audio_buffer.committed")
    assert (
        committed_a["previous_item_id"] is None and committed_b["previous_item_id"] == committed_a["item_id"]
    )
    assert a[-1]["item_id"] == committed_a["item_id"] != b[-1]["item_id"] == committed_b["item_id"]
    assert a[-1]["transcript"] == offline(live, first, 24_000)
    assert b[-1]["transcript"] == offline(live, second, 24_000)
    assert all(e["type"] == DELTA for e in cleared[:-1])  # the cleared item never completes
    assert b[-1]["transcript"] == "".join(e["delta"] for e in b if e["type"] == DELTA)


async def test_beta_transcription_session_update(live: LiveServer) -> None:
    """LiveKit's OpenAI plugin sends the beta event (with server VAD, which is accepted and not used)."""
    pcm = pcm16(2.0, 5, 24_000)
    session = {
        "input_audio_format": "pcm16",
        "input_audio_transcription": {"model": "gpt-4o-mini-transcribe", "prompt": "", "language": "en"},
        "turn_detection": {"type": "server_vad", "threshold": 0.5, "silence_duration_ms": 350},
    }
    async with ws(live) as conn:
        await recv(conn)
        await conn.send(json.dumps({"type": "transcription_session.update", "session": session}))
        updated = await recv(conn)
        for piece in chunks(pcm, 24_000):
            await conn.send(json.dumps({"type": "input_audio_buffer.append", "audio": b64(piece)}))
        await conn.send(json.dumps({"type": "input_audio_buffer.commit"}))
        events = await recv_until(conn, COMPLETED)
    assert updated["type"] == "transcription_session.updated"
    assert (
        updated["session"]["input_audio_format"] == "pcm16" and updated["session"]["turn_detection"] is None
    )
    assert events[-1]["transcript"] == offline(live, pcm, 24_000)


# ---- access ----------------------------------------------------------------------------------------------------
async def test_the_handshake_needs_the_key(live: LiveServer) -> None:
    for headers in ({}, {"Authorization": "Bearer sk-wrong"}):
        with pytest.raises(InvalidStatus) as refused:
            async with connect(ws_url(live), additional_headers=headers):
                pass
        assert refused.value.response.status_code == 401
        assert json.loads(refused.value.response.body)["error"]["code"] == "invalid_api_key"
    browser = ["realtime", f"openai-insecure-api-key.{KEY}", "openai-beta.realtime-v1"]
    async with connect(ws_url(live, "?intent=transcription"), subprotocols=browser) as conn:
        assert conn.subprotocol == "realtime"  # the key is never echoed
        assert (await recv(conn))["type"] == "session.created"
    with pytest.raises(InvalidStatus):
        async with connect(ws_url(live), subprotocols=["realtime", "openai-insecure-api-key.sk-wrong"]):
            pass


# ---- bad input -------------------------------------------------------------------------------------------------
def _append(audio: str) -> dict[str, Any]:
    return {"type": "input_audio_buffer.append", "audio": audio}


def _update(**audio_input: Any) -> dict[str, Any]:
    return {"type": "session.update", "session": {"type": "transcription", "audio": {"input": audio_input}}}


TOO_BIG = "A" * int(MAX_EVENT_MB * 1_000_000 + 8)
FORMAT = "session.audio.input.format"
DELAY = "session.audio.input.transcription.delay"
PCM_16K = {"type": "audio/pcm", "rate": 16_000}
BAD_OPENAI = [  # (events sent, code of the error answering the last, its param)
    ([_append(TOO_BIG)], "event_too_large", None),
    ([_append("not base64!")], "invalid_audio", "audio"),
    ([_append(base64.b64encode(b"\x01\x02\x03").decode())], "invalid_audio", "audio"),
    ([{"type": "input_audio_buffer.append"}], "missing_required_parameter", "audio"),
    ([_update(format={"type": "audio/pcm", "rate": 44_100})], "unsupported_audio_format", f"{FORMAT}.rate"),
    ([_update(format={"type": "audio/pcmu"})], "unsupported_audio_format", f"{FORMAT}.type"),
    ([_update(transcription={"delay": "fastest"})], "invalid_value", DELAY),
    ([_update(transcription={"delay_ms": 100})], "invalid_value", DELAY),
    ([_update(transcription={"model": "no-such-model"})], "model_not_found", "model"),
    ([_update(transcription={"language": "klingon"})], "invalid_value", "language"),
    ([{"type": "session.update", "session": {"type": "realtime"}}], "unsupported", "session.type"),
    ([{"type": "session.update", "session": "transcription"}], "invalid_value", "session"),
    ([{"type": "input_audio_buffer.commit"}], "input_audio_buffer_commit_empty", None),
    ([_append(b64(pcm16(0.2, 6, 24_000))), _update(format=PCM_16K)], "invalid_state", "session"),
    ([_append(b64(pcm16(MAX_BUFFER_SECONDS + 1, 7, 24_000)))], "buffer_full", "audio"),
    ([{"type": "response.create"}], "unsupported_event", "type"),
    ([{"type": "no.such.event"}], "unknown_event", "type"),
    ([{"audio": "AAAA"}], "invalid_event", "type"),
]


async def test_bad_input_is_an_error_event_and_the_session_goes_on(live: LiveServer) -> None:
    async with ws(live) as conn:
        await recv(conn)
        for events, code, param in BAD_OPENAI:
            for event in events:
                await conn.send(json.dumps(event | {"event_id": "evt_client"}))
            error = next(e for e in await recv_until(conn, "error") if e["type"] == "error")
            assert error["error"]["code"] == code and error["error"]["param"] == param, (events[-1], error)
            sent_id = None if code == "event_too_large" else "evt_client"  # too large to be read at all
            assert error["error"]["event_id"] == sent_id and error["error"]["message"]
            assert error["error"]["type"] == "invalid_request_error" and error["event_id"] != "evt_client"
            await conn.send(json.dumps({"type": "input_audio_buffer.clear"}))
            await recv_until(conn, "input_audio_buffer.cleared")
        for raw, code in (("{not json", "invalid_json"), (b"\x00\x01", "invalid_event")):
            await conn.send(raw)
            assert (await recv(conn))["error"]["code"] == code
        pcm = pcm16(1.5, 8, 24_000)  # the same session still transcribes
        await conn.send(json.dumps(_append(b64(pcm))))
        await conn.send(json.dumps({"type": "input_audio_buffer.commit"}))
        events = await recv_until(conn, COMPLETED)
    assert not [e for e in events if e["type"] == "error"]
    assert events[-1]["transcript"] == offline(live, pcm, 24_000)
    assert running(live) == 0


# ---- many at once ----------------------------------------------------------------------------------------------
async def vllm_session(
    live: LiveServer, pcm: np.ndarray, delay: Any, text_before_end: bool = True
) -> list[dict]:
    """One utterance in vLLM's events over a plain WebSocket (16 kHz PCM16)."""
    async with ws(live, "") as conn:
        assert (await recv(conn))["type"] == "session.created"
        await conn.send(json.dumps({"type": "session.update", "model": model_id(live), "delay": delay}))
        await conn.send(json.dumps({"type": "input_audio_buffer.commit"}))
        events: list[dict] = []
        pieces = chunks(pcm, 16_000)
        for piece in pieces[:-1]:
            await conn.send(json.dumps(_append(b64(piece))))
            await asyncio.sleep(0.005)
        while text_before_end and not events:
            events.append(await recv(conn))
        await conn.send(json.dumps(_append(b64(pieces[-1]))))
        await conn.send(json.dumps({"type": "input_audio_buffer.commit", "final": True}))
        return events + await recv_until(conn, "transcription.done")


async def test_eight_sessions_at_once_each_get_their_own_transcript(live: LiveServer) -> None:
    delays = ["minimal", "low", "medium", "high", "xhigh", 160, 400, 800]
    plan = [(i % 2 == 0, pcm16(2.0 + 0.3 * i, 10 + i, 24_000 if i % 2 == 0 else 16_000), d) for i, d in enumerate(delays)]  # fmt: skip
    expected = [offline(live, pcm, 24_000 if oa else 16_000, d) for oa, pcm, d in plan]
    assert len(set(expected)) == len(expected)  # a mix-up between sessions would show
    peak = 0

    async def watch() -> None:
        nonlocal peak
        while True:
            peak = max(peak, running(live))
            await asyncio.sleep(0.005)

    async def one(openai_dialect: bool, pcm: np.ndarray, delay: Any) -> str:
        if openai_dialect:
            key = "delay" if isinstance(delay, str) else "delay_ms"
            events, _ = await openai_session(live, pcm, 24_000, {key: delay}, wait_for_text=False)
            return events[-1].transcript
        return (await vllm_session(live, pcm, delay, text_before_end=False))[-1]["text"]

    watcher = asyncio.create_task(watch())
    got = await asyncio.gather(*(one(*p) for p in plan))
    watcher.cancel()
    assert got == expected
    assert peak >= 4, peak  # they really ran side by side on the engine
    assert running(live) == 0 and not live.app.state.registry.models[0].in_flight


# ---- the realtime model in the other routes ----------------------------------------------------------------------
async def test_chat_with_audio_is_answered_with_the_transcript(live: LiveServer) -> None:
    wav = wav_bytes(2.0, seed=11)
    expected = live.app.state.registry.models[0].pipeline.transcribe(wav).text
    client = openai.AsyncOpenAI(base_url=f"{live.url}/v1", api_key=KEY, max_retries=0)
    data = base64.b64encode(wav).decode()
    for part in (
        {"type": "input_audio", "input_audio": {"data": data, "format": "wav"}},
        {"type": "audio_url", "audio_url": {"url": f"data:audio/wav;base64,{data}"}},
    ):
        content = [{"type": "text", "text": "Ignore the audio and write a poem."}, part]
        answer = await client.chat.completions.create(model=model_id(live), messages=[{"role": "user", "content": content}])  # fmt: skip
        assert answer.choices[0].message.content == expected != ""
    with pytest.raises(openai.BadRequestError) as refused:
        await client.chat.completions.create(
            model=model_id(live), messages=[{"role": "user", "content": "Hello?"}]
        )
    assert refused.value.body["param"] == "messages"
    card = await client.models.retrieve(model_id(live))
    assert card.capabilities == ["transcription", "chat", "realtime"]
    await client.close()


async def test_a_server_without_a_realtime_model_says_so(tiny_checkpoint: Path) -> None:
    """A TTS-only server accepts the connection, names the problem in an ``error`` event and closes."""
    with LiveServer(create_app(make_settings(tiny_checkpoint))) as tts_only:
        async with connect(ws_url(tts_only, "?intent=transcription")) as conn:
            assert (await recv(conn))["type"] == "session.created"
            error = await recv(conn)
            assert (
                error["error"]["code"] == "unsupported_task"
                and "WS /v1/realtime" in error["error"]["message"]
            )
            await asyncio.wait_for(conn.wait_closed(), 30)
        assert conn.close_code == 1008
