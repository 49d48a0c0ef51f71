"""The Voxtral (Whisper-large-v3-style) audio encoder: conv stem, sinusoidal positions, pre-LN blocks.

One chunk is 30 s = 3000 mel frames; the stride-2 conv halves it to 1500 frames of 20 ms, and every chunk is
encoded independently with bidirectional attention over its own frames (spec §4.1). Names follow the
native checkpoint under `mm_whisper_embeddings.whisper_encoder.` (`conv_layers.{0,1}`, `transformer.layers.{i}`
with `attention.w{q,k,v,o}`, `attention_norm`, `feed_forward.w{1,2}`, `ffn_norm`, and `transformer.norm`).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from speechserve.models.voxtral_asr.config import EncoderConfig

MAX_TIMESCALE = 10_000


def sinusoids(length: int, channels: int, max_timescale: float = MAX_TIMESCALE) -> torch.Tensor:
    """Whisper's position table [length, channels]: all sines first, then all cosines (float32)."""
    half = channels // 2
    inv_timescales = torch.exp(
        -math.log(max_timescale) / (half - 1) * torch.arange(half, dtype=torch.float32)
    )
    scaled = torch.arange(length, dtype=torch.float32)[:, None] * inv_timescales[None, :]
    return torch.cat([scaled.sin(), scaled.cos()], dim=1)


class EncoderAttention(nn.Module):
    """Bidirectional multi-head self-attention; q, v and o have biases, k has none (Whisper)."""

    def __init__(self, dim: int, n_heads: int, head_dim: int) -> None:
        super().__init__()
        self.n_heads, self.head_dim = n_heads, head_dim
        self.wq = nn.Linear(dim, n_heads * head_dim, bias=True)
        self.wk = nn.Linear(dim, n_heads * head_dim, bias=False)
        self.wv = nn.Linear(dim, n_heads * head_dim, bias=True)
        self.wo = nn.Linear(n_heads * head_dim, dim, bias=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: [B, T, dim] → [B, T, dim]."""
        b, t, _ = x.shape
        q, k, v = (
            w(x).view(b, t, self.n_heads, self.head_dim).transpose(1, 2) for w in (self.wq, self.wk, self.wv)
        )
        out = F.scaled_dot_product_attention(q, k, v, scale=1.0 / math.sqrt(self.head_dim))
        return self.wo(out.transpose(1, 2).reshape(b, t, self.n_heads * self.head_dim))


class EncoderFeedForward(nn.Module):
    """w2(GELU(w1 x)), both with biases (exact erf GELU)."""

    def __init__(self, dim: int, hidden_dim: int) -> None:
        super().__init__()
        self.w1 = nn.Linear(dim, hidden_dim, bias=True)
        self.w2 = nn.Linear(hidden_dim, dim, bias=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.w2(F.gelu(self.w1(x)))


class EncoderBlock(nn.Module):
    """Pre-LayerNorm residual block: x + attn(LN(x)), then x + ffn(LN(x))."""

    def __init__(self, cfg: EncoderConfig) -> None:
        super().__init__()
        self.attention = EncoderAttention(cfg.dim, cfg.n_heads, cfg.head_dim)
        self.attention_norm = nn.LayerNorm(cfg.dim, eps=cfg.norm_eps)
        self.feed_forward = EncoderFeedForward(cfg.dim, cfg.hidden_dim)
        self.ffn_norm = nn.LayerNorm(cfg.dim, eps=cfg.norm_eps)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: [B, T, dim] → [B, T, dim]."""
        x = x + self.attention(self.attention_norm(x))
        return x + self.feed_forward(self.ffn_norm(x))


class EncoderTransformer(nn.Module):
    """The block stack and its final LayerNorm (`transformer.layers`, `transformer.norm`)."""

    def __init__(self, cfg: EncoderConfig) -> None:
        super().__init__()
        self.layers = nn.ModuleList(EncoderBlock(cfg) for _ in range(cfg.n_layers))
        self.norm = nn.LayerNorm(cfg.dim, eps=cfg.norm_eps)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for layer in self.layers:
            x = layer(x)
        return self.norm(x)


class AudioEncoder(nn.Module):
    """Log-mel chunks → encoder frames (20 ms each). Stateless; chunks are batched along dim 0."""

    def __init__(self, cfg: EncoderConfig) -> None:
        super().__init__()
        self.cfg = cfg
        n_mels = cfg.audio.num_mel_bins
        self.conv_layers = nn.ModuleList(
            [
                nn.Conv1d(n_mels, cfg.dim, kernel_size=3, padding=1),
                nn.Conv1d(cfg.dim, cfg.dim, kernel_size=3, stride=2, padding=1),
            ]
        )
        self.transformer = EncoderTransformer(cfg)
        self.register_buffer("positions", torch.empty(cfg.max_source_positions, cfg.dim), persistent=False)
        self.reset_derived_buffers()

    def reset_derived_buffers(self, device: torch.device | None = None) -> None:
        """Recompute the (non-checkpoint) sinusoid table, e.g. after building on the meta device."""
        table = sinusoids(self.cfg.max_source_positions, self.cfg.dim)
        self.positions = table.to(device or self.positions.device)

    def forward(self, mel: torch.Tensor) -> torch.Tensor:
        """mel: [C, n_mels, 2·P] → encoder frames [C, P, dim] (P = max_source_positions)."""
        x = F.gelu(self.conv_layers[0](mel))
        x = F.gelu(self.conv_layers[1](x)).transpose(1, 2)  # [C, P, dim]
        if x.shape[1] != self.positions.shape[0]:
            raise ValueError(
                f"encoder chunks must have {self.cfg.chunk_frames} mel frames, got {mel.shape[-1]}"
            )
        x = x + self.positions.to(x.dtype)
        return self.transformer(x)
