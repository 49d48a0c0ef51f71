"""Voxtral Realtime on the shared engine loop: live streams of different delays join and leave at any step,
are batched one 80 ms position per step, and each gives exactly the ids it gives alone; a cancel frees the
slot for the next stream; whole files come through the transcription route's requests."""

from __future__ import annotations

import asyncio
from pathlib import Path

import numpy as np
import pytest

from speechserve.asr import TranscriptionOptions
from speechserve.engine import ASRRequest, Engine, EngineConfig, EngineCore
from speechserve.engine.offline import TokenListSink, stream
from speechserve.errors import InvalidRequest
from speechserve.models.voxtral_realtime.request import AudioFeed, RealtimeRequest


def _alone(pipe, samples: np.ndarray, delay: int | None = None) -> list[int]:  # type: ignore[no-untyped-def]
    session = pipe.session(delay)
    session.push(samples)
    session.end()
    return [s.id for s in session.steps()]


@pytest.fixture(scope="module")
def audios(realtime_pipe, realtime_case: Path) -> dict[str, np.ndarray]:  # type: ignore[no-untyped-def]
    en = realtime_pipe.load_audio(realtime_case / "en.wav")
    fr = realtime_pipe.load_audio(realtime_case / "fr.wav")
    return {"en": en, "fr": fr, "short": en[:20_000], "long": np.concatenate([fr, en])}


class _Client:
    """One live stream driven from the test: pushes random pieces between engine steps."""

    def __init__(self, samples: np.ndarray, delay: int | None, seed: int) -> None:
        self.samples, self.delay, self.pos = samples, delay, 0
        self.rng = np.random.default_rng(seed)
        self.feed = AudioFeed()
        self.sink = TokenListSink()
        self.request = RealtimeRequest(self.feed, delay_ms=delay)

    def feed_some(self) -> None:
        if self.feed.closed:
            return
        n = int(self.rng.integers(0, 4000))
        self.feed.push(self.samples[self.pos : self.pos + n])
        self.pos += n
        if self.pos >= len(self.samples):
            self.feed.close()

    @property
    def ids(self) -> list[int]:
        return [t.id for t in self.sink.chunks]


def _count_batches(core: EngineCore) -> list[int]:
    sizes: list[int] = []
    runner = core.program.runner
    step = runner.decode_streams

    def counting(streams):  # type: ignore[no-untyped-def]
        sizes.append(len(streams))
        return step(streams)

    runner.decode_streams = counting
    return sizes


def test_streams_batched_on_the_shared_loop_equal_each_alone(realtime_pipe, audios) -> None:  # type: ignore[no-untyped-def]
    plan = [("en", 480, 0), ("fr", 80, 3), ("short", 2400, 5), ("long", 480, 9), ("fr", 1200, 40)]
    clients = [_Client(audios[name], delay, i) for i, (name, delay, _) in enumerate(plan)]
    core = EngineCore(realtime_pipe, EngineConfig(max_batch=3))
    sizes = _count_batches(core)
    step = 0
    while not all(c.sink.done for c in clients):
        for client, (_, _, join_at) in zip(clients, plan, strict=True):
            if step == join_at:
                core.add(core.make_sequence(client.request, client.sink))
            if step >= join_at:
                client.feed_some()
        core.step()
        assert core.n_running <= 3
        step += 1
    for client, (name, delay, _) in zip(clients, plan, strict=True):
        assert client.sink.error is None and client.sink.finish_reason == "stop"
        assert client.ids == _alone(realtime_pipe, audios[name], delay), (name, delay)
        assert client.sink.usage.prompt_tokens == len(realtime_pipe.stream_prompt(delay).ids)
    assert max(sizes) == 3 and sum(sizes) == sum(len(c.ids) for c in clients)  # one id per stream per call
    assert core.scheduler.slots.n_free == 3


def test_cancel_frees_the_slot_for_the_next_stream(realtime_pipe, audios) -> None:  # type: ignore[no-untyped-def]
    core = EngineCore(realtime_pipe, EngineConfig(max_batch=1))
    first, second = _Client(audios["long"], None, 0), _Client(audios["en"], None, 1)
    core.add(core.make_sequence(first.request, first.sink))
    core.add(core.make_sequence(second.request, second.sink))  # waits: one slot
    while len(first.ids) < 10:
        first.feed_some()
        core.step()
    assert core.n_waiting == 1
    first.sink.cancel()
    while not second.sink.done:
        second.feed_some()
        core.step()
    assert first.sink.finish_reason == "cancelled" and 10 <= len(first.ids) < 20
    assert second.ids == _alone(realtime_pipe, audios["en"])  # the reused slot kept nothing of the first
    assert core.scheduler.slots.n_free == 1 and not core.has_work


def test_whole_files_from_the_transcription_route(realtime_pipe, audios) -> None:  # type: ignore[no-untyped-def]
    core = EngineCore(realtime_pipe, EngineConfig(max_batch=2))
    sinks, expected = [], []
    for name in ("en", "fr", "short"):
        ((prompt, _, _, cap),) = realtime_pipe.transcription_prompts(audios[name], TranscriptionOptions())
        sink = TokenListSink()
        core.add(core.make_sequence(ASRRequest(prompt, cap), sink))
        sinks.append(sink)
        expected.append(realtime_pipe.transcribe((audios[name], 16_000)).segments[0].tokens)
    while core.has_work:
        core.step()
    assert [[t.id for t in s.chunks] for s in sinks] == expected
    capped = list(stream(core, ASRRequest(prompt, 3), TokenListSink()))
    assert [t.id for t in capped] == expected[-1][:3]


def test_bad_requests_fail_on_the_callers_thread(realtime_pipe) -> None:  # type: ignore[no-untyped-def]
    core = EngineCore(realtime_pipe, EngineConfig(max_batch=1))
    with pytest.raises(InvalidRequest, match="delay"):
        core.make_sequence(RealtimeRequest(AudioFeed(), delay_ms=100), TokenListSink())
    with pytest.raises(InvalidRequest, match="max_tokens"):
        core.make_sequence(RealtimeRequest(AudioFeed(), max_tokens=0), TokenListSink())


def test_an_idle_step_waits_for_audio_instead_of_spinning(realtime_pipe, audios) -> None:  # type: ignore[no-untyped-def]
    core = EngineCore(realtime_pipe, EngineConfig(max_batch=1))
    waits: list[float] = []
    wake = core.program._wake
    core.program._wake = type("Wake", (), {"wait": lambda self, t: waits.append(t), "set": wake.set, "clear": wake.clear})()  # fmt: skip
    client = _Client(audios["en"], None, 0)
    core.add(core.make_sequence(client.request, client.sink))
    core.step()  # admitted, no audio yet: the step ends waiting for a push
    client.feed.push(audios["en"][:9000])
    core.step()  # the prompt's audio is there: an id, no wait
    assert len(waits) == 1 and len(client.ids) == 1


def test_async_engine_with_a_live_client(realtime_pipe, audios) -> None:  # type: ignore[no-untyped-def]
    async def main() -> list[int]:
        engine = Engine(realtime_pipe, EngineConfig(max_batch=2))
        engine.start()
        try:
            request = realtime_pipe.realtime_request("medium")
            feed = request.feed
            tokens = engine.submit(request)

            async def produce() -> None:
                for start in range(0, len(audios["fr"]), 2048):
                    feed.push(audios["fr"][start : start + 2048])
                    await asyncio.sleep(0.001)
                feed.close()

            producer = asyncio.create_task(produce())
            ids = [t.id async for t in tokens]
            await producer
            assert tokens.finish_reason == "stop" and tokens.usage.completion_tokens == len(ids)
            return ids
        finally:
            engine.stop()

    assert asyncio.run(main()) == _alone(realtime_pipe, audios["fr"])
