"""The causal audio encoder of Voxtral Realtime (spec §4.2): a causal conv stem that carries its left context
across calls, then pre-RMSNorm blocks with RoPE and sliding-window attention (biased q/v/o, unbiased k) and a
SwiGLU with a biased down projection, then a final RMSNorm. Names follow the native checkpoint
(`conv_layers.{0,1}.conv`, `transformer.layers.{i}.attention.w{q,k,v,o}`, `feed_forward.w{1,2,3}`, …).

Tensor in, tensor out: the streaming state (conv tails, ring KV caches) is passed in and updated.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from speechserve.models.layers import Attention, FeedForward, RMSNorm, rope_cos_sin
from speechserve.models.voxtral_realtime.config import EncoderConfig
from speechserve.models.voxtral_realtime.window import RingKV, WindowStep

KERNEL = 3  # both stem convolutions


class CausalConv(nn.Module):
    """Conv1d (kernel 3) that sees only the past: ``kernel − stride`` frames of left context, carried in a tail."""

    def __init__(self, in_channels: int, out_channels: int, stride: int) -> None:
        super().__init__()
        self.conv = nn.Conv1d(in_channels, out_channels, KERNEL, stride=stride)
        self.left = KERNEL - stride

    def forward(self, x: torch.Tensor, tail: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """x [B, C, T], tail [B, C, left] (zeros at the start of a stream) → (out [B, C', T/stride], new tail)."""
        x = torch.cat([tail.to(x.dtype), x], dim=-1)
        return self.conv(x), x[..., -self.left :]


class EncoderAttention(Attention):
    """Multi-head attention with biases on q, v and the output, none on k (Whisper's convention)."""

    def __init__(self, dim: int, n_heads: int, head_dim: int) -> None:
        super().__init__(dim, n_heads, n_heads, head_dim)
        self.wq = nn.Linear(dim, n_heads * head_dim, bias=True)
        self.wv = nn.Linear(dim, n_heads * head_dim, bias=True)
        self.wo = nn.Linear(n_heads * head_dim, dim, bias=True)


class EncoderFeedForward(FeedForward):
    """SwiGLU w2(silu(w1 x) · w3 x) with a bias on w2 only."""

    def __init__(self, dim: int, hidden_dim: int) -> None:
        super().__init__(dim, hidden_dim)
        self.w2 = nn.Linear(hidden_dim, dim, bias=True)


class EncoderBlock(nn.Module):
    """x + attn(RMSNorm(x)), then x + SwiGLU(RMSNorm(x))."""

    def __init__(self, cfg: EncoderConfig) -> None:
        super().__init__()
        self.attention = EncoderAttention(cfg.dim, cfg.n_heads, cfg.head_dim)
        self.attention_norm = RMSNorm(cfg.dim, cfg.norm_eps)
        self.feed_forward = EncoderFeedForward(cfg.dim, cfg.hidden_dim)
        self.ffn_norm = RMSNorm(cfg.dim, cfg.norm_eps)

    def forward(self, x: torch.Tensor, rope: tuple[torch.Tensor, torch.Tensor], cache: RingKV, step: WindowStep) -> torch.Tensor:  # fmt: skip
        x = x + self.attention(self.attention_norm(x), rope, cache, step)  # type: ignore[arg-type]
        return x + self.feed_forward(self.ffn_norm(x))


class EncoderTransformer(nn.Module):
    """The block stack and its final RMSNorm (`transformer.layers`, `transformer.norm`)."""

    def __init__(self, cfg: EncoderConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.layers = nn.ModuleList(EncoderBlock(cfg) for _ in range(cfg.n_layers))
        self.norm = RMSNorm(cfg.dim, cfg.norm_eps)

    def forward(self, x: torch.Tensor, caches: list[RingKV], step: WindowStep) -> torch.Tensor:
        """x [B, L, dim] at encoder positions ``step.positions`` → normed frames [B, L, dim]."""
        rope = rope_cos_sin(step.positions, self.cfg.head_dim, self.cfg.rope_theta, x.dtype)
        for layer, cache in zip(self.layers, caches, strict=True):
            x = layer(x, rope, cache, step)
        return self.norm(x)


class CausalAudioEncoder(nn.Module):
    """Log-mel frames → 20 ms encoder frames, causally (`whisper_encoder.*`): GELU(conv1) → GELU(conv2, stride
    2) → blocks → RMSNorm. Stateless: a stream's conv tails and KV rings are arguments."""

    def __init__(self, cfg: EncoderConfig) -> None:
        super().__init__()
        self.cfg = cfg
        n_mels = cfg.audio.num_mel_bins
        self.conv_layers = nn.ModuleList([CausalConv(n_mels, cfg.dim, 1), CausalConv(cfg.dim, cfg.dim, 2)])
        self.transformer = EncoderTransformer(cfg)

    def tail_shapes(self) -> list[tuple[int, int]]:
        """(channels, frames) of each conv's carried left context."""
        return [(c.conv.in_channels, c.left) for c in self.conv_layers]

    def stem(self, mel: torch.Tensor, tails: list[torch.Tensor]) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """mel [B, n_mels, T] (T even) → conv frames [B, T/2, dim] and the new tails."""
        if mel.shape[-1] % 2:
            raise ValueError(f"the conv stem takes an even number of mel frames, got {mel.shape[-1]}")
        x, new_tails = mel, []
        for conv, tail in zip(self.conv_layers, tails, strict=True):
            x, t = conv(x, tail)
            x = F.gelu(x)
            new_tails.append(t)
        return x.transpose(1, 2), new_tails
