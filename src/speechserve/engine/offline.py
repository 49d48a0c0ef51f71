"""Driving the engine from synchronous code (the SDK, the CLI, benchmarks): no threads, no event loop."""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator

import numpy as np

from speechserve.engine.engine_core import EngineCore
from speechserve.engine.request import SpeechRequest, Usage
from speechserve.options import AudioChunk


class ListSink:
    """Collects one request's chunks in memory (the offline counterpart of ``AudioStream``)."""

    def __init__(self) -> None:
        self.usage = Usage()
        self.chunks: deque[AudioChunk] = deque()
        self.error: BaseException | None = None
        self.done = False
        self._cancelled = False

    @property
    def cancelled(self) -> bool:
        return self._cancelled

    def cancel(self) -> None:
        self._cancelled = True

    def deliver(self, chunk: AudioChunk) -> None:
        self.chunks.append(chunk)

    def fail(self, exc: BaseException) -> None:
        self.error, self.done = exc, True

    def close(self) -> None:
        self.done = True


def stream(core: EngineCore, request: SpeechRequest) -> Iterator[AudioChunk]:
    """Yield one request's chunks as the engine produces them (validation errors raise at once)."""
    sink = ListSink()
    prompt = core.pipeline.prompt(request.text, request.voice, request.ref_audio)
    core.add(core.make_sequence(request, sink, prompt))
    return _drain(core, sink)


def _drain(core: EngineCore, sink: ListSink) -> Iterator[AudioChunk]:
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
        core.add(core.make_sequence(req, sink, core.pipeline.prompt(req.text, req.voice, req.ref_audio)))
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
