"""``WS /v1/audio/speech/stream`` on a real uvicorn server with the tiny Voxtral TTS checkpoint, driven by a
plain ``websockets`` client the way a voice agent drives it: text token by token as an LLM writes it.

The first audio leaves before the text is complete; each sentence's joined audio is exactly (bitwise PCM)
``POST /v1/audio/speech`` of that sentence with the same seed, asked through the official ``openai`` client;
``input.cancel`` frees the engine slot within one engine step and the next utterance works; the voice can
change between utterances, with usage per sentence and per utterance; every bad input is an ``error`` event
with a code and the session goes on; the handshake needs the key.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import openai
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from ._util import LiveServer, make_settings

from speechserve.server import create_app  # isort: skip

pytestmark = pytest.mark.anyio

KEY = "sk-stream"
LONG = 400  # the server's frame cap: only input.cancel ends such a sentence early
FRAMES = 6  # frames per sentence in the other tests (the tiny random model never says END)
SEED = 7
TOKENS = ["Hello", " there", ",", " my", " friend", ".", " Dr", ".", " Smith", " paid", " 3", ".", "14", " dollars",
          ",", " i", ".", "e", ".", " a", " lot", ".", " Bye"]  # fmt: skip
SENTENCES = ["Hello there,", "my friend.", "Dr. Smith paid 3.14 dollars,", "i.e. a lot.", "Bye"]
"""What clause granularity makes of ``TOKENS``: never cut in a number or after an abbreviation."""


@pytest.fixture(scope="module")
def live(tiny_checkpoint: Path):
    # one batch slot: each sentence is generated alone, as its one-shot is, so the two are equal bit for bit
    # (batched float sums may round differently: see the concurrent test)
    settings = make_settings(
        tiny_checkpoint, api_keys=[KEY], max_frames=LONG, max_input_chars=1000, max_batch=1
    )
    with LiveServer(create_app(settings)) as server:
        yield server


def ws(live: LiveServer) -> Any:
    url = live.url.replace("http://", "ws://", 1) + "/v1/audio/speech/stream"
    return connect(url, additional_headers={"Authorization": f"Bearer {KEY}"}, max_size=None)


def config(**extra: Any) -> dict[str, Any]:
    base = {"type": "session.config", "voice": "casual_male", "response_format": "pcm", "stream_audio": True,
            "split_granularity": "clause", "seed": SEED, "max_tokens": FRAMES}  # fmt: skip
    return base | extra


async def send(conn: Any, kind: str, **fields: Any) -> None:
    await conn.send(json.dumps({"type": kind, **fields}))


async def recv(conn: Any, timeout: float = 60) -> dict[str, Any] | bytes:
    message = await asyncio.wait_for(conn.recv(), timeout)
    return message if isinstance(message, bytes) else json.loads(message)


async def until(conn: Any, kind: str) -> list[dict[str, Any] | bytes]:
    """Messages up to and including the first event of type ``kind``."""
    messages: list[dict[str, Any] | bytes] = []
    while not messages or isinstance(messages[-1], bytes) or messages[-1]["type"] != kind:
        messages.append(await recv(conn))
    return messages


def sentences(messages: list[dict[str, Any] | bytes]) -> list[tuple[str, bytes, dict[str, Any]]]:
    """(sentence_text, joined audio, its audio.done) of each sentence, in order; checks the framing."""
    out, current, audio = [], None, b""
    for m in messages:
        if isinstance(m, bytes):
            assert current is not None, "audio outside audio.start … audio.done"
            audio += m
        elif m["type"] == "audio.start":
            assert current is None
            current, audio = m, b""
        elif m["type"] == "audio.done":
            assert current is not None and m["sentence_index"] == current["sentence_index"]
            assert m["total_bytes"] == len(audio)
            out.append((current["sentence_text"], audio, m))
            current = None
    return out


async def one_shot(
    live: LiveServer, text: str, voice: str = "casual_male", fmt: str = "pcm", max_tokens: int = FRAMES
) -> bytes:
    """``POST /v1/audio/speech`` of ``text`` with the session's settings, through the official client."""
    client = openai.AsyncOpenAI(base_url=f"{live.url}/v1", api_key=KEY, max_retries=0, timeout=120)
    response = await client.audio.speech.create(
        model="tts-1", voice=voice, input=text, response_format=fmt,
        extra_body={"seed": SEED, "max_tokens": max_tokens, "stream": False},  # one complete file
    )  # fmt: skip
    await client.close()
    return response.content


def engine(live: LiveServer) -> Any:
    return live.app.state.registry.models[0].engine


async def poll(condition: Any, timeout: float = 30) -> bool:
    """Await ``condition()`` (checked every 10 ms) for at most ``timeout`` seconds; its last value."""
    for _ in range(int(timeout / 0.01)):
        if condition():
            return True
        await asyncio.sleep(0.01)
    return bool(condition())


# ---- text in as it is written, audio out as each clause ends ------------------------------------------------------
async def test_first_audio_leaves_before_the_text_is_complete_and_equals_the_one_shot(
    live: LiveServer,
) -> None:
    async with ws(live) as conn:
        await send(conn, "session.config", **{k: v for k, v in config().items() if k != "type"})
        updated = await recv(conn)
        assert updated["type"] == "session.updated" and updated["sample_rate"] == 24000
        for token in TOKENS[:4]:  # "Hello there," then " my", which shows the clause has ended
            await send(conn, "input.text", text=token)
            await asyncio.sleep(0.01)  # an LLM's pace (not timed: the next step waits for audio)
        head = await until(conn, "audio.start")
        assert head[-1]["sentence_text"] == "Hello there,"
        first = await recv(conn)
        assert isinstance(first, bytes) and first  # audio, while most of the text is still unwritten
        for token in TOKENS[4:]:
            await send(conn, "input.text", text=token)
        await send(conn, "input.done")
        messages = [*head, first, *await until(conn, "session.done")]
    got = sentences(messages)
    assert [text for text, _, _ in got] == SENTENCES
    for text, audio, done in got:
        assert audio == await one_shot(live, text), text
        assert done["usage"]["output_tokens"] == FRAMES and done["usage"]["input_tokens"] > 0
    usage = messages[-1]["usage"]
    assert usage["output_tokens"] == FRAMES * len(SENTENCES)
    assert usage["input_tokens"] == sum(done["usage"]["input_tokens"] for _, _, done in got)


async def test_a_new_voice_per_utterance_each_sentence_a_file_by_default(live: LiveServer) -> None:
    async with ws(live) as conn:
        per_utterance = []
        for voice in ("casual_male", "fr_female"):
            await send(
                conn, "session.config", voice=voice, seed=SEED, max_tokens=FRAMES
            )  # vLLM-Omni's defaults
            assert (await recv(conn))["format"] == "wav"
            for word in ("Bonjour.", " Second", " sentence", "."):
                await send(conn, "input.text", text=word)
            await send(conn, "input.done")
            messages = await until(conn, "session.done")
            assert (
                messages[-1]["utterance_index"] == len(per_utterance) and messages[-1]["total_sentences"] == 1
            )
            per_utterance.append(sentences(messages))
    for voice, got in zip(("casual_male", "fr_female"), per_utterance, strict=True):
        [(text, audio, _)] = got  # split_granularity none: the whole utterance is one request
        assert text == "Bonjour. Second sentence."
        assert audio == await one_shot(live, text, voice, "wav")
    assert per_utterance[0][0][1] != per_utterance[1][0][1]


# ---- barge-in ----------------------------------------------------------------------------------------------------
async def test_cancel_frees_the_slot_within_one_engine_step_and_the_next_utterance_works(
    live: LiveServer,
) -> None:
    core = engine(live).core
    async with ws(live) as conn:
        await send(
            conn, "session.config", **{k: v for k, v in config(max_tokens=LONG).items() if k != "type"}
        )
        await recv(conn)
        await send(
            conn, "input.text", text="This sentence would run for a long time. And this one never starts"
        )
        await until(conn, "audio.start")
        assert isinstance(await recv(conn), bytes)
        await send(conn, "input.cancel")
        after = await until(conn, "input.cancelled")
        steps_at_ack = core.counters.steps
        assert await poll(lambda: engine(live).stats().running == 0 and engine(live).stats().waiting == 0)
        # an idle engine takes no steps: the step running when the cancel came, then the one that freed the slot
        assert core.counters.steps - steps_at_ack <= 2
        events = [m for m in after if not isinstance(m, bytes)]
        assert [e["type"] for e in events] == ["audio.done", "session.done", "input.cancelled"]
        assert events[0]["cancelled"] and events[1]["cancelled"] and events[1]["utterance_index"] == 0
        assert events[0]["usage"]["output_tokens"] < LONG
        assert events[2] == {"type": "input.cancelled", "utterance_index": 1, "dropped_text": "And this one never starts"}  # fmt: skip
        await send(conn, "session.config", **{k: v for k, v in config().items() if k != "type"})
        await send(conn, "input.text", text="Back again.")
        await send(conn, "input.done")
        messages = await until(conn, "session.done")
    assert messages[0]["type"] == "session.updated"  # nothing of the cancelled sentence came after the ack
    [(text, audio, _)] = sentences(messages)
    assert messages[-1]["utterance_index"] == 1 and not messages[-1]["cancelled"]
    assert audio == await one_shot(live, text)


# ---- bad input ------------------------------------------------------------------------------------------------------
BAD = [
    ("{not json", "invalid_json"),
    ("[1, 2]", "invalid_event"),
    (json.dumps({"text": "no type"}), "invalid_event"),
    (json.dumps({"type": "response.create"}), "unknown_event"),
    (json.dumps({"type": "input.text", "text": "hi", "colour": "red"}), "unknown_field"),
    (json.dumps({"type": "input.text", "text": 42}), "invalid_event"),
    (json.dumps({"type": "input.text", "text": "x" * 1001}), "fragment_too_large"),
    (json.dumps({"type": "session.config", "vocie": "casual_male"}), "unknown_field"),
    (json.dumps({"type": "session.config", "speed": 9}), "invalid_value"),
    (json.dumps({"type": "session.config", "split_granularity": "word"}), "invalid_value"),
    (json.dumps({"type": "session.config", "voice": "nobody"}), "voice_not_found"),
    (json.dumps({"type": "session.config", "model": "no-such-model"}), "model_not_found"),
    (json.dumps({"type": "session.config", "word_timestamps": True}), "unsupported"),
    (json.dumps({"type": "input.done", "text": "late"}), "unknown_field"),
]


async def test_bad_input_is_an_error_event_with_a_code_and_the_session_goes_on(live: LiveServer) -> None:
    async with ws(live) as conn:
        await send(conn, "input.text", text="Too early.")  # out of order: no session.config yet
        assert (await recv(conn))["code"] == "session_not_configured"
        await send(conn, "session.config", **{k: v for k, v in config().items() if k != "type"})
        await recv(conn)
        for message, code in BAD:
            await conn.send(message)
            error = await recv(conn)
            assert error["type"] == "error" and error["code"] == code and error["message"], message
        await conn.send(b"\x00\x01")  # binary where JSON text is expected
        assert (await recv(conn))["code"] == "binary_not_expected"
        await send(conn, "input.text", text="Still here")
        await send(conn, "session.config", voice="fr_female")  # mid-utterance
        assert (await recv(conn))["code"] == "utterance_in_progress"
        await send(conn, "input.done")
        messages = await until(conn, "session.done")
    [(text, audio, _)] = sentences(messages)
    assert text == "Still here" and audio == await one_shot(live, text)  # the bad config changed nothing


async def test_text_far_ahead_of_the_audio_is_refused_then_cancel_drops_it(live: LiveServer) -> None:
    async with ws(live) as conn:
        await send(conn, "session.config", split_granularity="none", max_tokens=FRAMES)
        await recv(conn)
        block = "word " * 200  # 1000 characters: the fragment limit of this server
        for _ in range(20):  # 16 × max_input_chars may wait to be spoken
            await send(conn, "input.text", text=block)
        await send(conn, "input.cancel")
        events = [m for m in await until(conn, "input.cancelled") if not isinstance(m, bytes)]
    refused = [e for e in events if e["type"] == "error"]
    assert refused and all(e["code"] == "buffer_full" and e["param"] == "text" for e in refused)
    dropped = events[-1]["dropped_text"].split()  # all but the sentence that had started speaking
    assert set(dropped) == {"word"} and 200 <= len(dropped) <= 16 * 200  # memory stayed bounded


async def test_session_close_speaks_what_was_sent_then_closes(live: LiveServer) -> None:
    async with ws(live) as conn:
        await send(conn, "session.config", **{k: v for k, v in config().items() if k != "type"})
        await recv(conn)
        await send(conn, "input.text", text="Last words")
        await send(conn, "session.close")
        messages = [m async for m in conn]
    events = [json.loads(m) for m in messages if isinstance(m, str)]
    assert [e["type"] for e in events] == ["audio.start", "audio.done", "session.done"]
    assert events[0]["sentence_text"] == "Last words" and conn.close_code == 1000


async def test_the_handshake_needs_the_key(live: LiveServer) -> None:
    url = live.url.replace("http://", "ws://", 1) + "/v1/audio/speech/stream"
    with pytest.raises(InvalidStatus) as refused:
        async with connect(url, additional_headers={"Authorization": "Bearer sk-wrong"}):
            pass
    assert refused.value.response.status_code == 401


# ---- continuous batching: sessions at once ---------------------------------------------------------------------------
LSB_TOLERANCE = 4
"""Batched float sums may round differently from a request alone (the engine's own parity tests allow 1e-4),
which moves an int16 sample by a few steps at most."""


@pytest.fixture(scope="module")
def batched(tiny_checkpoint: Path):
    with LiveServer(create_app(make_settings(tiny_checkpoint, api_keys=[KEY], max_frames=LONG))) as server:
        yield server


async def _session(live: LiveServer, voice: str, text: str) -> list[tuple[str, bytes, dict[str, Any]]]:
    async with ws(live) as conn:
        await send(conn, "session.config", **{k: v for k, v in config(voice=voice).items() if k != "type"})
        await recv(conn)
        for word in text.split(" "):
            await send(conn, "input.text", text=word + " ")
        await send(conn, "input.done")
        return sentences(await until(conn, "session.done"))


async def test_sessions_at_once_are_batched_and_each_gets_its_own_sentences(batched: LiveServer) -> None:
    import numpy as np

    texts = {"casual_male": "One, two, three. Four.", "fr_female": "Un, deux, trois. Quatre, cinq."}
    results = await asyncio.gather(*(_session(batched, v, t) for v, t in texts.items()))
    for (voice, text), got in zip(texts.items(), results, strict=True):
        assert " ".join(t for t, _, _ in got) == text
        for sentence, audio, _ in got:
            alone = np.frombuffer(await one_shot(batched, sentence, voice), "<i2").astype(int)
            streamed = np.frombuffer(audio, "<i2").astype(int)
            assert streamed.shape == alone.shape and np.abs(streamed - alone).max() <= LSB_TOLERANCE, sentence


# ---- Dia: a script is cut between speaker turns only ----------------------------------------------------------------
DIA_CASE = Path(__file__).parents[1] / "golden" / "dia" / "case_a"
DIA_TOKENS = ["[S", "1]", " Hello", " there", ".", " How", " are", " you", "?", " [S", "2]", " Fine", ",", " thanks",
              ".", " [S1]", " Good", "."]  # fmt: skip
DIA_STEPS = 40  # Dia's max_tokens: decoder steps per sentence (cheap on the tiny model)


@pytest.fixture(scope="module")
def dia(tmp_path_factory: pytest.TempPathFactory):
    """The golden tiny Dia checkpoint as a served bundle (the nari files and the descript DAC in ``dac/``)."""
    root = tmp_path_factory.mktemp("stream_dia") / "dia-golden"
    root.mkdir()
    for name in ("config.json", "model.safetensors"):
        (root / name).symlink_to((DIA_CASE / "dia_nari" / name).resolve())
    (root / "dac").symlink_to((DIA_CASE / "dac_descript").resolve(), target_is_directory=True)
    with LiveServer(create_app(make_settings(root, api_keys=[KEY], max_frames=256, max_batch=1))) as server:
        yield server


async def test_dia_speaks_each_turn_as_soon_as_the_next_one_starts(dia: LiveServer) -> None:
    async with ws(dia) as conn:
        await send(conn, "session.config", response_format="pcm", stream_audio=True, split_granularity="sentence",
                   seed=SEED, max_tokens=DIA_STEPS)  # fmt: skip
        updated = await recv(conn)
        assert updated["sample_rate"] == 44100 and "voice" not in updated  # Dia: speakers come from the tags
        for token in DIA_TOKENS[:11]:  # the first turn, then the tag that opens the next one
            await send(conn, "input.text", text=token)
        head = await until(conn, "audio.start")
        assert head[-1]["sentence_text"] == "[S1] Hello there. How are you?"  # a turn is never cut
        for token in DIA_TOKENS[11:]:
            await send(conn, "input.text", text=token)
        await send(conn, "input.done")
        messages = [*head, *await until(conn, "session.done")]
    got = sentences(messages)
    assert [t for t, _, _ in got] == ["[S1] Hello there. How are you?", "[S2] Fine, thanks.", "[S1] Good."]
    for text, audio, _ in got:
        assert audio == await one_shot(dia, text, "alloy", max_tokens=DIA_STEPS), text


@pytest.fixture(scope="module")
def idle_live(tiny_checkpoint: Path):
    settings = make_settings(
        tiny_checkpoint, api_keys=[KEY], max_frames=LONG, speech_stream_idle_timeout_s=0.5
    )
    with LiveServer(create_app(settings)) as server:
        yield server


async def test_an_idle_session_is_closed_but_never_while_it_speaks(idle_live: LiveServer) -> None:
    """Speaking takes far longer than the 0.5 s idle period here (300 frames of the tiny model): the session
    stays open through it while the client sends nothing, and is closed only once nothing is left to say."""
    from websockets.exceptions import ConnectionClosedOK

    async with ws(idle_live) as conn:
        await send(conn, "session.config", **config(max_tokens=300, stream_audio=False))
        await send(conn, "input.text", text="Hello there.")
        await send(conn, "input.done")
        messages = await until(conn, "session.done")
        assert not any(isinstance(m, dict) and m["type"] == "error" for m in messages)
        assert any(isinstance(m, bytes) for m in messages)
        event = await recv(conn, timeout=5)
        assert isinstance(event, dict) and event["type"] == "error" and event["code"] == "idle_timeout"
        with pytest.raises(ConnectionClosedOK):
            await recv(conn, timeout=5)
        assert conn.close_code == 1000


async def test_events_keep_a_session_alive(idle_live: LiveServer) -> None:
    async with ws(idle_live) as conn:
        await send(conn, "session.config", **config())
        for _ in range(4):  # 4 × 0.3 s > the 0.5 s period, an event in each
            await asyncio.sleep(0.3)
            await send(conn, "input.text", text="more ")
        await send(conn, "input.cancel")
        event = await recv(conn, timeout=5)
        assert isinstance(event, dict) and event["type"] != "error", event
