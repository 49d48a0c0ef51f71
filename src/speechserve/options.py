"""Typed options and results of the SDK: frozen, documented, replaced with `dataclasses.replace`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

DEFAULT_CFG_ALPHA = 1.2
"""Classifier-free guidance weight of Voxtral-style flow heads (the reference's value)."""

RefAudio = bytes | tuple[np.ndarray, int] | Any
"""A reference recording for voice cloning: an encoded file, (mono samples, sample rate), or a voice the
model already prepared from one (``pipeline.clone_voice``), which is reused across segments."""


@dataclass(frozen=True)
class SynthesisOptions:
    """How to generate one utterance. Defaults reproduce the reference (vllm-omni) behaviour."""

    seed: int | None = None
    """Seed of the per-request noise generator; same seed + same device → identical audio. None: random."""
    max_frames: int = 2048
    """Upper bound on generated 80 ms frames (2048 ≈ 164 s), as vllm-omni's deploy default."""
    cfg_alpha: float = DEFAULT_CFG_ALPHA
    """Classifier-free guidance weight α in v = α·v(h) + (1−α)·v(0)."""
    n_decoding_steps: int | None = None
    """Euler steps of the flow head; None uses the checkpoint's value (7)."""
    noise_scale: float = 1.0
    """Scale of the initial flow noise (1.0 in the reference; lower is more conservative)."""
    noise: torch.Tensor | None = None
    """Explicit initial noise [frames, 36] for reproducibility tests; overrides ``seed`` while it lasts."""
    first_chunk_frames: int = 1
    """Frames generated before the first audio chunk is decoded and yielded (latency)."""
    ignore_end: bool = False
    """Benchmarks only: never stop on `[END_AUDIO]`, always generate ``max_frames`` frames."""
    max_chunk_frames: int = 25
    """Later chunks grow (up to this many frames) while the listener is ahead, to save codec work."""

    def __post_init__(self) -> None:
        from speechserve.errors import InvalidRequest

        if self.max_frames < 1:
            raise InvalidRequest("max_frames must be at least 1", param="max_frames")
        if self.n_decoding_steps is not None and not 1 <= self.n_decoding_steps <= 64:
            raise InvalidRequest("n_decoding_steps must be between 1 and 64", param="n_decoding_steps")
        if not 0.0 <= self.cfg_alpha <= 10.0:
            raise InvalidRequest("cfg_alpha must be between 0 and 10", param="cfg_alpha")
        if not 0.0 <= self.noise_scale <= 2.0:
            raise InvalidRequest("noise_scale must be between 0 and 2", param="noise_scale")
        if self.first_chunk_frames < 1 or self.max_chunk_frames < self.first_chunk_frames:
            raise InvalidRequest("need 1 ≤ first_chunk_frames ≤ max_chunk_frames", param="first_chunk_frames")


@dataclass(frozen=True)
class AudioChunk:
    """A piece of generated audio: mono float32 samples in [-1, 1] (not clipped) at ``sample_rate``."""

    samples: np.ndarray
    sample_rate: int
    first_frame: int = 0
    """Index of the first 80 ms frame this chunk covers."""
    n_frames: int = 0
    """Number of frames it covers."""
    is_last: bool = False

    @property
    def duration(self) -> float:
        """Length in seconds."""
        return len(self.samples) / self.sample_rate
