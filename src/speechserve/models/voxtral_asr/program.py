"""Voxtral ASR's engine program: what the shared loop drives for transcription and audio chat.

- admission (``begin``): the audio encoder + adapter turn each prompt's audio into decoder rows;
- ``sample``: one batched logits call for every ready sequence, each row greedy or sampled with its own
  request's settings and generator; end-of-sequence or the cap finishes;
- ``emit``: nothing (ids are delivered as they are sampled);
- ``advance``: one batched decoder step feeding the new ids back, each sequence at its own position of its
  own slot. ``config.eager`` has no effect yet (no CUDA-graph path for this decode step).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch

from speechserve.engine.core import EngineConfig
from speechserve.engine.kv_slots import slot_bytes
from speechserve.engine.program import Sequence, Sink, Status
from speechserve.engine.request import ASRRequest
from speechserve.engine.token_stream import GeneratedToken, TokenStream
from speechserve.errors import InvalidRequest
from speechserve.models.sampling import Sampler
from speechserve.models.voxtral_asr.pipeline import VoxtralASRPipeline
from speechserve.models.voxtral_asr.runner import ASRModelRunner


@dataclass(eq=False, kw_only=True)
class ASRSequence(Sequence):
    """Mutable per-request state. Owned by the engine thread only."""

    sampler: Sampler
    max_tokens: int
    """The request's cap, lowered to what fits in the slot's context."""
    prompt_embeds: torch.Tensor | None = None  # [L, dim], built at admission, dropped after prefill
    hidden: torch.Tensor | None = None  # normed hidden that produces the next id [dim]
    tokens: list[int] = field(default_factory=list)

    @property
    def prompt_len(self) -> int:
        return len(self.request.prompt.ids)

    @property
    def position(self) -> int:
        """Decoder position of the last generated id when it is fed back."""
        return self.prompt_len + len(self.tokens) - 1

    def finish(self, reason: str) -> None:
        super().finish(reason)
        self.hidden = self.prompt_embeds = None
        self.sink.timing.finished_at = time.perf_counter()


class VoxtralASRProgram:
    """Lifetime: its engine's. ``runner`` owns the KV slots."""

    frame_seconds = 1.0  # no audio pacing: text is delivered as it is sampled

    def __init__(self, pipeline: VoxtralASRPipeline, config: EngineConfig) -> None:
        self.pipeline, self.config, self.model = pipeline, config, pipeline.model
        self.stop_ids = frozenset({pipeline.tokenizer.eos_id})
        self.runner: ASRModelRunner | None = None
        self._max_len = config.max_seq_len

    # ---- sizing --------------------------------------------------------------------------------------------
    def max_seq_len(self, requested: int) -> int:
        return min(requested, self.model.cfg.decoder.max_seq_len)

    def slot_bytes(self, max_len: int) -> int:
        return slot_bytes(self.model.cfg.decoder, max_len, self.model.decoder.norm.weight.dtype.itemsize)

    def allocate(self, n_slots: int, max_len: int) -> None:
        self._max_len = max_len
        self.runner = ASRModelRunner(self.model, n_slots, max_len)

    # ---- requests ------------------------------------------------------------------------------------------
    def open_stream(self, request: ASRRequest, loop: asyncio.AbstractEventLoop) -> TokenStream:
        return TokenStream(request.request_id, len(request.prompt.ids), loop)

    def new_sequence(self, request: ASRRequest, sink: Sink) -> ASRSequence:
        """Check the request fits (InvalidRequest otherwise) and build its sequence."""
        n_prompt = len(request.prompt.ids)
        room = self._max_len - n_prompt
        if room < 1:
            raise InvalidRequest(
                f"the prompt has {n_prompt} tokens (audio: 375 per 30 s); this server's context per request "
                f"is {self._max_len} (asr_max_seq_len)"
            )
        if request.max_tokens < 1:
            raise InvalidRequest("max_tokens must be at least 1", param="max_tokens")
        sampler = Sampler(request.temperature, request.top_p, request.seed)
        sink.usage.prompt_tokens = n_prompt  # type: ignore[attr-defined]
        return ASRSequence(request, sink, sampler=sampler, max_tokens=min(request.max_tokens, room))

    def begin(self, seq: ASRSequence) -> None:
        """The audio encoder, on the engine thread."""
        seq.sink.timing.admitted_at = time.perf_counter()
        seq.prompt_embeds = self.pipeline.prompt_embeddings(seq.request.prompt)

    # ---- the step ------------------------------------------------------------------------------------------
    def prefill(self, seq: ASRSequence, start: int, n: int) -> None:
        hidden = self.runner.prefill(seq.slot, seq.prompt_embeds[start : start + n], start)  # type: ignore[union-attr,index]
        seq.n_prefilled = start + n
        if seq.n_prefilled == seq.prompt_len:
            seq.hidden, seq.status, seq.prompt_embeds = hidden, Status.DECODING, None

    def is_ready(self, seq: ASRSequence) -> bool:
        return seq.hidden is not None

    def sample(self, ready: list[ASRSequence]) -> None:
        logits = self.runner.logits(torch.stack([s.hidden for s in ready]))  # type: ignore[misc,union-attr]
        greedy = logits.argmax(-1).tolist()
        ids = [g if s.sampler.temperature == 0.0 else s.sampler(row) for s, g, row in zip(ready, greedy, logits, strict=True)]  # fmt: skip
        chosen = torch.tensor(ids, device=logits.device)[:, None]
        logprobs = torch.log_softmax(logits, dim=-1).gather(1, chosen)[:, 0].tolist()
        now = time.perf_counter()
        for seq, token, logprob in zip(ready, ids, logprobs, strict=True):
            seq.hidden = None
            seq.tokens.append(token)
            seq.sink.usage.completion_tokens += 1
            if seq.sink.timing.first_token_at is None:
                seq.sink.timing.first_token_at = now
            seq.sink.deliver(GeneratedToken(token, logprob))
            if token in self.stop_ids:
                seq.finish("stop")
            elif len(seq.tokens) >= seq.max_tokens:
                seq.finish("length")

    def emit(self, seqs: list[ASRSequence], pacing: Any, clock: Callable[[], float]) -> None:
        """Ids were delivered by ``sample``."""

    def advance(self, cont: list[ASRSequence]) -> None:
        slots, positions = [s.slot for s in cont], [s.position for s in cont]
        hidden = self.runner.decode(slots, positions, [s.tokens[-1] for s in cont])  # type: ignore[union-attr]
        for seq, h in zip(cont, hidden, strict=True):
            seq.hidden = h

    def finish(self, seq: ASRSequence) -> None:
        """Nothing to flush."""
