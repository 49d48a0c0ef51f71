"""The audio-language adapter: stack 4 consecutive 20 ms encoder frames into one 80 ms audio token and
project it into the decoder's embedding space (spec §4.3). Names: `audio_language_projection.{0,2}`."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class AudioLanguageAdapter(nn.Sequential):
    """Linear(4·enc_dim → dim, no bias) → GELU → Linear(dim → dim, no bias), after frame stacking."""

    def __init__(self, encoder_dim: int, dim: int, downsample_factor: int) -> None:
        super().__init__(
            nn.Linear(encoder_dim * downsample_factor, dim, bias=False),
            nn.GELU(),
            nn.Linear(dim, dim, bias=False),
        )
        self.encoder_dim, self.downsample_factor = encoder_dim, downsample_factor

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        """frames: [T, enc_dim] → audio embeddings [ceil(T/4), dim] (row-major stacking; zero-padded tail)."""
        tail = -frames.shape[0] % self.downsample_factor
        if tail:
            frames = F.pad(frames, (0, 0, 0, tail))
        return super().forward(frames.reshape(-1, self.encoder_dim * self.downsample_factor))
