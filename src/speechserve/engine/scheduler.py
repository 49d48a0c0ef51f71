"""Who runs this step, and when each stream's next chunk is decoded.

Policy (streaming-aware, after VoxServe's lessons):
- Admission: waiting requests take free KV slots in arrival order; prompts are prefilled in chunks of at
  most ``prefill_chunk_tokens`` per step, so a long prompt never stalls running streams for long. A new
  request's frame 0 comes straight from its prefill, and its first chunk is decoded in that same step.
- Decode: every running sequence advances one frame per step (one batched backbone call).
- Chunking (deadline-aware): a stream's first chunk is decoded after ``first_chunk_frames`` frames
  (default 1 = 80 ms). Afterwards a chunk may grow toward as many frames as have already been sent (capped at
  ``max_chunk_frames``), which amortises codec work once the listener is ahead — but only while waiting for
  the missing frames keeps the listener fed: with slack = audio delivered − audio played since the first
  chunk, and the measured seconds per engine step, pending frames are decoded now as soon as
  ``slack − missing_frames × step_seconds < low_slack_seconds``. Finished streams flush.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from typing import Any

from speechserve.engine.kv_slots import SlotPool
from speechserve.engine.program import Status

Sequence = Any  # engine.program.Sequence; streaming policies read n_emitted, pending, slack() of audio ones


class Scheduler:
    def __init__(
        self, slots: SlotPool, prefill_chunk_tokens: int, low_slack_seconds: float, frame_seconds: float
    ) -> None:
        self.slots = slots
        self.prefill_chunk_tokens = prefill_chunk_tokens
        self.low_slack_seconds = low_slack_seconds
        self.frame_seconds = frame_seconds
        self.waiting: deque[Sequence] = deque()
        self.running: list[Sequence] = []
        self.step_seconds = 0.0  # moving average of one engine step's duration

    def observe_step(self, seconds: float) -> None:
        """Feed the duration of the last step (the deadline policy's estimate of time per frame)."""
        self.step_seconds = seconds if self.step_seconds == 0.0 else 0.8 * self.step_seconds + 0.2 * seconds

    def add(self, seq: Sequence) -> None:
        self.waiting.append(seq)

    @property
    def has_work(self) -> bool:
        return bool(self.waiting or self.running)

    def admit(self, begin: Callable[[Sequence], bool] = lambda seq: True) -> list[tuple[Sequence, int, int]]:
        """Prefill work for this step: (sequence, start, n_tokens) within the token budget.

        ``begin(seq)`` runs on each newly admitted sequence once it holds a slot (its prompt work); when it
        returns False the sequence has failed, keeps its slot until ``remove_finished`` and is not prefilled.
        """
        budget = self.prefill_chunk_tokens
        work = []
        for seq in self.running:  # continue partly prefilled prompts first
            if seq.status is Status.PREFILLING and budget > 0:
                n = min(budget, seq.prompt_len - seq.n_prefilled)
                work.append((seq, seq.n_prefilled, n))
                budget -= n
        while self.waiting and budget > 0 and self.slots.n_free:
            seq = self.waiting.popleft()
            seq.slot = self.slots.allocate()  # type: ignore[assignment]
            seq.status = Status.PREFILLING
            self.running.append(seq)
            if not begin(seq):
                continue
            n = min(budget, seq.prompt_len)
            work.append((seq, 0, n))
            budget -= n
        return work

    def chunk_due(self, seq: Sequence, now: float, first_chunk_frames: int, max_chunk_frames: int) -> int:
        """How many pending frames of ``seq`` to decode now (0 = not yet)."""
        pending = seq.pending
        if pending == 0:
            return 0
        if seq.status is Status.FINISHED:
            return pending
        if seq.n_emitted == 0:
            return pending if pending >= first_chunk_frames else 0
        target = min(max_chunk_frames, max(first_chunk_frames, seq.n_emitted))
        if pending >= target:
            return pending
        wait = (target - pending) * self.step_seconds
        return pending if seq.slack(now, self.frame_seconds) - wait < self.low_slack_seconds else 0

    def remove_finished(self) -> list[Sequence]:
        done = [s for s in self.running if s.status is Status.FINISHED]
        if done:
            self.running = [s for s in self.running if s.status is not Status.FINISHED]
            for s in done:
                self.slots.release(s.slot)
                s.slot = -1
        return done

    def drop_cancelled_waiting(self) -> list[Sequence]:
        gone = [s for s in self.waiting if s.sink.cancelled]
        if gone:
            self.waiting = deque(s for s in self.waiting if not s.sink.cancelled)
        return gone
