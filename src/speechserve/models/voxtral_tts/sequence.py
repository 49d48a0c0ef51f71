"""One Voxtral TTS request's state inside the engine, from admission to its last chunk."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from speechserve.engine.program import Sequence
from speechserve.models.voxtral_tts.generation import NoiseSource


@dataclass(eq=False, kw_only=True)
class TTSSequence(Sequence):
    """Mutable per-request state. Owned by the engine thread only."""

    prompt_embeds: torch.Tensor | None = None  # [L, dim], built at admission
    prompt_ids: list[int] | None = None  # known at submission unless a raw reference clip must be encoded
    noise: NoiseSource | None = None
    arrival: float = 0.0
    hidden: torch.Tensor | None = None  # normed hidden that produces the next frame [dim]
    frames: list[torch.Tensor] = field(default_factory=list)  # non-END frames, [37] int64 on CPU
    fed_codes: torch.Tensor | None = None  # the last frame's codes on the model's device (next input)
    n_emitted: int = 0  # frames already decoded to audio and delivered
    codec_state: object = None  # the stream's incremental codec decoder state
    first_audio_at: float | None = None
    delivered_last: bool = False

    @property
    def prompt_len(self) -> int:
        if self.prompt_embeds is not None:
            return self.prompt_embeds.shape[0]
        return len(self.prompt_ids or ())

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
