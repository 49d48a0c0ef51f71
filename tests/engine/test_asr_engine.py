"""The ASR engine batches invisibly: every request gets exactly the ids it gets alone through the SDK's
single-sequence loop (greedy), whoever joins, leaves or is cancelled around it; sampling is per request;
failures and overload stay with the request that caused them."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

import numpy as np
import pytest

from speechserve import TranscriptionOptions
from speechserve.engine import ASRRequest, EngineConfig, EngineCore
from speechserve.engine import Engine as ASREngine
from speechserve.engine.token_stream import GeneratedToken, GenerationTiming, TokenUsage
from speechserve.errors import EngineDead, InvalidRequest, Overloaded

RATE = 16000
# (seconds of audio, language, max_tokens)
CASES = [(1.0, None, 6), (2.5, "fr", 9), (0.5, "en", 4), (3.0, None, 12), (1.5, "de", 7), (2.0, None, 5)]


def _audio(seconds: float, seed: int) -> np.ndarray:
    return (np.random.default_rng(seed).standard_normal(int(seconds * RATE)) * 0.1).astype(np.float32)


@dataclass
class ListSink:
    """Collects one request's ids (the offline counterpart of ``TokenStream``)."""

    usage: TokenUsage = field(default_factory=TokenUsage)
    timing: GenerationTiming = field(default_factory=GenerationTiming)
    tokens: list[GeneratedToken] = field(default_factory=list)
    finish_reason: str | None = None
    error: BaseException | None = None
    stop: bool = False

    @property
    def cancelled(self) -> bool:
        return self.stop

    def deliver(self, token: GeneratedToken) -> None:
        self.tokens.append(token)

    def fail(self, exc: BaseException) -> None:
        self.error, self.finish_reason = exc, "error"

    def close(self, finish_reason: str) -> None:
        self.finish_reason = finish_reason


def _request(asr, i: int, temperature: float = 0.0, seed: int | None = None) -> ASRRequest:
    seconds, language, cap = CASES[i]
    prompt = asr.tokenizer.encode_transcription(_audio(seconds, i), language)
    return ASRRequest(prompt, cap, temperature=temperature, seed=seed)


_ALONE: dict[int, tuple[list[int], str]] = {}


def _alone(asr, i: int) -> tuple[list[int], str]:
    """The SDK's one-request loop: ids (end of sequence excluded) and finish reason."""
    if i not in _ALONE:
        _ALONE[i] = _transcribe_alone(asr, i)
    return _ALONE[i]


def _transcribe_alone(asr, i: int) -> tuple[list[int], str]:
    seconds, language, cap = CASES[i]
    opts = TranscriptionOptions(language=language, max_tokens=cap)
    seg = asr.transcribe((_audio(seconds, i), RATE), opts).segments[0]
    return seg.tokens, seg.finish_reason


def _submit(core: EngineCore, req: ASRRequest) -> ListSink:
    sink = ListSink()
    core.add(core.make_sequence(req, sink))
    return sink


def test_batched_greedy_equals_alone_with_joins_and_a_cancel(tiny_asr) -> None:
    core = EngineCore(tiny_asr, EngineConfig(max_batch=3, prefill_chunk_tokens=160, max_seq_len=1024))
    reqs = [_request(tiny_asr, i) for i in range(len(CASES))]
    sinks = {0: _submit(core, reqs[0]), 1: _submit(core, reqs[1])}
    for _ in range(4):
        core.step()
    sinks[2] = _submit(core, reqs[2])  # joins mid-batch; its 380-token prompt prefills in chunks of 160
    sinks[3] = _submit(core, reqs[3])  # the victim
    for _ in range(3):
        core.step()
    sinks[3].stop = True  # cancelled while running
    sinks[4] = _submit(core, reqs[4])
    sinks[5] = _submit(core, reqs[5])  # waits for a free slot (max_batch 3), then joins
    steps = 0
    while core.has_work:
        core.step()
        steps += 1
        assert core.n_running <= 3
    assert steps < 80
    for i, sink in sinks.items():
        if i == 3:
            continue
        ids, finish = _alone(tiny_asr, i)
        got = [t.id for t in sink.tokens]
        assert got[: len(ids)] == ids and (finish, sink.finish_reason) in {("stop",) * 2, ("length",) * 2}
        assert sink.error is None and sink.usage.completion_tokens == len(got)
        assert sink.usage.prompt_tokens == len(reqs[i].prompt.ids)
        assert all(t.logprob <= 0 for t in sink.tokens)
        assert sink.timing.admitted_at <= sink.timing.first_token_at <= sink.timing.finished_at
    victim = sinks[3]
    assert victim.finish_reason == "cancelled" and len(victim.tokens) < CASES[3][2]
    assert core.scheduler.slots.n_free == 3  # every slot came back


def test_sampling_follows_each_requests_seed_whatever_the_batch(tiny_asr) -> None:
    def run(indices: list[int], seed_of) -> dict[int, list[int]]:
        core = EngineCore(tiny_asr, EngineConfig(max_batch=4, max_seq_len=1024))
        sinks = {i: _submit(core, _request(tiny_asr, i, 1.3, seed_of(i))) for i in indices}
        while core.has_work:
            core.step()
        return {i: [t.id for t in s.tokens] for i, s in sinks.items()}

    together = run([0, 1, 3], lambda i: 100 + i)
    alone = run([1], lambda i: 100 + i)
    assert together[1] == alone[1]  # the batch around a request never changes its draws
    assert run([1, 3], lambda i: 7)[1] != alone[1]  # another seed, other draws


def test_a_failing_request_fails_alone(tiny_asr, monkeypatch: pytest.MonkeyPatch) -> None:
    core = EngineCore(tiny_asr, EngineConfig(max_batch=4, max_seq_len=1024))
    bad = _request(tiny_asr, 2)
    original = tiny_asr.prompt_embeddings

    def flaky(prompt):
        if prompt is bad.prompt:
            raise RuntimeError("encoder exploded")
        return original(prompt)

    monkeypatch.setattr(tiny_asr, "prompt_embeddings", flaky)
    good, broken = _submit(core, _request(tiny_asr, 0)), _submit(core, bad)
    while core.has_work:
        core.step()
    assert isinstance(broken.error, RuntimeError) and broken.finish_reason == "error"
    want, _ = _alone(tiny_asr, 0)
    assert good.error is None and [t.id for t in good.tokens][: len(want)] == want
    assert core.scheduler.slots.n_free == 4


def test_prompt_longer_than_the_context_is_refused_at_once(tiny_asr) -> None:
    core = EngineCore(tiny_asr, EngineConfig(max_seq_len=256))
    with pytest.raises(InvalidRequest, match="context"):
        core.make_sequence(_request(tiny_asr, 0), ListSink())


def test_async_engine_streams_overloads_and_cancels(tiny_asr) -> None:
    async def main() -> None:
        engine = ASREngine(tiny_asr, EngineConfig(max_batch=1, max_waiting=1, max_seq_len=1024))
        engine.start()
        try:
            stream = engine.submit(_request(tiny_asr, 0))
            ids = [t.id async for t in stream]
            assert ids[: len(_alone(tiny_asr, 0)[0])] == _alone(tiny_asr, 0)[0]
            assert stream.finish_reason in ("stop", "length") and stream.usage.completion_tokens == len(ids)
            first = engine.submit(ASRRequest(_request(tiny_asr, 3).prompt, 600))
            it = first.__aiter__()
            await it.__anext__()  # first is running now, holding the only slot
            waiting = engine.submit(_request(tiny_asr, 2))
            with pytest.raises(Overloaded):
                engine.submit(_request(tiny_asr, 4))
            await it.aclose()  # abandoning the iterator cancels the request
            assert [t.id async for t in waiting][: len(_alone(tiny_asr, 2)[0])] == _alone(tiny_asr, 2)[0]
            for _ in range(200):
                if engine.stats().running == 0:
                    break
                await asyncio.sleep(0.01)
            assert engine.stats().running == 0 and first.usage.completion_tokens < 600
            assert first.finish_reason == "cancelled"
        finally:
            engine.stop()
        with pytest.raises(EngineDead):
            engine.submit(_request(tiny_asr, 0))

    asyncio.run(main())
