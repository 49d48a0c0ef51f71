"""Over real sockets: audio leaves while it is generated, a client that hangs up cancels its generation,
and `speechserve serve` runs as a uvicorn subprocess that the openai client talks to."""

from __future__ import annotations

import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import openai
import pytest

from ._util import SPF, LiveServer, decode, make_settings, wait_until, wav_bytes

from speechserve.server import create_app  # isort: skip

LONG = 400  # frames per segment on the live server: long enough that only a cancel ends it early


@pytest.fixture(scope="module")
def live(tiny_checkpoint: Path):
    with LiveServer(create_app(make_settings(tiny_checkpoint, max_frames=LONG))) as server:
        yield server


def _client(url: str, key: str = "sk-test") -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{url}/v1", api_key=key, max_retries=0, timeout=120)


def test_first_bytes_arrive_while_the_engine_is_still_generating(live: LiveServer) -> None:
    model = live.app.state.registry.models[0]
    client = _client(live.url)  # held: a collected client closes its connections mid-stream
    with client.audio.speech.with_streaming_response.create(
        model="tts-1",
        voice="nova",
        input="Streaming starts right away.",
        response_format="pcm",
        extra_body={"seed": 2, "max_tokens": 60},
    ) as response:
        chunks = response.iter_bytes()
        first = next(chunks)
        gen = model.in_flight[response.headers["x-generation-id"]]
        frames_at_first_byte = gen.streams[0].usage.output_tokens
        running_at_first_byte = model.engine.stats().running
        rest = b"".join(chunks)
    assert first and running_at_first_byte == 1
    assert frames_at_first_byte < gen.frames, (frames_at_first_byte, gen.frames)
    assert len(first) + len(rest) == gen.frames * SPF * 2  # and the whole utterance did arrive


def test_client_disconnect_cancels_the_generation(live: LiveServer) -> None:
    model = live.app.state.registry.models[0]
    metrics = live.app.state.metrics.registry
    before = metrics.get_sample_value("speechserve_speech_cancelled_total")
    client = _client(live.url)  # held: a collected client closes its connections mid-stream
    with client.audio.speech.with_streaming_response.create(
        model="tts-1", voice="nova", input="Nobody will listen to the end.", response_format="mp3"
    ) as response:
        next(response.iter_bytes())
        gen = model.in_flight[response.headers["x-generation-id"]]
    # leaving the block closes the connection mid-stream
    assert wait_until(lambda: gen.closed and model.engine.stats().running == 0, timeout=60)
    assert gen.cancelled and gen.finished_at is None
    assert gen.streams[0].usage.output_tokens < LONG  # the engine stopped early, not at its frame cap
    assert metrics.get_sample_value("speechserve_speech_cancelled_total") == before + 1
    assert not model.in_flight


def _started_url(proc: subprocess.Popen, lines: queue.Queue, timeout: float) -> str:
    deadline = time.monotonic() + timeout
    seen = []
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            line = lines.get(timeout=0.5)
        except queue.Empty:
            continue
        seen.append(line)
        if m := re.search(r"Uvicorn running on (http://127\.0\.0\.1:\d+)", line):
            return m.group(1)
    raise AssertionError("server did not start:\n" + "".join(seen))


def _healthy(url: str) -> bool:
    """True once ``/health`` answers 200 (the port opens before the models are loaded)."""
    try:
        return httpx.get(f"{url}/health", timeout=5).status_code == 200
    except httpx.HTTPError:
        return False


def test_speechserve_serve_in_a_subprocess(tiny_checkpoint: Path) -> None:
    env = os.environ | {
        "SPEECHSERVE_MAX_FRAMES": "6",
        "SPEECHSERVE_API_KEYS": "sk-a,sk-b",
        "PYTHONUNBUFFERED": "1",
    }
    cmd = [sys.executable, "-m", "speechserve", "serve", "--model", str(tiny_checkpoint), "--port", "0"]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=lambda: [lines.put(x) for x in proc.stderr], daemon=True).start()  # type: ignore[union-attr]
    try:
        url = _started_url(proc, lines, timeout=240)
        assert wait_until(lambda: _healthy(url), timeout=240, interval=0.2)
        audio = _client(url, "sk-b").audio.speech.create(
            model="tts-1", voice="nova", input="Hello from a real server.", response_format="flac"
        )
        samples, rate, channels = decode(audio.content, "flac")
        assert (rate, channels) == (24000, 1)
        assert 0 < len(samples) <= 6 * SPF and len(samples) % SPF == 0
        with pytest.raises(openai.AuthenticationError):
            _client(url, "sk-wrong").models.list()
        assert [m.id for m in _client(url, "sk-a").models.list().data] == [tiny_checkpoint.name]
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=30)
    assert proc.returncode == 0


def test_client_leaving_a_transcription_stream_cancels_it(tiny_asr_checkpoint: Path) -> None:
    app = create_app(make_settings(tiny_asr_checkpoint))
    with LiveServer(app) as server:
        model = app.state.registry.models[0]
        metrics = app.state.metrics.registry
        client = _client(server.url)  # held: a collected client closes its connections mid-stream
        with client.audio.transcriptions.with_streaming_response.create(
            model="whisper-1", file=("a.wav", wav_bytes(2.0)), stream=True, extra_body={"max_tokens": 3000}
        ) as response:
            gen = model.in_flight[response.headers["x-generation-id"]]  # before reading: it may finish fast
            assert next(response.iter_lines()).startswith("data: ")
        stream = gen.streams[0]
        assert wait_until(lambda: gen.closed and stream.finish_reason is not None, timeout=60)
        assert gen.cancelled and gen.completion_tokens < 3000
        assert stream.finish_reason == "cancelled" and model.engine.stats().running == 0
        assert metrics.get_sample_value("speechserve_text_cancelled_total") == 1
        assert not model.in_flight
