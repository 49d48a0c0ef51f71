"""One Dia request's state inside the engine, from admission to its last chunk."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from speechserve.engine.program import Sequence
from speechserve.models.dia.generation import DiaStream
from speechserve.models.dia.options import DiaOptions


@dataclass(eq=False, kw_only=True)
class DiaSequence(Sequence):
    """Mutable per-request state. Owned by the engine thread only."""

    options: DiaOptions
    text_ids: list[int]
    generator: torch.Generator
    """The request's own random generator (seeded): its audio never depends on the rest of the batch."""
    prompt: torch.Tensor | None = None
    """Audio-prompt codes [T, 9] (voice cloning), known at submission or encoded at admission."""
    stream: DiaStream | None = None
    """Generation state, built at admission."""
    n_decodable: int = 0
    """Frames whose audio no longer depends on frames still to come (set by ``emit``)."""
    n_emitted: int = 0
    first_audio_at: float | None = None
    delivered_last: bool = False

    @property
    def prompt_len(self) -> int:
        """Delayed rows to prefill: the BOS row and the audio prompt's frames."""
        return 1 + (0 if self.prompt is None else self.prompt.shape[0])

    @property
    def pending(self) -> int:
        return self.n_decodable - self.n_emitted

    def slack(self, now: float, frame_seconds: float) -> float:
        """Seconds of audio delivered but not yet played (playback started at the first chunk)."""
        if self.first_audio_at is None:
            return 0.0
        return self.n_emitted * frame_seconds - (now - self.first_audio_at)
