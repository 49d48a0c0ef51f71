"""The server's transcription route serves the realtime model unchanged: the official ``openai`` client gets
the SDK's text, whole or streamed."""

from __future__ import annotations

import asyncio
import io
from pathlib import Path

import httpx
import openai
import soundfile as sf

from speechserve.server import ServerSettings, create_app

BASE = "http://speechserve.test"


def test_transcriptions_route(realtime_case: Path, realtime_pipe, en_samples) -> None:  # type: ignore[no-untyped-def]
    expected = realtime_pipe.transcribe((en_samples, 16_000)).text
    buf = io.BytesIO()
    sf.write(buf, en_samples, 16_000, format="WAV", subtype="PCM_16")
    wav = buf.getvalue()

    async def main() -> tuple[str, str]:
        settings = ServerSettings(model=str(realtime_case / "checkpoint_mistral"), warmup=True)
        app = create_app(settings)
        async with app.router.lifespan_context(app):
            await app.state.startup.wait()
            assert app.state.startup.status == "ok"
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url=BASE, timeout=120) as http:
                client = openai.AsyncOpenAI(
                    base_url=f"{BASE}/v1", api_key="sk", http_client=http, max_retries=0
                )
                whole = await client.audio.transcriptions.create(model="whisper-1", file=("en.wav", wav))
                events = await client.audio.transcriptions.create(
                    model="whisper-1", file=("en.wav", wav), stream=True
                )
                deltas = [e.delta async for e in events if e.type == "transcript.text.delta"]
                return whole.text, "".join(deltas)

    whole, streamed = asyncio.run(main())
    assert whole == streamed == expected != ""
