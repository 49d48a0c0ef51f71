"""The caller's side of one text-generation request: an async iterator of generated ids, cancellable.

The ASR engine thread pushes ids with ``loop.call_soon_threadsafe``; the consumer awaits them. Cancelling
(explicitly, or by abandoning the iterator) tells the engine to stop and free the KV slot. The engine
writes usage, timing and the finish reason before it closes the stream, so they are final once the
iteration has ended.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator
from dataclasses import dataclass

_END = object()


@dataclass(frozen=True)
class GeneratedToken:
    """One generated id (the end-of-sequence id included) and its log-probability under the raw logits."""

    id: int
    logprob: float


@dataclass
class TokenUsage:
    """Prompt positions in, generated ids out (end of sequence included)."""

    prompt_tokens: int = 0
    completion_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


@dataclass
class GenerationTiming:
    """Engine-thread ``time.perf_counter()`` stamps of one request (None until reached)."""

    admitted_at: float | None = None
    """The engine started on the prompt (audio encoder, then prefill)."""
    first_token_at: float | None = None
    finished_at: float | None = None

    @property
    def prompt_seconds(self) -> float:
        """Audio encoding + prefill + the first token."""
        if self.admitted_at is None or self.first_token_at is None:
            return 0.0
        return self.first_token_at - self.admitted_at

    @property
    def completion_seconds(self) -> float:
        """First token → last token."""
        if self.first_token_at is None or self.finished_at is None:
            return 0.0
        return self.finished_at - self.first_token_at


class TokenStream:
    """Async iterator of :class:`GeneratedToken`. Errors surface on iteration."""

    def __init__(self, request_id: str, prompt_tokens: int, loop: asyncio.AbstractEventLoop) -> None:
        self.request_id = request_id
        self.usage = TokenUsage(prompt_tokens=prompt_tokens)
        self.timing = GenerationTiming()
        self.finish_reason: str | None = None
        """"stop" (end of sequence), "length" (token cap), "cancelled" or "error"."""
        self._loop = loop
        self._queue: asyncio.Queue[object] = asyncio.Queue()
        self._cancelled = threading.Event()

    # ---- engine side (any thread) --------------------------------------------------------------------------
    @property
    def cancelled(self) -> bool:
        return self._cancelled.is_set()

    def deliver(self, token: GeneratedToken) -> None:
        self._loop.call_soon_threadsafe(self._queue.put_nowait, token)

    def fail(self, exc: BaseException) -> None:
        self.finish_reason = "error"
        self._loop.call_soon_threadsafe(self._queue.put_nowait, exc)

    def close(self, finish_reason: str) -> None:
        self.finish_reason = finish_reason
        self._loop.call_soon_threadsafe(self._queue.put_nowait, _END)

    # ---- caller side (event loop) ---------------------------------------------------------------------------
    def cancel(self) -> None:
        """Stop generation; ids already queued are dropped."""
        self._cancelled.set()

    def __aiter__(self) -> AsyncIterator[GeneratedToken]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[GeneratedToken]:
        try:
            while True:
                item = await self._queue.get()
                if item is _END:
                    return
                if isinstance(item, BaseException):
                    raise item
                assert isinstance(item, GeneratedToken)
                yield item
        finally:
            self._cancelled.set()  # abandoned or finished: the engine may free the request
