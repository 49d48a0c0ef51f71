"""Layers shared by every model: RMSNorm, interleaved RoPE, GQA attention with a KV cache, SwiGLU.

Parameter names follow Mistral's native checkpoints (`wq`, `wk`, `wv`, `wo`, `w1`, `w2`, `w3`,
`attention_norm`, `ffn_norm`) so loading is a name-for-name copy.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn


class RMSNorm(nn.Module):
    """Root-mean-square norm with a learned scale, computed in fp32 and cast back."""

    def __init__(self, dim: int, eps: float) -> None:
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        xf = x.float()
        out = xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + self.eps)
        return (out * self.weight.float()).to(x.dtype)


def rope_cos_sin(
    positions: torch.Tensor, head_dim: int, theta: float, dtype: torch.dtype
) -> tuple[torch.Tensor, torch.Tensor]:
    """cos/sin tables [..., head_dim/2] for interleaved-pair RoPE at integer ``positions``."""
    freqs = 1.0 / (
        theta ** (torch.arange(0, head_dim, 2, device=positions.device, dtype=torch.float64) / head_dim)
    )
    angles = positions.to(torch.float64)[..., None] * freqs
    return angles.cos().to(dtype), angles.sin().to(dtype)


def apply_interleaved_rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotate dims (2j, 2j+1) of each head together (Mistral-native weight layout).

    x: [B, L, H, D]; cos/sin: [B or 1, L, D/2].
    """
    x_even, x_odd = x[..., 0::2], x[..., 1::2]
    cos, sin = cos[:, :, None, :], sin[:, :, None, :]
    out_even = x_even * cos - x_odd * sin
    out_odd = x_even * sin + x_odd * cos
    return torch.stack((out_even, out_odd), dim=-1).flatten(-2)


@dataclass(frozen=True)
class CacheStep:
    """Where each row of a batch lives in a slotted KV cache, for one forward call shared by all layers.

    Row b holds tokens at ``positions[b]`` of sequence slot ``slots[b]``; it may attend to keys
    0 … positions[b, i] of its own slot. ``kv_len`` bounds the keys read (static under CUDA graphs).
    """

    slots: torch.Tensor  # [B] long
    positions: torch.Tensor  # [B, L] long
    kv_len: int
    mask: torch.Tensor | None  # [B, 1, L, kv_len] bool, True = may attend; None = every key visible
    first_slot: int | None = (
        None  # rows occupy slots first_slot … first_slot+B−1: reads are views, not gathers
    )

    @staticmethod
    def build(
        slots: torch.Tensor, positions: torch.Tensor, kv_len: int | None = None, first_slot: int | None = None
    ) -> CacheStep:
        """``kv_len`` defaults to the last position + 1 (a host sync; pass it when it is known on the host)."""
        kv_len = int(positions.max()) + 1 if kv_len is None else kv_len
        if first_slot is not None and positions.shape == (1, 1):
            return CacheStep(
                slots, positions, kv_len, None, first_slot
            )  # one query at the end: sees everything
        keys = torch.arange(kv_len, device=positions.device)
        mask = keys[None, None, None, :] <= positions[:, None, :, None]
        return CacheStep(slots, positions, kv_len, mask, first_slot)


class KVCache:
    """Static key/value buffers [n_slots, n_kv_heads, max_len, head_dim] for one attention layer.

    Two ways in: ``update(start, k, v)`` for a batch occupying slots 0..B-1 at one shared position
    (reference loops, prefill of one sequence), and ``write_read(step, k, v)`` for a batch of sequences in
    arbitrary slots at their own positions (the engine's batched decode).
    """

    def __init__(
        self,
        batch: int,
        n_kv_heads: int,
        max_len: int,
        head_dim: int,
        dtype: torch.dtype,
        device: torch.device,
    ) -> None:
        shape = (batch, n_kv_heads, max_len, head_dim)
        self.k = torch.zeros(shape, dtype=dtype, device=device)
        self.v = torch.zeros(shape, dtype=dtype, device=device)

    @property
    def max_len(self) -> int:
        return self.k.shape[2]

    def update(self, start: int, k: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Write k/v [B, H, L, D] at positions start..start+L and return keys/values 0..start+L."""
        end = start + k.shape[2]
        if end > self.max_len:
            raise RuntimeError(f"KV cache overflow: position {end} > capacity {self.max_len}")
        b = k.shape[0]
        self.k[:b, :, start:end] = k
        self.v[:b, :, start:end] = v
        return self.k[:b, :, :end], self.v[:b, :, :end]

    def write_read(
        self, step: CacheStep, k: torch.Tensor, v: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Write k/v [B, H, L, D] at each row's slot/positions; return each row's keys/values [B, H, kv_len, D]."""
        rows = step.slots[:, None]
        self.k[rows, :, step.positions] = k.transpose(1, 2)
        self.v[rows, :, step.positions] = v.transpose(1, 2)
        if step.first_slot is not None:
            end = step.first_slot + k.shape[0]
            return self.k[step.first_slot : end, :, : step.kv_len], self.v[
                step.first_slot : end, :, : step.kv_len
            ]
        return self.k[step.slots, :, : step.kv_len], self.v[step.slots, :, : step.kv_len]


class Attention(nn.Module):
    """Grouped-query attention; RoPE and a KV cache are optional (the flow head uses neither)."""

    def __init__(self, dim: int, n_heads: int, n_kv_heads: int, head_dim: int) -> None:
        super().__init__()
        self.n_heads, self.n_kv_heads, self.head_dim = n_heads, n_kv_heads, head_dim
        self.wq = nn.Linear(dim, n_heads * head_dim, bias=False)
        self.wk = nn.Linear(dim, n_kv_heads * head_dim, bias=False)
        self.wv = nn.Linear(dim, n_kv_heads * head_dim, bias=False)
        self.wo = nn.Linear(n_heads * head_dim, dim, bias=False)

    def forward(
        self,
        x: torch.Tensor,
        rope: tuple[torch.Tensor, torch.Tensor] | None = None,
        cache: KVCache | None = None,
        start: int | CacheStep = 0,
        causal: bool = True,
        queries: int | None = None,
    ) -> torch.Tensor:
        """x: [B, L, dim] → [B, L, dim]. With a cache, x holds positions start..start+L (or as ``CacheStep``).

        ``queries``: only the first that many positions ask (→ [B, queries, dim]); keys and values still come
        from all L. Exact — each output row depends only on its own query — and for a caller that reads only
        those rows it skips the rest of ``wq`` and ``wo`` (bidirectional, cacheless use only)."""
        b, length, _ = x.shape
        if queries is not None:
            assert cache is None and not causal, "queries= is for bidirectional, cacheless attention"
        q_len = length if queries is None else queries
        q = self.wq(x[:, :q_len]).view(b, q_len, self.n_heads, self.head_dim)
        k = self.wk(x).view(b, length, self.n_kv_heads, self.head_dim)
        v = self.wv(x).view(b, length, self.n_kv_heads, self.head_dim)
        if rope is not None:
            q, k = apply_interleaved_rope(q, *rope), apply_interleaved_rope(k, *rope)
        q, k, v = q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2)
        mask = None
        if isinstance(start, CacheStep):
            assert cache is not None
            k, v = cache.write_read(start, k, v)
            mask = start.mask
        elif cache is not None:
            k, v = cache.update(start, k, v)
        if mask is None and causal and length > 1:
            total = k.shape[2]
            # query i (absolute position start+i) sees keys 0..start+i
            mask = torch.ones(length, total, dtype=torch.bool, device=x.device).tril(diagonal=total - length)
        out = F.scaled_dot_product_attention(
            q,
            k,
            v,
            attn_mask=mask,
            scale=1.0 / math.sqrt(self.head_dim),
            enable_gqa=self.n_heads != self.n_kv_heads,
        )
        return self.wo(out.transpose(1, 2).reshape(b, q_len, self.n_heads * self.head_dim))


class FeedForward(nn.Module):
    """SwiGLU: w2(silu(w1 x) * w3 x)."""

    def __init__(self, dim: int, hidden_dim: int) -> None:
        super().__init__()
        self.w1 = nn.Linear(dim, hidden_dim, bias=False)
        self.w2 = nn.Linear(hidden_dim, dim, bias=False)
        self.w3 = nn.Linear(dim, hidden_dim, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.w2(F.silu(self.w1(x)) * self.w3(x))


class TransformerBlock(nn.Module):
    """Pre-norm decoder block: attention then SwiGLU, each with a residual."""

    def __init__(
        self, dim: int, n_heads: int, n_kv_heads: int, head_dim: int, hidden_dim: int, norm_eps: float
    ) -> None:
        super().__init__()
        self.attention = Attention(dim, n_heads, n_kv_heads, head_dim)
        self.feed_forward = FeedForward(dim, hidden_dim)
        self.attention_norm = RMSNorm(dim, norm_eps)
        self.ffn_norm = RMSNorm(dim, norm_eps)

    def forward(
        self,
        x: torch.Tensor,
        rope: tuple[torch.Tensor, torch.Tensor] | None = None,
        cache: KVCache | None = None,
        start: int | CacheStep = 0,
        causal: bool = True,
        queries: int | None = None,
    ) -> torch.Tensor:
        """``queries``: compute only the first that many positions' outputs (see :meth:`Attention.forward`)."""
        attended = self.attention(self.attention_norm(x), rope, cache, start, causal, queries)
        h = (x if queries is None else x[:, :queries]) + attended
        return h + self.feed_forward(self.ffn_norm(h))
