"""The Mistral decoder shared by every model: token embeddings, pre-norm GQA blocks with RoPE, final norm.

Voxtral TTS uses it as its backbone (no LM head in that release); Voxtral ASR adds a vocabulary projection.
Input is an embedding sequence so callers can splice audio rows over placeholder tokens first.
"""

from __future__ import annotations

import torch
from torch import nn

from speechserve.checkpoints.mistral_config import DecoderConfig
from speechserve.models.layers import CacheStep, KVCache, RMSNorm, TransformerBlock, rope_cos_sin


class MistralBackbone(nn.Module):
    """Text embedding table + decoder layers + final norm; returns normed hidden states."""

    def __init__(self, cfg: DecoderConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.tok_embeddings = nn.Embedding(cfg.vocab_size, cfg.dim)
        self.layers = nn.ModuleList(
            TransformerBlock(cfg.dim, cfg.n_heads, cfg.n_kv_heads, cfg.head_dim, cfg.hidden_dim, cfg.norm_eps)
            for _ in range(cfg.n_layers)
        )
        self.norm = RMSNorm(cfg.dim, cfg.norm_eps)

    def new_cache(self, batch: int, max_len: int) -> list[KVCache]:
        """One static KV cache per layer for ``batch`` sequences of up to ``max_len`` positions."""
        p = self.norm.weight
        return [
            KVCache(batch, self.cfg.n_kv_heads, max_len, self.cfg.head_dim, p.dtype, p.device)
            for _ in self.layers
        ]

    def forward(self, embeds: torch.Tensor, cache: list[KVCache], start: int | CacheStep) -> torch.Tensor:
        """embeds: [B, L, dim] at positions start..start+L (or per row, as ``CacheStep``) → normed hidden."""
        if isinstance(start, CacheStep):
            positions = start.positions
        else:
            positions = torch.arange(start, start + embeds.shape[1], device=embeds.device)[None]
        rope = rope_cos_sin(positions, self.cfg.head_dim, self.cfg.rope_theta, embeds.dtype)
        h = embeds
        for layer, layer_cache in zip(self.layers, cache, strict=True):
            h = layer(h, rope, layer_cache, start)
        return self.norm(h)
