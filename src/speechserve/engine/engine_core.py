"""The synchronous engine loop: one ``step()`` advances every running request by one frame.

Step: drop cancelled requests → prefill admitted prompts (chunked) → flow head for every ready sequence
in one batch → decode due codec chunks for all streams in one batch and deliver them → one batched
backbone step feeding the new frames back → free finished slots. Driven by one thread (the async
``TTSEngine`` or the offline SDK); a failure inside a step fails the affected requests, never the engine.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from speechserve.checkpoints.voxtral_tts_config import END_AUDIO_CODE
from speechserve.engine.codec_stage import CodecStage
from speechserve.engine.kv_slots import SlotPool, slots_for_budget
from speechserve.engine.model_runner import TTSModelRunner
from speechserve.engine.request import SpeechRequest
from speechserve.engine.scheduler import Scheduler
from speechserve.engine.sequence import ChunkSink, Sequence, Status
from speechserve.errors import InvalidRequest
from speechserve.options import AudioChunk
from speechserve.tts.generation import request_noise
from speechserve.tts.voxtral import VoxtralTTSPipeline

log = logging.getLogger(__name__)


@dataclass
class EngineCounters:
    """Cumulative work counters (for benchmarks and /metrics): steps, frames, and where the time went."""

    steps: int = 0
    frames: int = 0
    step_seconds: float = 0.0
    model_seconds: float = 0.0  # backbone + flow head + embedding calls
    codec_seconds: float = 0.0

    @property
    def overhead_seconds(self) -> float:
        """Time in the step spent outside model and codec calls (scheduling, bookkeeping, delivery)."""
        return self.step_seconds - self.model_seconds - self.codec_seconds


@dataclass(frozen=True)
class EngineConfig:
    """Engine limits and policies. Every field has a serving-friendly default."""

    max_waiting: int = 64
    """Requests allowed to wait for a slot; one more gets ``Overloaded`` (HTTP 429)."""
    max_batch: int = 32
    """Most sequences generated together (KV slots)."""
    max_seq_len: int = 4096
    """Prompt positions + frames per sequence (vllm-omni's deploy value)."""
    kv_cache_bytes: int | None = None
    """KV-cache memory budget; None sizes the pool for ``max_batch`` sequences."""
    prefill_chunk_tokens: int = 512
    """Prompt tokens prefilled per step at most (chunked prefill)."""
    low_slack_seconds: float = 0.3
    """Below this much buffered audio a stream's pending frames are decoded immediately."""
    eager: bool = False
    """Turn off every graph/static-shape optimisation (debugging, parity checks). CUDA graphs are used
    only on CUDA devices and only when this is False."""


class EngineCore:
    """Not thread-safe: exactly one thread calls ``add``/``step``."""

    def __init__(self, pipeline: VoxtralTTSPipeline, config: EngineConfig | None = None, clock: Callable[[], float] = time.monotonic) -> None:  # fmt: skip
        self.pipeline, self.config, self.clock = pipeline, config or EngineConfig(), clock
        model = pipeline.model
        runner_dtype = model.backbone.norm.weight.dtype
        n_slots = self.config.max_batch
        if self.config.kv_cache_bytes is not None:
            n_slots = slots_for_budget(
                model.cfg.backbone,
                self.config.max_seq_len,
                runner_dtype.itemsize,
                self.config.kv_cache_bytes,
                n_slots,
            )
        self.runner = TTSModelRunner(model, n_slots, self.config.max_seq_len)
        self.hot = self.runner  # decode + flow head; bucketed CUDA graphs on GPU unless eager
        if not self.config.eager and self.runner.device.type == "cuda":
            from speechserve.engine.cuda_graphs import GraphedRunner

            self.hot = GraphedRunner(self.runner, use_graphs=True)
        self.codec = CodecStage(model.audio_tokenizer, self.runner.device)
        self.frame_seconds = pipeline.samples_per_frame / pipeline.sample_rate
        self.scheduler = Scheduler(SlotPool(n_slots), self.config.prefill_chunk_tokens, self.config.low_slack_seconds, self.frame_seconds)  # fmt: skip
        self.n_acoustic = model.cfg.codes.n_acoustic_codebook
        self.default_steps = model.cfg.flow.n_decoding_steps
        self.counters = EngineCounters()

    # ---- requests ------------------------------------------------------------------------------------------
    def make_sequence(
        self, request: SpeechRequest, sink: ChunkSink, prompt: tuple[list[int], torch.Tensor]
    ) -> Sequence:
        """Validate limits and build the sequence (call before ``add``)."""
        ids, embeds = prompt
        room = self.config.max_seq_len - len(ids)
        if room < 1:
            raise InvalidRequest(
                f"input is too long: {len(ids)} prompt tokens leave no room in the {self.config.max_seq_len}-position context",
                param="input",
            )
        sink.usage.input_tokens = len(ids)
        return Sequence(request, sink, embeds, request_noise(request.options, self.n_acoustic), self.clock())

    def add(self, seq: Sequence) -> None:
        self.scheduler.add(seq)

    @property
    def has_work(self) -> bool:
        return self.scheduler.has_work

    @property
    def n_waiting(self) -> int:
        return len(self.scheduler.waiting)

    @property
    def n_running(self) -> int:
        return len(self.scheduler.running)

    def max_frames(self, seq: Sequence) -> int:
        return min(seq.request.options.max_frames, self.config.max_seq_len - seq.prompt_len)

    # ---- the step ------------------------------------------------------------------------------------------
    def step(self) -> None:
        start = time.perf_counter()
        self._step()
        took = time.perf_counter() - start
        self.counters.steps += 1
        self.counters.step_seconds += took
        self.scheduler.observe_step(took)

    def _timed(self, kind: str, fn, *args):  # type: ignore[no-untyped-def]
        start = time.perf_counter()
        out = fn(*args)
        setattr(self.counters, kind, getattr(self.counters, kind) + time.perf_counter() - start)
        return out

    def _step(self) -> None:
        for seq in self.scheduler.drop_cancelled_waiting():
            seq.finish_reason = "cancelled"
            seq.sink.close()
        for seq in self.scheduler.running:
            if seq.sink.cancelled and seq.status is not Status.FINISHED:
                seq.status, seq.finish_reason = Status.FINISHED, "cancelled"
        self._guarded(self._prefill, self.scheduler.admit())
        ready = self.scheduler.decoding()
        codes = self._guarded(self._frame_head, ready) if ready else None
        live = [s for s in self.scheduler.running if s.finish_reason not in ("cancelled", "error")]
        self._guarded(self._emit_chunks, live)
        if codes is not None:
            cont = [(s, c) for s, c in zip(ready, codes, strict=True) if s.status is Status.DECODING]
            self._guarded(self._feed_back, cont)
        for seq in self.scheduler.remove_finished():
            if seq.finish_reason in ("end", "length") and not seq.delivered_last:
                seq.sink.deliver(empty_chunk(self.pipeline.sample_rate, seq.n_emitted))
            if seq.finish_reason != "error":
                seq.sink.close()

    def _guarded(self, fn, items):  # type: ignore[no-untyped-def]
        """Run one batched stage; on failure fail exactly the sequences in it and keep serving."""
        try:
            return fn(items)
        except Exception as exc:
            log.exception("engine stage %s failed for %d request(s)", fn.__name__, len(items))
            for item in items:
                seq = item[0] if isinstance(item, tuple) else item
                seq.status, seq.finish_reason = Status.FINISHED, "error"
                seq.sink.fail(exc)
            return None

    def _prefill(self, work: list[tuple[Sequence, int, int]]) -> None:
        for seq, start, n in work:
            hidden = self._timed(
                "model_seconds", self.runner.prefill, seq.slot, seq.prompt_embeds[start : start + n], start
            )
            seq.n_prefilled = start + n
            if seq.n_prefilled == seq.prompt_len:
                seq.hidden, seq.status = hidden, Status.DECODING  # frame 0 comes from the prefill hidden

    def _frame_head(self, ready: list[Sequence]) -> torch.Tensor:
        hidden = torch.stack([s.hidden for s in ready])  # type: ignore[misc]
        noise = torch.stack([s.noise(s.n_generated) for s in ready]).to(self.runner.device, torch.float32)
        alpha = torch.tensor([s.request.options.cfg_alpha for s in ready], device=self.runner.device)
        steps = {s.request.options.n_decoding_steps or self.default_steps for s in ready}
        if len(steps) == 1:
            codes = self._timed("model_seconds", self.hot.frame_head, hidden, noise, alpha, steps.pop())
        else:  # rare: requests asked for different step counts; one head call per group
            codes = torch.empty(len(ready), 1 + self.n_acoustic, dtype=torch.long, device=self.runner.device)
            for n in steps:
                idx = torch.tensor(
                    [
                        i
                        for i, s in enumerate(ready)
                        if (s.request.options.n_decoding_steps or self.default_steps) == n
                    ]
                )
                codes[idx] = self.hot.frame_head(hidden[idx], noise[idx], alpha[idx], n)
        host = codes.cpu()
        self.counters.frames += len(ready)
        for seq, row in zip(ready, host, strict=True):
            seq.hidden = None
            if int(row[0]) == END_AUDIO_CODE and seq.request.options.ignore_end:
                row = row.clone()
                row[0] = END_AUDIO_CODE + 1  # forced-length benchmark runs: continue with a real code
            elif int(row[0]) == END_AUDIO_CODE:
                seq.status, seq.finish_reason = Status.FINISHED, "end"
                continue
            seq.frames.append(row)
            seq.sink.usage.output_tokens += 1
            if seq.n_generated >= self.max_frames(seq):
                seq.status, seq.finish_reason = Status.FINISHED, "length"
        return codes

    def _emit_chunks(self, seqs: list[Sequence]) -> None:
        now = self.clock()
        opts = [s.request.options for s in seqs]
        due = [
            (s, self.scheduler.chunk_due(s, now, o.first_chunk_frames, o.max_chunk_frames))
            for s, o in zip(seqs, opts, strict=True)
        ]
        due = [(s, n) for s, n in due if n > 0]
        if not due:
            return
        jobs = [
            (s.codec_state or self.codec.new_state(), torch.stack(s.frames[s.n_emitted : s.n_emitted + n]))
            for s, n in due
        ]
        decoded = self._timed("codec_seconds", self.codec.decode, jobs)
        now = self.clock()
        for (seq, n), (samples, state) in zip(due, decoded, strict=True):
            seq.codec_state = state
            first = seq.n_emitted
            seq.n_emitted += n
            if seq.first_audio_at is None:
                seq.first_audio_at = now
            last = seq.status is Status.FINISHED and seq.pending == 0
            seq.delivered_last = last
            seq.sink.deliver(AudioChunk(samples.numpy(), self.pipeline.sample_rate, first, n, last))

    def _feed_back(self, cont: list[tuple[Sequence, torch.Tensor]]) -> None:
        if not cont:
            return
        seqs = [s for s, _ in cont]
        codes = torch.stack([c for _, c in cont])
        embeds = self._timed("model_seconds", self.runner.embed_frames, codes)
        slots, positions = [s.slot for s in seqs], [s.position for s in seqs]
        hidden = self._timed("model_seconds", self.hot.decode, slots, positions, embeds)
        for seq, h in zip(seqs, hidden, strict=True):
            seq.hidden = h


def empty_chunk(sample_rate: int, first_frame: int) -> AudioChunk:
    """The closing chunk of a stream that ended with nothing left to decode."""
    return AudioChunk(np.zeros(0, np.float32), sample_rate, first_frame, 0, True)
