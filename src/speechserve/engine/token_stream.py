"""The caller's side of one text-generation request: an async iterator of generated ids, cancellable.

The engine thread pushes ids with ``loop.call_soon_threadsafe``; the consumer awaits them. Cancelling
(explicitly, or by abandoning the iterator) tells the engine to stop and free the KV slot. The engine
writes usage, timing and the finish reason before it closes the stream, so they are final once the
iteration has ended.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from speechserve.engine.channel import ThreadChannel


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


class TokenStream(ThreadChannel[GeneratedToken]):
    """Async iterator of :class:`GeneratedToken`. Errors surface on iteration."""

    def __init__(self, request_id: str, prompt_tokens: int, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__(loop)
        self.request_id = request_id
        self.usage = TokenUsage(prompt_tokens=prompt_tokens)
        self.timing = GenerationTiming()
        self.finish_reason: str | None = None
        """"stop" (end of sequence), "length" (token cap), "cancelled" or "error"."""

    # engine side (any thread)
    def deliver(self, token: GeneratedToken) -> None:
        self._push(token)

    def fail(self, exc: BaseException) -> None:
        self.finish_reason = "error"
        self._push(exc)

    def close(self, finish_reason: str | None = None) -> None:
        self.finish_reason = finish_reason
        self._push_end()
