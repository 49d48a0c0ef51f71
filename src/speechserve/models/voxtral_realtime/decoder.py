"""The Voxtral Realtime text decoder (spec §5.1, §5.3): Mistral blocks with sliding-window attention whose FFN
input is scaled by a delay-conditioned factor, ``RMSNorm(h) · (1 + W2·GELU(W1·t_cond))`` (ada-RMSNorm), and
logits through the tied token embedding. ``t_cond`` is a fixed sinusoid of the number of delay tokens.

Names follow the native checkpoint: `layers.{j}.attention.w{q,k,v,o}`, `attention_norm`, `ffn_norm`,
`feed_forward.w{1,2,3}`, `ada_rms_norm_t_cond.{0,2}`, `norm`; the token table is `tok_embeddings`.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from speechserve.checkpoints.mistral_config import DecoderConfig
from speechserve.models.layers import RMSNorm, TransformerBlock, rope_cos_sin
from speechserve.models.voxtral_realtime.window import RingKV, WindowStep

TIME_THETA = 10_000.0  # base of the delay sinusoid


def time_embedding(
    n_delay: int, dim: int, dtype: torch.dtype, device: torch.device | None = None
) -> torch.Tensor:
    """t_cond [dim] = [cos(n·ω_i), sin(n·ω_i)], ω_i = θ^(−i/(dim/2)), i < dim/2 (cosines first).

    Evaluated in ``dtype`` (the model's), as the references do.
    """
    half = dim // 2
    omega = torch.exp(-math.log(TIME_THETA) * torch.arange(half, device=device).float() / half).to(dtype)
    angle = torch.full((1,), float(n_delay), dtype=dtype, device=device) * omega
    return torch.cat([angle.cos(), angle.sin()])


class DecoderBlock(TransformerBlock):
    """Pre-norm Mistral block; the FFN input is multiplied by the stream's ``ada_scale`` = 1 + ada(t_cond)."""

    def __init__(self, cfg: DecoderConfig, t_cond_dim: int) -> None:
        super().__init__(cfg.dim, cfg.n_heads, cfg.n_kv_heads, cfg.head_dim, cfg.hidden_dim, cfg.norm_eps)
        self.ada_rms_norm_t_cond = nn.Sequential(
            nn.Linear(cfg.dim, t_cond_dim, bias=False), nn.GELU(), nn.Linear(t_cond_dim, cfg.dim, bias=False)
        )

    def ada_scale(self, t_cond: torch.Tensor) -> torch.Tensor:
        """t_cond [dim] → the FFN-input factor 1 + W2·GELU(W1·t_cond) [dim]."""
        return 1 + self.ada_rms_norm_t_cond(t_cond)

    def forward(  # type: ignore[override]
        self,
        x: torch.Tensor,
        rope: tuple[torch.Tensor, torch.Tensor],
        cache: RingKV,
        step: WindowStep,
        ada_scale: torch.Tensor,
    ) -> torch.Tensor:
        """x [B, L, dim]; ada_scale [B, 1, dim] (one delay per row)."""
        h = x + self.attention(self.attention_norm(x), rope, cache, step)  # type: ignore[arg-type]
        return h + self.feed_forward(self.ffn_norm(h) * ada_scale)


class RealtimeDecoder(nn.Module):
    """Token table + blocks + final norm; input is an embedding sequence (audio + text, summed by the caller)."""

    def __init__(self, cfg: DecoderConfig, t_cond_dim: int) -> None:
        super().__init__()
        self.cfg = cfg
        self.tok_embeddings = nn.Embedding(cfg.vocab_size, cfg.dim)
        self.layers = nn.ModuleList(DecoderBlock(cfg, t_cond_dim) for _ in range(cfg.n_layers))
        self.norm = RMSNorm(cfg.dim, cfg.norm_eps)

    def ada_scales(self, n_delay: int) -> torch.Tensor:
        """Every layer's FFN-input factor for a delay of ``n_delay`` tokens: [n_layers, dim]."""
        w = self.norm.weight
        t_cond = time_embedding(n_delay, self.cfg.dim, w.dtype, w.device)
        return torch.stack([layer.ada_scale(t_cond) for layer in self.layers])  # type: ignore[operator]

    def forward(self, embeds: torch.Tensor, caches: list[RingKV], step: WindowStep, ada: torch.Tensor) -> torch.Tensor:  # fmt: skip
        """embeds [B, L, dim] at ``step.positions``; ada [B, n_layers, dim] → normed hidden [B, L, dim]."""
        rope = rope_cos_sin(step.positions, self.cfg.head_dim, self.cfg.rope_theta, embeds.dtype)
        h = embeds
        for i, (layer, cache) in enumerate(zip(self.layers, caches, strict=True)):
            h = layer(h, rope, cache, step, ada[:, i, None])
        return self.norm(h)

    def logits(self, hidden: torch.Tensor) -> torch.Tensor:
        """Normed hidden [..., dim] → logits [..., vocab] through the tied token table."""
        return hidden @ self.tok_embeddings.weight.T
