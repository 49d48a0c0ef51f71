"""No ghosts in the queue: a client that hangs up while its request is still *waiting* in the engine queue
(nothing sent yet) gives its queue place back within an engine step, so the next request is accepted instead
of answered 429 — while the request ahead of it keeps generating.

Each case runs on a real uvicorn server with one batch slot and one queue place: a long streamed request
takes the slot, the ghost takes the place (a raw socket that sends its request and closes before any byte
comes back), a probe is refused with 429, the ghost leaves, and the same probe is then accepted.
"""

from __future__ import annotations

import base64
import json
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest

from speechserve.server import create_app

from ._util import LiveServer, make_settings, wait_until, wav_bytes

LEAVE_WITHIN_S = 2.0
"""The ghost's place must be free this soon after it hangs up: a few engine steps of the tiny models
(~20 ms each), against the many seconds the request ahead of it still has to run."""
LONG = 400  # frames (tiny TTS) or tokens (tiny ASR): only a cancel ends the request ahead early
WAV = wav_bytes(2.0, seed=5)
AUDIO_URL = {
    "type": "audio_url",
    "audio_url": {"url": f"data:audio/wav;base64,{base64.b64encode(WAV).decode()}"},
}


@pytest.fixture(scope="module")
def tts(tiny_checkpoint: Path) -> Iterator[LiveServer]:
    settings = make_settings(tiny_checkpoint, max_frames=LONG, max_batch=1, max_waiting=1)
    with LiveServer(create_app(settings)) as server:
        yield server


@pytest.fixture(scope="module")
def asr(tiny_asr_checkpoint: Path) -> Iterator[LiveServer]:
    with LiveServer(create_app(make_settings(tiny_asr_checkpoint, max_batch=1, max_waiting=1))) as server:
        yield server


def speech(url: str, frames: int, **extra) -> httpx.Request:
    body = {"input": "Nobody waits for this one.", "voice": "nova", "response_format": "pcm", "seed": 2}
    return httpx.Request("POST", f"{url}/v1/audio/speech", json=body | {"max_tokens": frames} | extra)


def transcription(url: str, tokens: int, **extra) -> httpx.Request:
    data = {"model": "whisper-1", "max_tokens": str(tokens)} | extra
    return httpx.Request("POST", f"{url}/v1/audio/transcriptions", data=data, files={"file": ("a.wav", WAV)})


def chat(url: str, tokens: int, **extra) -> httpx.Request:
    messages = [{"role": "user", "content": [AUDIO_URL, {"type": "text", "text": "What is said?"}]}]
    body = {"model": "whisper-1", "messages": messages, "max_tokens": tokens} | extra
    return httpx.Request("POST", f"{url}/v1/chat/completions", json=body)


def send_raw(request: httpx.Request) -> socket.socket:
    """Send ``request`` over a plain socket (HTTP/1.1) and return the socket without reading anything."""
    url = urlsplit(str(request.url))
    sock = socket.create_connection((url.hostname, url.port))
    body = request.read()
    # httpx already set content-length: a second, differently-cased copy is a duplicate header, which h11
    # tolerates when equal but httptools (uvicorn's parser when installed, e.g. by ray[serve]) refuses with 400.
    headers = {
        k: v for k, v in request.headers.items() if k.lower() not in ("transfer-encoding", "content-length")
    }
    headers |= {"Content-Length": str(len(body)), "Connection": "close"}
    head = f"{request.method} {url.path} HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    sock.sendall(head.encode() + b"\r\n" + body)
    return sock


@contextmanager
def running(client: httpx.Client, request: httpx.Request) -> Iterator[httpx.Response]:
    """A streamed request whose first output has arrived (so it holds the batch slot); leaving the block
    hangs up on it, which cancels it."""
    response = client.send(request, stream=True)
    try:
        assert response.status_code == 200, response.read()
        yield response
    finally:
        response.close()


def in_background(
    client: httpx.Client, request: httpx.Request
) -> tuple[threading.Thread, list[httpx.Response]]:
    answers: list[httpx.Response] = []
    thread = threading.Thread(target=lambda: answers.append(client.send(request)), daemon=True)
    thread.start()
    return thread, answers


def ghost_leaves_at_once(server: LiveServer, long: httpx.Request, ghost: httpx.Request, probe: httpx.Request):
    """The scenario of the module docstring; returns the probe's final answer and the ghost's generation."""
    model = server.app.state.registry.models[0]
    engine = model.engine
    with httpx.Client(timeout=120) as client:
        with running(client, long) as ahead:
            ahead_gen = model.in_flight[ahead.headers["x-generation-id"]]
            assert engine.stats().running == 1 and engine.stats().waiting == 0
            sock = send_raw(ghost)
            try:
                assert wait_until(lambda: engine.stats().waiting == 1, timeout=30), "the ghost never queued"
                refused = client.send(probe)
                assert refused.status_code == 429 and refused.headers["retry-after"] == "1"
                (ghost_id,) = set(model.in_flight) - {ahead_gen.id}
                ghost_gen = model.in_flight[ghost_id]
            finally:
                sock.close()  # before any byte came back
            assert wait_until(lambda: engine.stats().waiting == 0, timeout=LEAVE_WITHIN_S), (
                "the ghost kept its place"
            )
            assert ghost_gen.closed and ghost_gen.cancelled
            assert not ahead_gen.closed and engine.stats().running == 1  # the request ahead still generates
            thread, answers = in_background(client, probe)
            assert wait_until(lambda: engine.stats().waiting == 1 or not thread.is_alive(), timeout=30)
            assert thread.is_alive() and not answers, "the probe should wait for the slot, not be refused"
            assert not ahead_gen.closed
        # leaving the block hung up on the request ahead: the probe gets the slot and its answer
        thread.join(timeout=120)
        assert wait_until(lambda: ghost_id not in model.in_flight, timeout=10)
    return answers[0], ghost_gen


@pytest.mark.parametrize(
    "delivery", [{}, {"stream": False}, {"stream_format": "sse"}], ids=["audio", "file", "sse"]
)
def test_a_speech_request_that_leaves_while_queued_frees_its_place(tts: LiveServer, delivery: dict) -> None:
    metrics = tts.app.state.metrics.registry
    before = metrics.get_sample_value("speechserve_speech_cancelled_total") or 0
    answer, _ = ghost_leaves_at_once(
        tts, speech(tts.url, LONG), speech(tts.url, LONG, **delivery), speech(tts.url, 2, stream=False)
    )
    assert answer.status_code == 200 and len(answer.content) == 2 * 1920 * 2  # two 80 ms frames of s16le
    assert (
        metrics.get_sample_value("speechserve_speech_cancelled_total") == before + 2
    )  # the ghost, the one ahead


@pytest.mark.parametrize("stream", ["true", "false"])
def test_a_transcription_that_leaves_while_queued_frees_its_place(asr: LiveServer, stream: str) -> None:
    answer, ghost = ghost_leaves_at_once(
        asr, transcription(asr.url, LONG, stream="true"), transcription(asr.url, LONG, stream=stream),
        transcription(asr.url, 2),
    )  # fmt: skip
    assert answer.status_code == 200 and "text" in answer.json()
    assert ghost.completion_tokens == 0  # it never ran


@pytest.mark.parametrize("stream", [True, False])
def test_a_chat_that_leaves_while_queued_frees_its_place(asr: LiveServer, stream: bool) -> None:
    answer, ghost = ghost_leaves_at_once(
        asr, chat(asr.url, LONG, stream=True), chat(asr.url, LONG, stream=stream), chat(asr.url, 2)
    )
    assert answer.status_code == 200 and json.loads(answer.content)["usage"]["completion_tokens"] == 2
    assert ghost.completion_tokens == 0
