"""Dia's encoder–decoder transformer (spec §2–3), parameter names = the transformers checkpoint's.

Text bytes → :class:`DiaEncoder` (bidirectional, RoPE) → per request, the cross-attention keys/values of
every decoder layer. Delayed code rows [N, L, 9] → :class:`DiaDecoder` (causal GQA self-attention with RoPE
and a slotted KV cache, cross-attention without RoPE, SwiGLU) → ``logits_dense`` → logits [N, L, 9, 1028].
Pre-norm RMSNorm everywhere, no biases, attention scale 1 (the scale is folded into the trained weights).

Architecture only: who runs which rows (CFG pairs, slots, batching) lives in ``runner.py``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from speechserve.models.dia.config import DiaConfig, DiaDecoderConfig, DiaEncoderConfig
from speechserve.models.layers import CacheStep, KVCache, RMSNorm


def rope_cos_sin(positions: torch.Tensor, head_dim: int, theta: float) -> tuple[torch.Tensor, torch.Tensor]:
    """cos/sin [..., head_dim] for split-halves ("rotate_half") RoPE at integer ``positions`` (fp32)."""
    freqs = 1.0 / theta ** (
        torch.arange(0, head_dim, 2, device=positions.device, dtype=torch.float64) / head_dim
    )
    angles = positions.to(torch.float64)[..., None] * freqs
    angles = torch.cat((angles, angles), dim=-1)
    return angles.cos().float(), angles.sin().float()


def apply_rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """x [N, H, L, D]; cos/sin [N or 1, L, D]: rotate (first half, second half) pairs."""
    half = x.shape[-1] // 2
    rotated = torch.cat((-x[..., half:], x[..., :half]), dim=-1)
    cos, sin = cos[:, None].to(x.dtype), sin[:, None].to(x.dtype)
    return x * cos + rotated * sin


def attend(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    """Scaled-dot-product attention with Dia's scale 1; q [N, H, L, D], k/v [N, Hkv, S, D] → [N, L, H·D]."""
    out = F.scaled_dot_product_attention(
        q, k, v, attn_mask=mask, scale=1.0, enable_gqa=q.shape[1] != k.shape[1]
    )
    return out.transpose(1, 2).flatten(2)


class DiaMLP(nn.Module):
    """SwiGLU with the gate and up projections fused (rows: gate first, then up)."""

    def __init__(self, hidden: int, intermediate: int) -> None:
        super().__init__()
        self.gate_up_proj = nn.Linear(hidden, 2 * intermediate, bias=False)
        self.down_proj = nn.Linear(intermediate, hidden, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        gate, up = self.gate_up_proj(x).chunk(2, dim=-1)
        return self.down_proj(F.silu(gate) * up)


class DiaSelfAttention(nn.Module):
    """RoPE attention; bidirectional in the encoder, causal over a KV cache in the decoder."""

    def __init__(self, hidden: int, n_heads: int, n_kv_heads: int, head_dim: int) -> None:
        super().__init__()
        self.n_heads, self.n_kv_heads, self.head_dim = n_heads, n_kv_heads, head_dim
        self.q_proj = nn.Linear(hidden, n_heads * head_dim, bias=False)
        self.k_proj = nn.Linear(hidden, n_kv_heads * head_dim, bias=False)
        self.v_proj = nn.Linear(hidden, n_kv_heads * head_dim, bias=False)
        self.o_proj = nn.Linear(n_heads * head_dim, hidden, bias=False)

    def forward(
        self,
        x: torch.Tensor,
        rope: tuple[torch.Tensor, torch.Tensor],
        cache: KVCache | None = None,
        step: CacheStep | None = None,
    ) -> torch.Tensor:
        """x [N, L, hidden] → [N, L, hidden]; with ``cache``/``step`` the rows' keys are written and read."""
        n, length, _ = x.shape
        q = self.q_proj(x).view(n, length, self.n_heads, self.head_dim).transpose(1, 2)
        k = self.k_proj(x).view(n, length, self.n_kv_heads, self.head_dim).transpose(1, 2)
        v = self.v_proj(x).view(n, length, self.n_kv_heads, self.head_dim).transpose(1, 2)
        q, k = apply_rope(q, *rope), apply_rope(k, *rope)
        mask = None
        if cache is not None and step is not None:
            k, v = cache.write_read(step, k, v)
            mask = step.mask
        return self.o_proj(attend(q, k, v, mask))


class DiaCrossAttention(nn.Module):
    """Decoder queries over the encoder output; keys/values are projected once per request."""

    def __init__(self, cfg: DiaDecoderConfig) -> None:
        super().__init__()
        self.n_heads, self.n_kv_heads, self.head_dim = (
            cfg.cross_num_heads,
            cfg.cross_num_kv_heads,
            cfg.cross_head_dim,
        )
        self.q_proj = nn.Linear(cfg.hidden_size, self.n_heads * self.head_dim, bias=False)
        self.k_proj = nn.Linear(cfg.cross_hidden_size, self.n_kv_heads * self.head_dim, bias=False)
        self.v_proj = nn.Linear(cfg.cross_hidden_size, self.n_kv_heads * self.head_dim, bias=False)
        self.o_proj = nn.Linear(self.n_heads * self.head_dim, cfg.hidden_size, bias=False)

    def project(self, memory: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Encoder output [N, S, cross_hidden] → keys, values [N, Hkv, S, D]."""
        n, s, _ = memory.shape
        k = self.k_proj(memory).view(n, s, self.n_kv_heads, self.head_dim).transpose(1, 2)
        v = self.v_proj(memory).view(n, s, self.n_kv_heads, self.head_dim).transpose(1, 2)
        return k, v

    def forward(self, x: torch.Tensor, memory: CrossMemory, layer: int) -> torch.Tensor:
        n, length, _ = x.shape
        q = self.q_proj(x).view(n, length, self.n_heads, self.head_dim).transpose(1, 2)
        return self.o_proj(attend(q, memory.keys[layer], memory.values[layer], memory.mask))


@dataclass
class CrossMemory:
    """Cross-attention keys/values of every decoder layer for N decoder rows, and which keys are real."""

    keys: list[torch.Tensor]
    """Per layer [N, Hkv, S, D]."""
    values: list[torch.Tensor]
    mask: torch.Tensor | None
    """[N, 1, 1, S] bool (True = real text position); None when every key is real."""


class DiaEncoderLayer(nn.Module):
    def __init__(self, cfg: DiaEncoderConfig) -> None:
        super().__init__()
        self.pre_sa_norm = RMSNorm(cfg.hidden_size, cfg.norm_eps)
        self.self_attention = DiaSelfAttention(cfg.hidden_size, cfg.num_heads, cfg.num_kv_heads, cfg.head_dim)
        self.post_sa_norm = RMSNorm(cfg.hidden_size, cfg.norm_eps)
        self.mlp = DiaMLP(cfg.hidden_size, cfg.intermediate_size)

    def forward(self, x: torch.Tensor, rope: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        x = x + self.self_attention(self.pre_sa_norm(x), rope)
        return x + self.mlp(self.post_sa_norm(x))


class DiaEncoder(nn.Module):
    """Byte ids [N, L] (no padding: one text per call) → normed hidden states [N, L, hidden]."""

    def __init__(self, cfg: DiaEncoderConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.embedding = nn.Embedding(cfg.vocab_size, cfg.hidden_size)
        self.layers = nn.ModuleList(DiaEncoderLayer(cfg) for _ in range(cfg.num_layers))
        self.norm = RMSNorm(cfg.hidden_size, cfg.norm_eps)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        x = self.embedding(ids)
        positions = torch.arange(ids.shape[1], device=ids.device)[None]
        rope = rope_cos_sin(positions, self.cfg.head_dim, self.cfg.rope_theta)
        for layer in self.layers:
            x = layer(x, rope)
        return self.norm(x)


class DiaMultiChannelEmbedding(nn.Module):
    """One table of 9 × 1028 rows (row c·1028 + id); a row of 9 delayed codes embeds to the sum of 9 rows."""

    def __init__(self, cfg: DiaDecoderConfig) -> None:
        super().__init__()
        self.embed = nn.Embedding(cfg.num_channels * cfg.vocab_size, cfg.hidden_size)
        self.vocab_size = cfg.vocab_size
        self.register_buffer("offsets", torch.empty(cfg.num_channels, dtype=torch.long), persistent=False)
        self.reset_derived_buffers()

    def reset_derived_buffers(self, device: torch.device | None = None) -> None:
        n = self.offsets.shape[0]
        self.offsets = torch.arange(n, device=device or self.offsets.device) * self.vocab_size

    def forward(self, codes: torch.Tensor) -> torch.Tensor:
        """codes [..., 9] → [..., hidden]."""
        return self.embed(codes + self.offsets).sum(dim=-2)


class DiaDecoderLayer(nn.Module):
    def __init__(self, cfg: DiaDecoderConfig) -> None:
        super().__init__()
        self.pre_sa_norm = RMSNorm(cfg.hidden_size, cfg.norm_eps)
        self.self_attention = DiaSelfAttention(cfg.hidden_size, cfg.num_heads, cfg.num_kv_heads, cfg.head_dim)
        self.pre_ca_norm = RMSNorm(cfg.hidden_size, cfg.norm_eps)
        self.cross_attention = DiaCrossAttention(cfg)
        self.pre_mlp_norm = RMSNorm(cfg.hidden_size, cfg.norm_eps)
        self.mlp = DiaMLP(cfg.hidden_size, cfg.intermediate_size)

    def forward(
        self,
        x: torch.Tensor,
        rope: tuple[torch.Tensor, torch.Tensor],
        cache: KVCache,
        step: CacheStep,
        memory: CrossMemory,
        index: int,
    ) -> torch.Tensor:
        x = x + self.self_attention(self.pre_sa_norm(x), rope, cache, step)
        x = x + self.cross_attention(self.pre_ca_norm(x), memory, index)
        return x + self.mlp(self.pre_mlp_norm(x))


class DiaDecoder(nn.Module):
    def __init__(self, cfg: DiaDecoderConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.embeddings = DiaMultiChannelEmbedding(cfg)
        self.layers = nn.ModuleList(DiaDecoderLayer(cfg) for _ in range(cfg.num_layers))
        self.norm = RMSNorm(cfg.hidden_size, cfg.norm_eps)

    def new_caches(self, n_rows: int, max_len: int) -> list[KVCache]:
        """One static self-attention KV cache per layer, ``n_rows`` decoder rows of ``max_len`` positions."""
        w = self.norm.weight
        return [
            KVCache(n_rows, self.cfg.num_kv_heads, max_len, self.cfg.head_dim, w.dtype, w.device)
            for _ in self.layers
        ]

    def forward(
        self, codes: torch.Tensor, caches: list[KVCache], step: CacheStep, memory: CrossMemory
    ) -> torch.Tensor:
        """codes [N, L, 9] at ``step.positions`` [N, L] → normed hidden states [N, L, hidden]."""
        x = self.embeddings(codes)
        rope = rope_cos_sin(step.positions, self.cfg.head_dim, self.cfg.rope_theta)
        for i, layer in enumerate(self.layers):
            x = layer(x, rope, caches[i], step, memory, i)
        return self.norm(x)


class DiaEncoderDecoder(nn.Module):
    """The ``model.`` prefix of the checkpoint."""

    def __init__(self, cfg: DiaConfig) -> None:
        super().__init__()
        self.encoder = DiaEncoder(cfg.encoder)
        self.decoder = DiaDecoder(cfg.decoder)


class Dia(nn.Module):
    """Dia-1.6B: text bytes → encoder memory; delayed code rows → per-channel logits over 1028 audio ids."""

    def __init__(self, cfg: DiaConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.model = DiaEncoderDecoder(cfg)
        dec = cfg.decoder
        self.logits_dense = nn.Linear(dec.hidden_size, dec.num_channels * dec.vocab_size, bias=False)

    @property
    def dtype(self) -> torch.dtype:
        return self.logits_dense.weight.dtype

    @property
    def device(self) -> torch.device:
        return self.logits_dense.weight.device

    def cross_memory(self, encoder_out: torch.Tensor) -> CrossMemory:
        """Encoder output [N, S, hidden] → every decoder layer's cross keys/values (no padding mask)."""
        kv = [layer.cross_attention.project(encoder_out) for layer in self.model.decoder.layers]
        return CrossMemory([k for k, _ in kv], [v for _, v in kv], None)

    def logits(self, hidden: torch.Tensor) -> torch.Tensor:
        """Decoder hidden [..., hidden] → fp32 logits [..., 9, 1028]."""
        dec = self.cfg.decoder
        return self.logits_dense(hidden).float().unflatten(-1, (dec.num_channels, dec.vocab_size))
