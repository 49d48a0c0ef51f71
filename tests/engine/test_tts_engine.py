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


def test_one_request_of_many_segments_takes_one_queue_place(tiny_tts) -> None:
    async def main() -> None:
        engine = TTSEngine(tiny_tts, EngineConfig(max_batch=1, max_waiting=1))
        engine.start()
        try:
            parts = engine.submit_many([_req(10 + i, 3) for i in range(4)])  # idle server, 4 segments
            assert [(await p.collect()).n_frames for p in parts] == [3, 3, 3, 3]
            first = engine.submit(_req(1, 2000))
            it = first.__aiter__()
            await it.__anext__()  # running, holding the only slot
            waiting = engine.submit_many([_req(20 + i, 2) for i in range(3)])  # one place, three parts
            with pytest.raises(Overloaded):
                engine.submit(_req(3, 5))
            assert engine.stats().waiting == 1
            first.cancel()
            await it.aclose()
            assert [(await p.collect()).n_frames for p in waiting] == [2, 2, 2]
        finally:
            engine.stop()

    asyncio.run(main())


def test_a_request_cancelled_while_queued_frees_its_place_within_a_step(tiny_tts) -> None:
    async def main() -> None:
        engine = TTSEngine(tiny_tts, EngineConfig(max_batch=1, max_waiting=1))
        engine.start()
        try:
            first = engine.submit(_req(1, 2000))
            it = first.__aiter__()
            await it.__anext__()  # running, holding the only slot
            ghost = engine.submit(_req(2, 5))
            with pytest.raises(Overloaded):
                engine.submit(_req(3, 5))
            ghost.cancel()  # the client went away while its request was still queued
            steps = engine.core.counters.steps
            for _ in range(500):
                if engine.stats().waiting == 0:
                    break
                await asyncio.sleep(0.005)
            assert engine.stats().waiting == 0 and engine.core.counters.steps - steps <= 2
            late = engine.submit(_req(4, 2))  # its place is free again: accepted, not 429
            first.cancel()
            assert (await late.collect()).n_frames == 2
            await it.aclose()
        finally:
            engine.stop()

    asyncio.run(main())
