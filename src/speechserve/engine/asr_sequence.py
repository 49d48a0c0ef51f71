"""What a caller asks the ASR engine for, and one request's state inside it from admission to its last id."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Protocol

import torch

from speechserve.asr.generation import Sampler
from speechserve.engine.sequence import Status
from speechserve.engine.token_stream import GeneratedToken, GenerationTiming, TokenUsage
from speechserve.tokenization.voxtral_asr import AudioPrompt


@dataclass(frozen=True)
class ASRRequest:
    """One prompt to answer: a transcription chunk or an audio chat, with its own sampling settings."""

    prompt: AudioPrompt
    max_tokens: int
    """Most ids to generate (the end-of-sequence id included); the engine also stops at its context."""
    temperature: float = 0.0
    """0: greedy (argmax, as the reference); above 0: softmax(logits / T) within the top-p nucleus."""
    top_p: float = 1.0
    seed: int | None = None
    """Seed of this request's own ``torch.Generator``: its ids never depend on the rest of the batch."""
    request_id: str = field(default_factory=lambda: uuid.uuid4().hex)


class TokenSink(Protocol):
    """Where a sequence's ids go: an async :class:`TokenStream`, or a list for offline use and tests."""

    usage: TokenUsage
    timing: GenerationTiming

    @property
    def cancelled(self) -> bool: ...

    def deliver(self, token: GeneratedToken) -> None: ...

    def fail(self, exc: BaseException) -> None: ...

    def close(self, finish_reason: str) -> None: ...


@dataclass(eq=False)
class ASRSequence:
    """Mutable per-request state. Owned by the engine thread only.

    The attribute names (``status``, ``slot``, ``n_prefilled``, ``prompt_len``, ``hidden``, ``sink``) are
    the ones the shared :class:`~speechserve.engine.scheduler.Scheduler` reads.
    """

    request: ASRRequest
    sink: TokenSink
    sampler: Sampler
    max_tokens: int
    """The request's cap, lowered to what fits in the slot's context."""
    status: Status = Status.WAITING
    slot: int = -1
    n_prefilled: int = 0
    prompt_embeds: torch.Tensor | None = None  # [L, dim], built at admission, dropped after prefill
    hidden: torch.Tensor | None = None  # normed hidden that produces the next id [dim]
    tokens: list[int] = field(default_factory=list)
    finish_reason: str | None = None  # "stop", "length", "cancelled", "error"

    @property
    def prompt_len(self) -> int:
        return len(self.request.prompt.ids)

    @property
    def position(self) -> int:
        """Decoder position of the last generated id when it is fed back."""
        return self.prompt_len + len(self.tokens) - 1
