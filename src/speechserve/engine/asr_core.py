"""The synchronous ASR engine loop: one ``step()`` advances every running request by one token.

Step: drop cancelled requests → admit waiting prompts into free KV slots (audio encoder, then chunked
prefill, shared :class:`Scheduler` policy) → one batched logits call for every sequence with a hidden state,
each row sampled with its own request's settings and generator → one batched decoder step feeding the new
ids back, every sequence at its own position of its own slot → free finished slots. Driven by one thread
(the async :class:`ASREngine`, or a test); a failure fails the affected requests, never the engine.
"""

from __future__ import annotations

import logging
import time

import torch

from speechserve.asr.generation import Sampler
from speechserve.asr.pipeline import VoxtralASRPipeline
from speechserve.engine.asr_runner import ASRModelRunner
from speechserve.engine.asr_sequence import ASRRequest, ASRSequence, TokenSink
from speechserve.engine.engine_core import EngineConfig
from speechserve.engine.kv_slots import SlotPool, slots_for_budget
from speechserve.engine.scheduler import Scheduler
from speechserve.engine.sequence import Status
from speechserve.engine.token_stream import GeneratedToken
from speechserve.errors import InvalidRequest

log = logging.getLogger(__name__)


class ASREngineCore:
    """Not thread-safe: exactly one thread calls ``add``/``step``. ``config.eager`` has no effect yet (the
    ASR decode step has no CUDA-graph path)."""

    def __init__(self, pipeline: VoxtralASRPipeline, config: EngineConfig | None = None) -> None:
        self.pipeline, self.config = pipeline, config or EngineConfig()
        model = pipeline.model
        n_slots = self.config.max_batch
        if self.config.kv_cache_bytes is not None:
            itemsize = model.decoder.norm.weight.dtype.itemsize
            n_slots = slots_for_budget(
                model.cfg.decoder, self.config.max_seq_len, itemsize, self.config.kv_cache_bytes, n_slots
            )
        self.max_seq_len = min(self.config.max_seq_len, model.cfg.decoder.max_seq_len)
        self.runner = ASRModelRunner(model, n_slots, self.max_seq_len)
        # admission and prefill chunking are the TTS engine's policy; its audio-chunk pacing is unused here
        self.scheduler = Scheduler(SlotPool(n_slots), self.config.prefill_chunk_tokens, 0.0, 1.0)
        self.stop_ids = frozenset({pipeline.tokenizer.eos_id})
        self.steps = 0

    # ---- requests ------------------------------------------------------------------------------------------
    def make_sequence(self, request: ASRRequest, sink: TokenSink) -> ASRSequence:
        """Check the request fits and build its sequence (call before ``add``); InvalidRequest otherwise."""
        n_prompt = len(request.prompt.ids)
        room = self.max_seq_len - n_prompt
        if room < 1:
            raise InvalidRequest(
                f"the prompt has {n_prompt} tokens (audio: 375 per 30 s); this server's context per request "
                f"is {self.max_seq_len} (asr_max_seq_len)"
            )
        if request.max_tokens < 1:
            raise InvalidRequest("max_tokens must be at least 1", param="max_tokens")
        sampler = Sampler(request.temperature, request.top_p, request.seed)
        sink.usage.prompt_tokens = n_prompt
        return ASRSequence(request, sink, sampler, min(request.max_tokens, room))

    def add(self, seq: ASRSequence) -> None:
        self.scheduler.add(seq)  # type: ignore[arg-type]

    @property
    def has_work(self) -> bool:
        return self.scheduler.has_work

    @property
    def n_waiting(self) -> int:
        return len(self.scheduler.waiting)

    @property
    def n_running(self) -> int:
        return len(self.scheduler.running)

    # ---- the step ------------------------------------------------------------------------------------------
    def step(self) -> None:
        for seq in self.scheduler.drop_cancelled_waiting():
            self._finish(seq, "cancelled")  # type: ignore[arg-type]
            seq.sink.close("cancelled")
        running: list[ASRSequence] = self.scheduler.running  # type: ignore[assignment]
        for seq in running:
            if seq.sink.cancelled and seq.status is not Status.FINISHED:
                self._finish(seq, "cancelled")
        for seq, start, n in self.scheduler.admit():
            self._guarded(self._prefill, [seq], start, n)
        ready: list[ASRSequence] = self.scheduler.decoding()  # type: ignore[assignment]
        if ready:
            self._guarded(self._decode, ready)
        for seq in self.scheduler.remove_finished():
            if seq.finish_reason != "error":
                seq.sink.close(seq.finish_reason or "stop")
        self.steps += 1

    def _finish(self, seq: ASRSequence, reason: str) -> None:
        seq.status, seq.finish_reason = Status.FINISHED, reason
        seq.hidden = seq.prompt_embeds = None
        seq.sink.timing.finished_at = time.perf_counter()

    def _guarded(self, fn, seqs: list[ASRSequence], *args) -> None:  # type: ignore[no-untyped-def]
        """Run one stage; on failure fail exactly the sequences in it and keep serving."""
        try:
            fn(seqs, *args)
        except Exception as exc:
            log.exception("ASR engine stage %s failed for %d request(s)", fn.__name__, len(seqs))
            for seq in seqs:
                self._finish(seq, "error")
                seq.sink.fail(exc)

    def _prefill(self, seqs: list[ASRSequence], start: int, n: int) -> None:
        (seq,) = seqs
        if seq.prompt_embeds is None:
            seq.sink.timing.admitted_at = time.perf_counter()
            seq.prompt_embeds = self.pipeline.prompt_embeddings(seq.request.prompt)  # audio encoder
        hidden = self.runner.prefill(seq.slot, seq.prompt_embeds[start : start + n], start)
        seq.n_prefilled = start + n
        if seq.n_prefilled == seq.prompt_len:
            seq.hidden, seq.status, seq.prompt_embeds = hidden, Status.DECODING, None

    def _decode(self, ready: list[ASRSequence]) -> None:
        logits = self.runner.logits(torch.stack([s.hidden for s in ready]))  # type: ignore[misc]
        greedy = logits.argmax(-1).tolist()
        ids = [g if s.sampler.temperature == 0.0 else s.sampler(row) for s, g, row in zip(ready, greedy, logits, strict=True)]  # fmt: skip
        chosen = torch.tensor(ids, device=logits.device)[:, None]
        logprobs = torch.log_softmax(logits, dim=-1).gather(1, chosen)[:, 0].tolist()
        now = time.perf_counter()
        cont = []
        for seq, token, logprob in zip(ready, ids, logprobs, strict=True):
            seq.hidden = None
            seq.tokens.append(token)
            seq.sink.usage.completion_tokens += 1
            if seq.sink.timing.first_token_at is None:
                seq.sink.timing.first_token_at = now
            seq.sink.deliver(GeneratedToken(token, logprob))
            if token in self.stop_ids:
                self._finish(seq, "stop")
            elif len(seq.tokens) >= seq.max_tokens:
                self._finish(seq, "length")
            else:
                cont.append(seq)
        if cont:
            slots, positions = [s.slot for s in cont], [s.position for s in cont]
            hidden = self.runner.decode(slots, positions, [s.tokens[-1] for s in cont])
            for seq, h in zip(cont, hidden, strict=True):
                seq.hidden = h
