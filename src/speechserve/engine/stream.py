"""The caller's side of one request: an async iterator of audio chunks that can be cancelled.

The engine thread pushes chunks with ``loop.call_soon_threadsafe``; the consumer awaits them. Cancelling
(explicitly, or by abandoning the iterator) tells the engine to stop generating and free the slot.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator

from speechserve.engine.request import Usage
from speechserve.options import AudioChunk

_END = object()


class AudioStream:
    """Async iterator of :class:`AudioChunk`; the last one has ``is_last``. Errors surface on iteration."""

    def __init__(self, request_id: str, input_tokens: int, loop: asyncio.AbstractEventLoop) -> None:
        self.request_id = request_id
        self.usage = Usage(input_tokens=input_tokens)
        self._loop = loop
        self._queue: asyncio.Queue[object] = asyncio.Queue()
        self._cancelled = threading.Event()
        self.first_chunk_at: float | None = None  # loop time the first audio arrived (for TTFA metrics)

    # ---- engine side (any thread) --------------------------------------------------------------------------
    @property
    def cancelled(self) -> bool:
        return self._cancelled.is_set()

    def deliver(self, chunk: AudioChunk) -> None:
        self._loop.call_soon_threadsafe(self._queue.put_nowait, chunk)

    def fail(self, exc: BaseException) -> None:
        self._loop.call_soon_threadsafe(self._queue.put_nowait, exc)

    def close(self) -> None:
        self._loop.call_soon_threadsafe(self._queue.put_nowait, _END)

    # ---- caller side (event loop) ---------------------------------------------------------------------------
    def cancel(self) -> None:
        """Stop generation; chunks already queued are dropped."""
        self._cancelled.set()

    def __aiter__(self) -> AsyncIterator[AudioChunk]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[AudioChunk]:
        try:
            while True:
                item = await self._queue.get()
                if item is _END:
                    return
                if isinstance(item, BaseException):
                    raise item
                assert isinstance(item, AudioChunk)
                if self.first_chunk_at is None:
                    self.first_chunk_at = self._loop.time()
                yield item
        finally:
            self._cancelled.set()  # abandoned or finished: the engine may free the request

    async def collect(self) -> AudioChunk:
        """Await the whole utterance as one chunk."""
        import numpy as np

        parts = [c async for c in self]
        rate = parts[0].sample_rate if parts else 24000
        samples = np.concatenate([p.samples for p in parts]) if parts else np.zeros(0, np.float32)
        return AudioChunk(samples, rate, 0, sum(p.n_frames for p in parts), True)
