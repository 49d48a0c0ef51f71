"""Building blocks of the causal Voxtral codec: padded causal convs and windowed ALiBi transformers.

Every op is causal, so the codec can be decoded incrementally with left context (spec §6.2-6.4).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from speechserve.models.layers import FeedForward, RMSNorm


def _pad1d(x: torch.Tensor, left: int, right: int, mode: str) -> torch.Tensor:
    """F.pad that also reflects inputs shorter than the pad (zeros appended first, then cut)."""
    if mode != "reflect" or x.shape[-1] > max(left, right):
        return F.pad(x, (left, right), mode=mode)
    extra = max(left, right) - x.shape[-1] + 1
    padded = F.pad(F.pad(x, (0, extra)), (left, right), mode=mode)
    return padded[..., : padded.shape[-1] - extra]


class CausalConv1d(nn.Module):
    """Conv1d padded on the left by kernel − stride (``pad_mode``), right-padded only to complete a stride.

    The checkpoint stores weight-norm parametrized weights; the loader folds them into ``conv.weight``.
    """

    def __init__(
        self, in_ch: int, out_ch: int, kernel: int, stride: int = 1, pad_mode: str = "reflect"
    ) -> None:
        super().__init__()
        self.conv = nn.Conv1d(in_ch, out_ch, kernel, stride=stride, bias=False)
        self.kernel, self.stride, self.pad_mode = kernel, stride, pad_mode

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: [B, C_in, L] → [B, C_out, ceil(L / stride)]."""
        pad = self.kernel - self.stride
        n_out = math.ceil((x.shape[-1] - self.kernel + pad) / self.stride + 1)
        extra = (n_out - 1) * self.stride + self.kernel - pad - x.shape[-1]
        return self.conv(_pad1d(x, pad, extra, self.pad_mode))


class CausalConvTranspose1d(nn.Module):
    """ConvTranspose1d with the kernel − stride surplus trimmed on the right: [B, C, L] → [B, C, stride·L]."""

    def __init__(self, in_ch: int, out_ch: int, kernel: int, stride: int) -> None:
        super().__init__()
        self.conv = nn.ConvTranspose1d(in_ch, out_ch, kernel, stride=stride, bias=False)
        self.trim = kernel - stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv(x)
        return out[..., : out.shape[-1] - self.trim]


def alibi_slopes(n_heads: int) -> torch.Tensor:
    """vllm-omni's slopes: r^h for h = 0..n−1 with r = 2^(−8/n), i.e. starting at 1 (spec §6.3, §9 D2)."""

    def power_of_2(n: int) -> list[float]:
        r = 2.0 ** (-8.0 / n)
        return [r**i for i in range(n)]

    if math.log2(n_heads).is_integer():
        return torch.tensor(power_of_2(n_heads), dtype=torch.float32)
    m = 2 ** math.floor(math.log2(n_heads))
    return torch.tensor(power_of_2(m) + power_of_2(2 * m)[::2][: n_heads - m], dtype=torch.float32)


class CodecAttention(nn.Module):
    """MHA with QK-RMSNorm over the full projection, causal ALiBi, and a window of w+1 keys (i−w … i)."""

    def __init__(self, dim: int, n_heads: int, head_dim: int, qk_norm_eps: float, window: int) -> None:
        super().__init__()
        self.n_heads, self.head_dim, self.window = n_heads, head_dim, window
        self.wq = nn.Linear(dim, n_heads * head_dim, bias=False)
        self.wk = nn.Linear(dim, n_heads * head_dim, bias=False)
        self.wv = nn.Linear(dim, n_heads * head_dim, bias=False)
        self.wo = nn.Linear(n_heads * head_dim, dim, bias=False)
        self.q_norm = RMSNorm(n_heads * head_dim, qk_norm_eps)
        self.k_norm = RMSNorm(n_heads * head_dim, qk_norm_eps)
        self.register_buffer("alibi_slopes", torch.empty(n_heads), persistent=False)
        self.reset_derived_buffers()

    def reset_derived_buffers(self, device: torch.device | None = None) -> None:
        self.alibi_slopes = alibi_slopes(self.n_heads).to(device or self.alibi_slopes.device)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: [B, T, dim] → [B, T, dim]. Banded attention: memory O(T·w), not O(T²)."""
        b, t, _ = x.shape
        h, d, w = self.n_heads, self.head_dim, self.window
        q = self.q_norm(self.wq(x)).view(b, t, h, d).transpose(1, 2)
        k = self.k_norm(self.wk(x)).view(b, t, h, d).transpose(1, 2)
        v = self.wv(x).view(b, t, h, d).transpose(1, 2)
        # keys/values of the w+1 positions i−w … i for every query i: [B, H, T, w+1, D]
        k_win = F.pad(k, (0, 0, w, 0)).unfold(2, w + 1, 1).transpose(-1, -2)
        v_win = F.pad(v, (0, 0, w, 0)).unfold(2, w + 1, 1).transpose(-1, -2)
        scores = torch.einsum("bhtd,bhtwd->bhtw", q, k_win) / math.sqrt(d)
        rel = torch.arange(-w, 1, device=x.device)  # j − i for the window slots
        bias = self.alibi_slopes.to(scores.dtype)[:, None] * rel.to(scores.dtype)[None]  # [H, w+1]
        before_start = (torch.arange(t, device=x.device)[:, None] + rel[None]) < 0  # [T, w+1]
        scores = (scores + bias[None, :, None, :]).masked_fill(before_start, float("-inf"))
        out = torch.einsum("bhtw,bhtwd->bhtd", scores.softmax(dim=-1), v_win)
        return self.wo(out.transpose(1, 2).reshape(b, t, h * d))


class CodecTransformerLayer(nn.Module):
    """Pre-norm block (norm eps 0.01) with learned per-channel layer scales on both residual branches."""

    def __init__(self, dim: int, hidden_dim: int, n_heads: int, head_dim: int, norm_eps: float, qk_eps: float, window: int) -> None:  # fmt: skip
        super().__init__()
        self.attention = CodecAttention(dim, n_heads, head_dim, qk_eps, window)
        self.feed_forward = FeedForward(dim, hidden_dim)
        self.attention_norm = RMSNorm(dim, norm_eps)
        self.ffn_norm = RMSNorm(dim, norm_eps)
        self.attention_scale = nn.Parameter(torch.ones(dim))
        self.ffn_scale = nn.Parameter(torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = x + self.attention_scale * self.attention(self.attention_norm(x))
        return h + self.ffn_scale * self.feed_forward(self.ffn_norm(h))


class CodecTransformer(nn.Module):
    """A stack of codec layers sharing one attention window: [B, T, dim] → [B, T, dim]."""

    def __init__(self, n_layers: int, **layer_kwargs: int | float) -> None:
        super().__init__()
        self.layers = nn.ModuleList(CodecTransformerLayer(**layer_kwargs) for _ in range(n_layers))  # type: ignore[arg-type]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for layer in self.layers:
            x = layer(x)
        return x
