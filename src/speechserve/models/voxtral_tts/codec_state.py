"""Incremental (stateful) decoding of the causal codec: each call decodes only new frames.

Every decoder op is causal, so carrying a little state per layer makes chunked decoding equal one-shot
decoding without re-decoding any left context:
- causal convs keep their last ``kernel − stride`` inputs; a stream's first chunk builds that tail from its
  own first inputs with the layer's padding mode (replicate / reflect), exactly as one-shot padding does;
- transposed convs keep their previous input, whose kernel overhang lands in the new chunk;
- windowed attention keeps the keys/values of the last ``w`` positions (and how many of them are real).
States of different streams stack along the batch dimension, so many streams decode in one call.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from speechserve.models.voxtral_tts.codec_layers import (
    CausalConv1d,
    CausalConvTranspose1d,
    CodecAttention,
    CodecTransformer,
)


@dataclass
class CodecStreamState:
    """Per-stream decoder state; batch dimension first on every tensor. ``started`` False = no audio yet."""

    tensors: list[
        torch.Tensor
    ]  # conv tails, transposed-conv previous inputs, attention K and V, in layer order
    valid: list[torch.Tensor]  # per attention layer: [B] number of real cached positions (≤ w)
    started: torch.Tensor  # [B] bool

    @staticmethod
    def stack(states: list[CodecStreamState]) -> CodecStreamState:
        return CodecStreamState(
            [torch.cat(ts) for ts in zip(*(s.tensors for s in states), strict=True)],
            [torch.cat(vs) for vs in zip(*(s.valid for s in states), strict=True)],
            torch.cat([s.started for s in states]),
        )

    def split(self) -> list[CodecStreamState]:
        n = self.started.shape[0]
        return [
            CodecStreamState(
                [t[i : i + 1] for t in self.tensors],
                [v[i : i + 1] for v in self.valid],
                self.started[i : i + 1],
            )
            for i in range(n)
        ]


def _conv_tail_init(conv: CausalConv1d, x: torch.Tensor) -> torch.Tensor:
    """The left padding one-shot decoding would apply to a stream starting with ``x`` [B, C, T]."""
    pad = conv.kernel - conv.stride
    if conv.pad_mode == "replicate":
        return x[..., :1].expand(-1, -1, pad)
    if conv.pad_mode == "reflect":
        return x[..., 1 : pad + 1].flip(-1)
    return torch.zeros_like(x[..., :pad])


def _conv(
    conv: CausalConv1d, x: torch.Tensor, tail: torch.Tensor, started: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    if conv.stride != 1:
        raise NotImplementedError(
            "streaming decode supports stride-1 causal convs (the decoder has only those)"
        )
    pad = conv.kernel - conv.stride
    tail = torch.where(started[:, None, None], tail, _conv_tail_init(conv, x))
    full = torch.cat((tail, x), dim=-1)
    return conv.conv(full), full[..., full.shape[-1] - pad :]


def _conv_transpose(
    tconv: CausalConvTranspose1d, x: torch.Tensor, prev: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    stride = tconv.conv.stride[0]
    n_prev = prev.shape[-1]  # ceil(trim / stride) earlier inputs overlap into this chunk
    out = tconv.conv(torch.cat((prev, x), dim=-1))
    return out[..., n_prev * stride : out.shape[-1] - tconv.trim], x[..., x.shape[-1] - n_prev :]


def _attention(
    attn: CodecAttention, x: torch.Tensor, k_cache: torch.Tensor, v_cache: torch.Tensor, valid: torch.Tensor
):  # type: ignore[no-untyped-def]
    b, t, _ = x.shape
    h, d, w = attn.n_heads, attn.head_dim, attn.window
    q = attn.q_norm(attn.wq(x)).view(b, t, h, d).transpose(1, 2)
    k = torch.cat((k_cache, attn.k_norm(attn.wk(x)).view(b, t, h, d).transpose(1, 2)), dim=2)
    v = torch.cat((v_cache, attn.wv(x).view(b, t, h, d).transpose(1, 2)), dim=2)
    q_pos = torch.arange(t, device=x.device)[:, None] + w  # query i sits at key index w + i
    k_pos = torch.arange(w + t, device=x.device)[None, :]
    rel = (k_pos - q_pos).to(q.dtype)  # j − i ≤ 0 for visible keys
    visible = (k_pos <= q_pos) & (q_pos - k_pos <= w)  # [T, w+T]
    real = (
        k_pos[None] >= (w - valid)[:, None, None]
    )  # cached positions before the stream's start are not real
    bias = attn.alibi_slopes.to(q.dtype)[None, :, None, None] * rel[None, None]
    mask = (visible[None] & real)[:, None]  # [B, 1, T, w+T]
    out = F.scaled_dot_product_attention(
        q, k, v, attn_mask=bias.masked_fill(~mask, float("-inf")), scale=1 / math.sqrt(d)
    )
    y = attn.wo(out.transpose(1, 2).reshape(b, t, h * d))
    return y, k[:, :, t:], v[:, :, t:], torch.clamp(valid + t, max=w)


def _transformer(
    block: CodecTransformer, x: torch.Tensor, state: CodecStreamState, ti: int, vi: int
) -> tuple[torch.Tensor, int, int]:  # type: ignore[no-untyped-def]
    for layer in block.layers:
        a, k, v, n = _attention(
            layer.attention,
            layer.attention_norm(x),
            state.tensors[ti],
            state.tensors[ti + 1],
            state.valid[vi],
        )
        state.tensors[ti], state.tensors[ti + 1], state.valid[vi] = k, v, n
        h = x + layer.attention_scale * a
        x = h + layer.ffn_scale * layer.feed_forward(layer.ffn_norm(h))
        ti, vi = ti + 2, vi + 1
    return x, ti, vi


class StreamingCodecDecoder:
    """Decodes a codec's latent chunk by chunk with carried state (see module docstring)."""

    def __init__(self, codec) -> None:  # type: ignore[no-untyped-def]
        self.codec = codec

    def initial_state(self, batch: int = 1) -> CodecStreamState:
        c = self.codec
        p = c.output_proj.conv.weight
        dev, dt = p.device, p.dtype
        tensors: list[torch.Tensor] = []
        valid: list[torch.Tensor] = []
        for block in [*c.decoder_blocks, c.output_proj]:
            if isinstance(block, CausalConv1d):
                tensors.append(
                    torch.zeros(
                        batch, block.conv.in_channels, block.kernel - block.stride, device=dev, dtype=dt
                    )
                )
            elif isinstance(block, CausalConvTranspose1d):
                n_prev = math.ceil(block.trim / block.conv.stride[0])
                tensors.append(torch.zeros(batch, block.conv.in_channels, n_prev, device=dev, dtype=dt))
            else:
                for layer in block.layers:
                    a = layer.attention
                    shape = (batch, a.n_heads, a.window, a.head_dim)
                    tensors += [
                        torch.zeros(shape, device=dev, dtype=dt),
                        torch.zeros(shape, device=dev, dtype=dt),
                    ]
                    valid.append(torch.zeros(batch, dtype=torch.long, device=dev))
        return CodecStreamState(tensors, valid, torch.zeros(batch, dtype=torch.bool, device=dev))

    @torch.inference_mode()
    def decode(self, codes: torch.Tensor, state: CodecStreamState) -> tuple[torch.Tensor, CodecStreamState]:
        """codes [B, T, 37] (the next T frames of B streams) → PCM [B, 1920·T] and the advanced state."""
        c = self.codec
        x = c.latent_from_codes(codes).to(c.output_proj.conv.weight.dtype)  # [B, 292, T]
        state = CodecStreamState(list(state.tensors), list(state.valid), state.started)
        ti = vi = 0
        for block in c.decoder_blocks:
            if isinstance(block, CausalConv1d):
                x, state.tensors[ti] = _conv(block, x, state.tensors[ti], state.started)
                ti += 1
            elif isinstance(block, CausalConvTranspose1d):
                x, state.tensors[ti] = _conv_transpose(block, x, state.tensors[ti])
                ti += 1
            else:
                y, ti, vi = _transformer(block, x.transpose(1, 2), state, ti, vi)
                x = y.transpose(1, 2)
        patches, state.tensors[ti] = _conv(c.output_proj, x, state.tensors[ti], state.started)
        state.started = torch.ones_like(state.started)
        return patches.transpose(1, 2).reshape(patches.shape[0], -1), state
