"""Voxtral Realtime's engine program: many audio streams batched on the shared engine loop.

A sequence is one stream in one slot of a :class:`StreamRunner` (its conv tails and ring KV caches). It is
fed either a whole file (an ``ASRRequest`` whose prompt is a ``FilePrompt``: the server's transcription
route) or a live :class:`AudioFeed` (a ``RealtimeRequest``) that its client pushes into from any thread.

- ``is_ready``: the stream's audio (drained from its feed) covers its next 80 ms position — or the stream
  has ended and is used up, so that ``sample`` can finish it;
- ``sample``: ONE batched step for every ready stream (new audio encoded, one fused position — the prompt
  at the start — through the decoder, logits, greedy or the request's own sampler), ids delivered at once;
- ``emit``: nothing to deliver; when no stream could move this step it waits briefly for audio instead of
  letting the loop spin (see below);
- ``advance``: nothing — the next input of a stream needs audio that may not have arrived, so the whole
  model call happens in ``sample``.

Working around the engine contract (described in the issue report): the prompt of a stream needs 562.5 ms of
audio (at 480 ms delay) that may not exist when the loop admits and prefills it, and prefill cannot wait.
So a sequence declares ``prompt_len == 0``, becomes DECODING at admission, and its prompt is fed by its
first ``sample``. And because the loop steps as fast as it can while sequences are running, ``emit`` blocks
up to :data:`IDLE_WAIT_SECONDS` on a wake-up event that every audio push sets, when no stream was ready.
Joins and leaves happen at any step; a cancelled sequence's slot is reset for the next stream.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch

from speechserve.engine.core import EngineConfig
from speechserve.engine.program import Sequence, Sink, Status
from speechserve.engine.request import ASRRequest
from speechserve.engine.token_stream import GeneratedToken, TokenStream
from speechserve.errors import InvalidRequest
from speechserve.models.sampling import Sampler
from speechserve.models.voxtral_realtime.cache import stream_bytes
from speechserve.models.voxtral_realtime.pipeline import VoxtralRealtimePipeline
from speechserve.models.voxtral_realtime.request import AudioFeed, FilePrompt, RealtimeRequest
from speechserve.models.voxtral_realtime.runner import StreamRunner
from speechserve.models.voxtral_realtime.stream import StreamState
from speechserve.models.voxtral_realtime.tokenizer import StreamPrompt

IDLE_WAIT_SECONDS = 0.02
"""Longest pause of an engine step in which no stream had audio for its next position (a push ends it)."""


@dataclass(eq=False, kw_only=True)
class RealtimeSequence(Sequence):
    """One stream's state inside the engine. Owned by the engine thread only."""

    prompt: StreamPrompt
    sampler: Sampler
    max_tokens: int | None
    feed: AudioFeed | None = None
    """Live audio (None: a whole file, pushed at admission)."""
    file: FilePrompt | None = None
    stream: StreamState | None = None
    """Built at admission, dropped when finished."""
    tokens: list[int] = field(default_factory=list)

    @property
    def prompt_len(self) -> int:
        return 0  # the prompt is fed by the first sample step, once its audio has arrived

    def finish(self, reason: str) -> None:
        super().finish(reason)
        self.stream = self.file = None
        timing = getattr(self.sink, "timing", None)
        if timing is not None:
            timing.finished_at = time.perf_counter()


class VoxtralRealtimeProgram:
    """Lifetime: its engine's. ``runner`` owns the streams' slots."""

    frame_seconds = 1.0  # text is delivered as it is sampled; no audio pacing

    def __init__(self, pipeline: VoxtralRealtimePipeline, config: EngineConfig) -> None:
        self.pipeline, self.config, self.model = pipeline, config, pipeline.model
        self.stop_ids = frozenset({pipeline.tokenizer.eos_id})
        self.max_positions = self.model.cfg.decoder.max_seq_len
        self.runner: StreamRunner | None = None
        self._wake = threading.Event()

    # ---- sizing --------------------------------------------------------------------------------------------
    def max_seq_len(self, requested: int) -> int:
        return requested  # a stream's state is bounded by its windows, not by its length

    def slot_bytes(self, max_len: int) -> int:
        return stream_bytes(self.model.cfg, self.model.dtype.itemsize)

    def allocate(self, n_slots: int, max_len: int) -> None:
        self.runner = StreamRunner(self.model, n_slots)

    # ---- requests ------------------------------------------------------------------------------------------
    def open_stream(self, request: Any, loop: asyncio.AbstractEventLoop) -> TokenStream:
        return TokenStream(request.request_id, 0, loop)

    def new_sequence(self, request: ASRRequest | RealtimeRequest, sink: Sink) -> RealtimeSequence:
        """Check the request (InvalidRequest otherwise) and build its sequence."""
        if request.max_tokens is not None and request.max_tokens < 1:
            raise InvalidRequest("max_tokens must be at least 1", param="max_tokens")
        sampler = Sampler(request.temperature, request.top_p, request.seed)
        if isinstance(request, RealtimeRequest):
            prompt = self.pipeline.stream_prompt(request.delay_ms)
            request.feed.on_data = self._wake.set
            seq = RealtimeSequence(request, sink, prompt=prompt, sampler=sampler, max_tokens=request.max_tokens, feed=request.feed)  # fmt: skip
        elif isinstance(request, ASRRequest) and isinstance(request.prompt, FilePrompt):
            prompt = self.pipeline.stream_prompt(request.prompt.delay_ms)
            seq = RealtimeSequence(request, sink, prompt=prompt, sampler=sampler, max_tokens=request.max_tokens, file=request.prompt)  # fmt: skip
        else:
            raise InvalidRequest(f"Voxtral Realtime takes audio streams, not {type(request).__name__}")
        sink.usage.prompt_tokens = len(prompt.ids)  # type: ignore[attr-defined]
        return seq

    def begin(self, seq: RealtimeSequence) -> None:
        """A fresh stream in the sequence's slot; a file is pushed whole and closed."""
        assert self.runner is not None
        seq.sink.timing.admitted_at = time.perf_counter()  # type: ignore[attr-defined]
        seq.stream = self.runner.open(seq.prompt, seq.slot)
        if seq.file is not None:
            seq.stream.push(seq.file.samples)
            seq.stream.end()

    # ---- the step ------------------------------------------------------------------------------------------
    def prefill(self, seq: RealtimeSequence, start: int, n: int) -> None:
        seq.status = Status.DECODING  # nothing to prefill before the audio is there (prompt_len is 0)

    def is_ready(self, seq: RealtimeSequence) -> bool:
        stream = seq.stream
        if stream is None:
            return False
        if seq.feed is not None and not stream.ended:
            pieces, closed = seq.feed.drain()
            for piece in pieces:
                stream.push(piece)
            if closed:
                stream.end()
        return stream.ready or stream.exhausted

    def sample(self, ready: list[RealtimeSequence]) -> None:
        assert self.runner is not None
        active = []
        for seq in ready:
            stream = seq.stream
            assert stream is not None
            if stream.exhausted:
                seq.finish("stop")
            elif stream.n_fed + stream.tokens_needed > self.max_positions:
                seq.finish("length")
            else:
                active.append(seq)
        if not active:
            return
        logits = self.runner.decode_streams([s.stream for s in active])  # type: ignore[misc]
        greedy = logits.argmax(-1).tolist()
        ids = [g if s.sampler.temperature == 0.0 else s.sampler(row) for s, g, row in zip(active, greedy, logits, strict=True)]  # fmt: skip
        chosen = torch.tensor(ids, device=logits.device)[:, None]
        logprobs = torch.log_softmax(logits, dim=-1).gather(1, chosen)[:, 0].tolist()
        now = time.perf_counter()
        for seq, token, logprob in zip(active, ids, logprobs, strict=True):
            seq.stream.last_id = token  # type: ignore[union-attr]
            seq.tokens.append(token)
            seq.sink.usage.completion_tokens += 1  # type: ignore[attr-defined]
            if seq.sink.timing.first_token_at is None:  # type: ignore[attr-defined]
                seq.sink.timing.first_token_at = now  # type: ignore[attr-defined]
            seq.sink.deliver(GeneratedToken(token, logprob))
            if token in self.stop_ids:
                seq.finish("stop")
            elif seq.max_tokens is not None and len(seq.tokens) >= seq.max_tokens:
                seq.finish("length")

    def emit(self, seqs: list[RealtimeSequence], pacing: Any, clock: Callable[[], float]) -> None:
        """Ids were delivered by ``sample``."""

    def wait_for_input(self, timeout: float) -> None:
        """The engine made no progress this step: wait for a push of audio (or ``timeout``), not spin."""
        self._wake.wait(min(timeout, IDLE_WAIT_SECONDS))
        self._wake.clear()

    def advance(self, seqs: list[RealtimeSequence]) -> None:
        """Everything ran in ``sample`` (the next input needs audio that may still be on its way)."""

    def finish(self, seq: RealtimeSequence) -> None:
        """Nothing to flush."""
