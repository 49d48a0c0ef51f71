"""Helpers of the server tests: settings, in-process apps, a uvicorn server in a thread, audio decoding."""

from __future__ import annotations

import io
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import av
import httpx
import numpy as np
import openai
from fastapi import FastAPI

from speechserve.server import ServerSettings, create_app
from speechserve.testing.live_server import LiveServer, wait_until  # noqa: F401  (the tests' names)

BASE = "http://speechserve.test"
SPF = 1920  # samples per 80 ms frame at 24 kHz


def make_settings(checkpoint: Path, **overrides) -> ServerSettings:
    """Test settings: short generations (8 frames per segment) unless a test asks for more."""
    return ServerSettings(**({"model": str(checkpoint), "max_frames": 8} | overrides))


@asynccontextmanager
async def serving(settings: ServerSettings, ready: bool = True, **kwargs) -> AsyncIterator[FastAPI]:
    """An app with its lifespan running; with ``ready``, once its models are loaded, started and warmed up
    (they load in the background after the lifespan starts). ``kwargs`` go to ``create_app``."""
    app = create_app(settings, **kwargs)
    async with app.router.lifespan_context(app):
        if ready:
            await app.state.startup.wait()
            if app.state.startup.status != "ok":
                raise RuntimeError("the test app's models failed to load; see the log")
        yield app


def http_client(app: FastAPI) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE, timeout=120)


def openai_client(app: FastAPI, api_key: str = "sk-test") -> openai.AsyncOpenAI:
    """The official client, talking to the app in-process; no retries so 429s surface."""
    return openai.AsyncOpenAI(
        base_url=f"{BASE}/v1", api_key=api_key, http_client=http_client(app), max_retries=0
    )


def decode(data: bytes, fmt: str) -> tuple[np.ndarray, int, int]:
    """Decode a response body with PyAV → (float32 mono samples at 24 kHz, stream rate, channels)."""
    if fmt == "pcm":
        return np.frombuffer(data, "<i2").astype(np.float32) / 32768.0, 24000, 1
    if fmt == "pcm_f32le":
        return np.frombuffer(data, "<f4").copy(), 24000, 1
    with av.open(io.BytesIO(data)) as container:
        stream = container.streams.audio[0]
        rate, channels = stream.rate, stream.codec_context.channels
        to_24k = av.AudioResampler(format="flt", layout="mono", rate=24000)
        frames = [f for frame in container.decode(stream) for f in to_24k.resample(frame)]
        frames += to_24k.resample(None)
    samples = [f.to_ndarray().reshape(-1) for f in frames]
    return (np.concatenate(samples) if samples else np.zeros(0, np.float32)), rate, channels


ASR_RATE = 16000


def noise(seconds: float, seed: int = 0, rate: int = ASR_RATE) -> np.ndarray:
    """Quiet white noise: the tiny random models transcribe anything into (random) text."""
    return (np.random.default_rng(seed).standard_normal(int(seconds * rate)) * 0.1).astype(np.float32)


def wav_bytes(seconds: float, seed: int = 0) -> bytes:
    from speechserve.audio import encode_audio

    return encode_audio(noise(seconds, seed), ASR_RATE, "wav")


def stereo_file(seconds: float, rate: int, container: str, codec: str) -> bytes:
    """Two channels of different noise encoded with PyAV directly (independent of speechserve's encoder)."""
    x = np.stack([noise(seconds, 1, rate), noise(seconds, 2, rate)])
    buf = io.BytesIO()
    with av.open(buf, "w", format=container) as out:
        stream = out.add_stream(codec, rate=rate, layout="stereo")
        frame = av.AudioFrame.from_ndarray(
            np.ascontiguousarray(x.T).reshape(1, -1), format="flt", layout="stereo"
        )
        frame.sample_rate = rate
        for packet in [*stream.encode(frame), *stream.encode(None)]:
            out.mux(packet)
    return buf.getvalue()
