"""Driving the engine from synchronous code (the SDK, the CLI, benchmarks): no threads, no event loop."""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator
from typing import Any

import numpy as np

from speechserve.engine.core import EngineCore
from speechserve.engine.request import SpeechRequest, Usage
from speechserve.engine.token_stream import GenerationTiming, TokenUsage
from speechserve.options import AudioChunk


class ListSink:
    """Collects one request's outputs in memory (the offline counterpart of the async streams)."""

    def __init__(self) -> None:
        self.usage = Usage()
        self.chunks: deque[Any] = deque()
        self.finish_reason: str | None = None
        self.error: BaseException | None = None
        self.done = False
        self._cancelled = False

    @property
    def cancelled(self) -> bool:
        return self._cancelled

    def cancel(self) -> None:
        self._cancelled = True

    def deliver(self, chunk: Any) -> None:
        self.chunks.append(chunk)

    def fail(self, exc: BaseException) -> None:
        self.error, self.done, self.finish_reason = exc, True, "error"

    def close(self, finish_reason: str | None = None) -> None:
        self.done, self.finish_reason = True, finish_reason


class TokenListSink(ListSink):
    """A :class:`ListSink` with the token accounting text programs write."""

    def __init__(self) -> None:
        super().__init__()
        self.usage = TokenUsage()  # type: ignore[assignment]
        self.timing = GenerationTiming()


def stream(core: EngineCore, request: Any, sink: ListSink | None = None) -> Iterator[Any]:
    """Yield one request's outputs as the engine produces them (validation errors raise at once)."""
    sink = sink or ListSink()
    core.add(core.make_sequence(request, sink))
    return _drain(core, sink)


def _drain(core: EngineCore, sink: ListSink) -> Iterator[Any]:
    try:
        while True:
            while sink.chunks:
                yield sink.chunks.popleft()
            if sink.error is not None:
                raise sink.error
            if sink.done:
                return
            core.step()
    finally:
        sink.cancel()
        while core.has_work and not sink.done:  # let the engine release the abandoned request
            core.step()


def generate_batch(core: EngineCore, requests: list[SpeechRequest]) -> list[tuple[AudioChunk, Usage]]:
    """Run many requests together (continuous batching) and return each whole utterance."""
    sinks = []
    for req in requests:
        sink = ListSink()
        core.add(core.make_sequence(req, sink))
        sinks.append(sink)
    while not all(s.done for s in sinks):
        core.step()
    out = []
    for sink in sinks:
        if sink.error is not None:
            raise sink.error
        parts = list(sink.chunks)
        samples = np.concatenate([c.samples for c in parts]) if parts else np.zeros(0, np.float32)
        out.append(
            (
                AudioChunk(samples, core.pipeline.sample_rate, 0, sum(c.n_frames for c in parts), True),
                sink.usage,
            )
        )
    return out
