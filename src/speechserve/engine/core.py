"""The one engine loop: ``EngineCore.step()`` advances every running request of any family by one output.

Step: drop cancelled requests (queued or running) → admit waiting requests into free KV slots (the family's
prompt work runs here, on the engine thread) and prefill prompts in chunks → ``sample`` for every ready
sequence in one batch → ``emit`` what is due to listeners → ``advance`` the continuing sequences in one
batched model call → free finished slots and close their sinks. A failure inside a stage fails exactly the
sequences in it; the engine keeps serving. Driven by one thread (the async :class:`~speechserve.engine.Engine`
or the offline SDK drivers); not thread-safe.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from speechserve.engine.kv_slots import SlotPool
from speechserve.engine.program import Program, Sequence, Status
from speechserve.engine.scheduler import Scheduler

log = logging.getLogger(__name__)

IDLE_WAIT_SECONDS = 0.02
"""Longest wait for client input (``Program.wait_for_input``) in a step where nothing could move."""


@dataclass(frozen=True)
class EngineConfig:
    """Engine limits and policies. Every field has a serving-friendly default."""

    max_waiting: int = 64
    """Requests allowed to wait for a slot; one more gets ``Overloaded`` (HTTP 429)."""
    max_batch: int = 32
    """Most sequences generated together (KV slots)."""
    max_seq_len: int = 4096
    """Prompt positions + outputs per sequence (vllm-omni's deploy value), capped by the model's own."""
    kv_cache_bytes: int | None = None
    """KV-cache memory budget; None sizes the pool for ``max_batch`` sequences."""
    prefill_chunk_tokens: int = 512
    """Prompt tokens prefilled per step at most (chunked prefill)."""
    low_slack_seconds: float = 0.3
    """Streaming audio: below this much buffered audio a stream's pending frames are decoded immediately."""
    eager: bool = False
    """Turn off every graph/static-shape optimisation (debugging, parity checks). CUDA graphs are used
    only on CUDA devices and only when this is False."""


@dataclass
class EngineCounters:
    """Cumulative work counters (for benchmarks and /metrics): steps, outputs, and where the time went."""

    steps: int = 0
    frames: int = 0
    """Outputs sampled (audio frames, text ids)."""
    step_seconds: float = 0.0
    model_seconds: float = 0.0
    """Prefill, sample and advance stages."""
    codec_seconds: float = 0.0
    """The emit stage (audio decoding, detokenization)."""

    @property
    def overhead_seconds(self) -> float:
        """Time in the step spent outside the family's stages (scheduling, bookkeeping)."""
        return self.step_seconds - self.model_seconds - self.codec_seconds


def program_for(pipeline: Any, config: EngineConfig) -> Program:
    """The engine program of a loaded pipeline's family (see :mod:`speechserve.registry`)."""
    from speechserve.registry import family_of

    family = family_of(pipeline)
    if family.program is None:
        raise TypeError(f"the {family.name} family has no engine program")
    return family.program(pipeline, config)


class EngineCore:
    """The loop over one family's program. ``EngineCore(pipeline, config)`` asks the registry for it."""

    def __init__(self, pipeline: Any, config: EngineConfig | None = None, clock: Callable[[], float] = time.monotonic, *, program: Program | None = None) -> None:  # fmt: skip
        self.pipeline, self.config, self.clock = pipeline, config or EngineConfig(), clock
        self.program = program or program_for(pipeline, self.config)
        self.max_seq_len = self.program.max_seq_len(self.config.max_seq_len)
        n_slots = self.config.max_batch
        if self.config.kv_cache_bytes is not None:
            per_slot = max(1, self.program.slot_bytes(self.max_seq_len))
            n_slots = max(1, min(n_slots, self.config.kv_cache_bytes // per_slot))
        self.program.allocate(n_slots, self.max_seq_len)
        frame_seconds = getattr(self.program, "frame_seconds", 1.0)
        self.scheduler = Scheduler(SlotPool(n_slots), self.config.prefill_chunk_tokens, self.config.low_slack_seconds, frame_seconds)  # fmt: skip
        self.counters = EngineCounters()

    # ---- requests ------------------------------------------------------------------------------------------
    def make_sequence(self, request: Any, sink: Any) -> Sequence:
        """Check the request (errors raise here, on the caller's thread) and build its sequence."""
        return self.program.new_sequence(request, sink)

    def add(self, seq: Sequence) -> None:
        self.scheduler.add(seq)

    @property
    def has_work(self) -> bool:
        return self.scheduler.has_work

    @property
    def n_waiting(self) -> int:
        return len(self.scheduler.waiting)

    @property
    def n_waiting_places(self) -> int:
        """Queue places taken: waiting sequences that stand for a client request (segments after the first
        of one request share its place)."""
        return sum(1 for s in self.scheduler.waiting if s.holds_place)

    @property
    def n_running(self) -> int:
        return len(self.scheduler.running)

    # ---- the step ------------------------------------------------------------------------------------------
    def step(self) -> None:
        start = time.perf_counter()
        for seq in self.scheduler.drop_cancelled_waiting():
            seq.finish("cancelled")
            seq.sink.close("cancelled")
        for seq in self.scheduler.running:
            if seq.sink.cancelled and not seq.finished:
                seq.finish("cancelled")
        program = self.program
        admitted = self.scheduler.admit(self._begin)
        for seq, first, n in admitted:
            self._stage("model_seconds", [seq], lambda s=seq, f=first, n=n: program.prefill(s, f, n))
        ready = [s for s in self.scheduler.running if s.status is Status.DECODING and program.is_ready(s)]
        if ready:
            self._stage("model_seconds", ready, lambda: program.sample(ready))
            self.counters.frames += sum(1 for s in ready if s.finish_reason != "error")
        live = [s for s in self.scheduler.running if s.finish_reason not in ("cancelled", "error")]
        if live:
            self._stage("codec_seconds", live, lambda: program.emit(live, self.scheduler, self.clock))
        cont = [s for s in ready if s.status is Status.DECODING]
        if cont:
            self._stage("model_seconds", cont, lambda: program.advance(cont))
        if not ready and not any(n for _, _, n in admitted) and hasattr(program, "wait_for_input"):
            program.wait_for_input(IDLE_WAIT_SECONDS)  # streams waiting for client input: sleep, not spin
        for seq in self.scheduler.remove_finished():
            if seq.finish_reason not in ("cancelled", "error"):
                self._stage("codec_seconds", [seq], lambda s=seq: program.finish(s))
            if seq.finish_reason != "error":
                seq.sink.close(seq.finish_reason)
        took = time.perf_counter() - start
        self.counters.steps += 1
        self.counters.step_seconds += took
        self.scheduler.observe_step(took)

    def _begin(self, seq: Sequence) -> bool:
        """Admission work of one sequence; False (and the request failed) when it cannot run."""
        self._stage("model_seconds", [seq], lambda: self.program.begin(seq))
        return seq.finish_reason != "error"

    def _stage(self, counter: str, seqs: list[Any], call: Callable[[], None]) -> None:
        """Run one stage over ``seqs``; on failure fail exactly those sequences and keep serving."""
        start = time.perf_counter()
        try:
            call()
        except Exception as exc:
            log.exception("engine stage failed for %d request(s)", len(seqs))
            for seq in seqs:
                if seq.finish_reason != "error":
                    seq.finish("error")
                    seq.sink.fail(exc)
        finally:
            setattr(self.counters, counter, getattr(self.counters, counter) + time.perf_counter() - start)
