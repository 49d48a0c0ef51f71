"""One request's state inside the engine, from admission to its last chunk."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Protocol

import torch

from speechserve.engine.request import SpeechRequest, Usage
from speechserve.options import AudioChunk
from speechserve.tts.generation import NoiseSource


class ChunkSink(Protocol):
    """Where a sequence's audio goes: an async :class:`AudioStream`, or a list for offline use."""

    usage: Usage

    @property
    def cancelled(self) -> bool: ...

    def deliver(self, chunk: AudioChunk) -> None: ...

    def fail(self, exc: BaseException) -> None: ...

    def close(self) -> None: ...


class Status(enum.Enum):
    WAITING = "waiting"  # queued, no slot
    PREFILLING = "prefilling"  # has a slot, prompt partly in the KV cache
    DECODING = "decoding"  # one frame per engine step
    FINISHED = "finished"


@dataclass(eq=False)
class Sequence:
    """Mutable per-request state. Owned by the engine thread only."""

    request: SpeechRequest
    sink: ChunkSink
    prompt_embeds: torch.Tensor  # [L, dim]
    noise: NoiseSource
    arrival: float
    status: Status = Status.WAITING
    slot: int = -1
    n_prefilled: int = 0
    hidden: torch.Tensor | None = None  # normed hidden that produces the next frame [dim]
    frames: list[torch.Tensor] = field(default_factory=list)  # non-END frames, [37] int64 on CPU
    n_emitted: int = 0  # frames already decoded to audio and delivered
    codec_state: object = None  # the stream's incremental codec decoder state
    first_audio_at: float | None = None
    finish_reason: str | None = None  # "end", "length", "cancelled", "error"
    delivered_last: bool = False

    @property
    def prompt_len(self) -> int:
        return self.prompt_embeds.shape[0]

    @property
    def n_generated(self) -> int:
        """Frames generated so far (END excluded); the next frame's index."""
        return len(self.frames)

    @property
    def position(self) -> int:
        """Backbone position of the next fed frame: prompt + frames fed back so far."""
        return self.prompt_len + len(self.frames) - 1

    @property
    def pending(self) -> int:
        return len(self.frames) - self.n_emitted

    def slack(self, now: float, frame_seconds: float) -> float:
        """Seconds of audio delivered but not yet played (playback started at the first chunk)."""
        if self.first_audio_at is None:
            return 0.0
        return self.n_emitted * frame_seconds - (now - self.first_audio_at)
