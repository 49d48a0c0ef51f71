"""The deadline-aware chunk policy: grow chunks only while the listener's buffer covers the wait."""

from __future__ import annotations

import torch

from speechserve.engine.kv_slots import SlotPool
from speechserve.engine.program import Status
from speechserve.engine.scheduler import Scheduler
from speechserve.models.voxtral_tts.sequence import TTSSequence as Sequence

FRAME = 0.08


def _seq(emitted: int, pending: int, first_audio_at: float | None) -> Sequence:
    seq = Sequence(request=None, sink=None, prompt_embeds=torch.zeros(3, 4), noise=None, arrival=0.0)  # type: ignore[arg-type]
    seq.frames = [torch.zeros(37, dtype=torch.long)] * (emitted + pending)
    seq.n_emitted, seq.first_audio_at, seq.status = emitted, first_audio_at, Status.DECODING
    return seq


def _scheduler(step_seconds: float) -> Scheduler:
    s = Scheduler(SlotPool(4), 512, low_slack_seconds=0.3, frame_seconds=FRAME)
    s.observe_step(step_seconds)
    return s


def test_first_chunk_after_first_frames() -> None:
    s = _scheduler(0.01)
    assert s.chunk_due(_seq(0, 1, None), now=1.0, first_chunk_frames=1, max_chunk_frames=25) == 1
    assert s.chunk_due(_seq(0, 1, None), now=1.0, first_chunk_frames=2, max_chunk_frames=25) == 0


def test_chunk_grows_while_listener_is_ahead() -> None:
    # 16 frames sent (1.28 s) 0.6 s ago → slack 0.68 s; 4 pending, target 16: 12 more steps of 10 ms = 0.12 s
    seq = _seq(16, 4, first_audio_at=0.4)
    assert _scheduler(0.01).chunk_due(seq, now=1.0, first_chunk_frames=1, max_chunk_frames=25) == 0


def test_slow_steps_force_an_early_chunk() -> None:
    # same buffer, but 40 ms per step: waiting 12 steps (0.48 s) would leave 0.2 s < 0.3 s → decode now
    seq = _seq(16, 4, first_audio_at=0.4)
    assert _scheduler(0.04).chunk_due(seq, now=1.0, first_chunk_frames=1, max_chunk_frames=25) == 4


def test_full_target_and_finished_streams_flush() -> None:
    s = _scheduler(0.01)
    assert (
        s.chunk_due(_seq(4, 4, first_audio_at=0.0), now=0.1, first_chunk_frames=1, max_chunk_frames=25) == 4
    )
    done = _seq(30, 3, first_audio_at=0.0)
    done.status = Status.FINISHED
    assert s.chunk_due(done, now=0.1, first_chunk_frames=1, max_chunk_frames=25) == 3


def test_step_time_is_a_moving_average() -> None:
    s = _scheduler(0.1)
    s.observe_step(0.2)
    assert abs(s.step_seconds - 0.12) < 1e-12
