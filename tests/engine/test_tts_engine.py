"""The async engine: streams from a background thread, bounded queue, cancellation, dead-engine errors."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

from speechserve import SynthesisOptions
from speechserve.engine import Engine as TTSEngine
from speechserve.engine import EngineConfig, SpeechRequest
from speechserve.errors import EngineDead, Overloaded, UnknownVoice


def _req(seed: int, frames: int = 10, text: str = "An asynchronous hello.") -> SpeechRequest:
    return SpeechRequest(text, options=SynthesisOptions(seed=seed, max_frames=frames))


def test_concurrent_streams_match_offline(tiny_tts) -> None:
    async def main() -> list[np.ndarray]:
        engine = TTSEngine(tiny_tts, EngineConfig(max_batch=4))
        engine.start()
        try:
            streams = [engine.submit(_req(s, 8 + s)) for s in range(4)]
            return [(await st.collect()).samples for st in streams]
        finally:
            engine.stop()

    got = asyncio.run(main())
    for seed, audio in enumerate(got):
        want = tiny_tts.generate(
            "An asynchronous hello.", options=SynthesisOptions(seed=seed, max_frames=8 + seed)
        )
        assert np.abs(audio - want.samples).max() <= 1e-4


def test_validation_errors_raise_at_submit(tiny_tts) -> None:
    async def main() -> None:
        engine = TTSEngine(tiny_tts)
        engine.start()
        try:
            with pytest.raises(UnknownVoice):
                engine.submit(SpeechRequest("Hi.", voice="nobody"))
            assert (await engine.submit(_req(0, 3)).collect()).n_frames == 3  # still serving
        finally:
            engine.stop()

    asyncio.run(main())


def test_overload_and_cancel(tiny_tts) -> None:
    async def main() -> None:
        engine = TTSEngine(tiny_tts, EngineConfig(max_batch=1, max_waiting=1))
        engine.start()
        try:
            first = engine.submit(_req(1, 2000))
            it = first.__aiter__()
            await it.__anext__()  # first is running now, holding the only slot
            waiting = engine.submit(_req(2, 5))
            with pytest.raises(Overloaded):
                engine.submit(_req(3, 5))
            first.cancel()
            await it.aclose()
            assert (await waiting.collect()).n_frames == 5  # the cancelled request freed its slot
            for _ in range(200):
                if engine.stats().running == 0:
                    break
                await asyncio.sleep(0.01)
            assert engine.stats().running == 0 and first.usage.output_tokens < 2000
        finally:
            engine.stop()
        with pytest.raises(EngineDead):
            engine.submit(_req(4))

    asyncio.run(main())
