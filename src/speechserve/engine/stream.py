"""The caller's side of one request: an async iterator of audio chunks that can be cancelled.

The engine thread pushes chunks with ``loop.call_soon_threadsafe``; the consumer awaits them. Cancelling
(explicitly, or by abandoning the iterator) tells the engine to stop generating and free the slot.
"""

from __future__ import annotations

import asyncio

from speechserve.engine.channel import ThreadChannel
from speechserve.engine.request import Usage
from speechserve.options import AudioChunk


class AudioStream(ThreadChannel[AudioChunk]):
    """Async iterator of :class:`AudioChunk`; the last one has ``is_last``. Errors surface on iteration."""

    def __init__(self, request_id: str, input_tokens: int, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__(loop)
        self.request_id = request_id
        self.usage = Usage(input_tokens=input_tokens)
        self.first_chunk_at: float | None = None  # loop time the first audio arrived (for TTFA metrics)
        self.finish_reason: str | None = None

    # engine side (any thread)
    def deliver(self, chunk: AudioChunk) -> None:
        self._push(chunk)

    def fail(self, exc: BaseException) -> None:
        self._push(exc)

    def close(self, finish_reason: str | None = None) -> None:
        self.finish_reason = finish_reason
        self._push_end()

    def _received(self, item: AudioChunk) -> None:
        if self.first_chunk_at is None:
            self.first_chunk_at = self._loop.time()

    async def collect(self) -> AudioChunk:
        """Await the whole utterance as one chunk."""
        import numpy as np

        parts = [c async for c in self]
        rate = parts[0].sample_rate if parts else 24000
        samples = np.concatenate([p.samples for p in parts]) if parts else np.zeros(0, np.float32)
        return AudioChunk(samples, rate, 0, sum(p.n_frames for p in parts), True)
