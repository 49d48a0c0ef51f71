"""The flow-matching acoustic transformer: one backbone hidden state → one frame of 37 codes.

Semantic code: masked greedy argmax of a linear head on the raw hidden. Acoustic codes: 7 Euler steps of a
3-token bidirectional transformer with classifier-free guidance (zero hidden as the unconditional input),
then FSQ clamp/round. Codes leave in "+2" space (0/1 are the audio special codes). Spec §5.2-5.4.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from speechserve.models.layers import RMSNorm, TransformerBlock
from speechserve.models.voxtral_tts.config import (
    END_AUDIO_CODE,
    N_AUDIO_SPECIAL_TOKENS,
    AudioCodesConfig,
    FlowConfig,
)


class TimeEmbedding(nn.Module):
    """Sinusoidal embedding of the flow time t ∈ [0, 1]: cat(cos(t·f), sin(t·f)), f_j = 10000^(−j/(D/2))."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.dim = dim
        self.register_buffer("inv_freq", torch.empty(dim // 2), persistent=False)  # not in the checkpoint
        self.reset_derived_buffers()

    def reset_derived_buffers(self, device: torch.device | None = None) -> None:
        """Recompute ``inv_freq`` in fp32 (the loader calls this after materialising the module)."""
        half = self.dim // 2
        j = torch.arange(half, dtype=torch.float32, device=device or self.inv_freq.device)
        self.inv_freq = torch.exp(-math.log(10000.0) * j / half)

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        angles = t.float()[:, None] * self.inv_freq.float()[None]
        return torch.cat((angles.cos(), angles.sin()), dim=-1)


class FlowMatchingAudioTransformer(nn.Module):
    """`acoustic_transformer.*`: semantic head, flow transformer and acoustic (velocity) head."""

    def __init__(self, cfg: FlowConfig, codes: AudioCodesConfig) -> None:
        super().__init__()
        self.cfg, self.codes_cfg = cfg, codes
        self.input_projection = nn.Linear(codes.n_acoustic_codebook, cfg.dim, bias=False)
        self.time_projection = nn.Linear(cfg.dim, cfg.dim, bias=False)
        self.llm_projection = nn.Linear(cfg.input_dim, cfg.dim, bias=False)
        self.time_embedding = TimeEmbedding(cfg.dim)
        self.layers = nn.ModuleList(
            TransformerBlock(cfg.dim, cfg.n_heads, cfg.n_kv_heads, cfg.head_dim, cfg.hidden_dim, cfg.norm_eps)
            for _ in range(cfg.n_layers)
        )
        self.norm = RMSNorm(cfg.dim, cfg.norm_eps)
        self.semantic_codebook_output = nn.Linear(cfg.input_dim, codes.semantic_head_rows, bias=False)
        self.acoustic_codebook_output = nn.Linear(cfg.dim, codes.n_acoustic_codebook, bias=False)
        self._time_tables: dict[tuple, tuple[torch.Tensor, torch.Tensor]] = {}

    def semantic_logits(self, hidden: torch.Tensor) -> torch.Tensor:
        """hidden [B, input_dim] → fp32 logits [B, 8320] with [EMPTY_AUDIO] and padding rows at −inf."""
        logits = self.semantic_codebook_output(hidden).float()
        logits[:, 0] = float("-inf")
        logits[:, self.codes_cfg.semantic_codebook_size + N_AUDIO_SPECIAL_TOKENS :] = float("-inf")
        return logits

    def time_table(self, n_steps: int, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
        """Projected time embeddings [n_steps, dim] of t_0..t_{n-1} and the step sizes dt [n_steps].

        Constant per (steps, dtype, device): computed once and hoisted out of every frame's Euler loop.
        """
        key = (n_steps, dtype, self.inv_device)
        table = self._time_tables.get(key)
        if table is None:
            t = torch.linspace(0, 1, n_steps + 1, device=self.inv_device)
            with torch.inference_mode():
                table = (self.time_projection(self.time_embedding(t[:-1]).to(dtype)), t[1:] - t[:-1])
            self._time_tables[key] = table
        return table

    @property
    def inv_device(self) -> torch.device:
        return self.time_embedding.inv_freq.device

    def velocity(self, x: torch.Tensor, t_proj: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        """x [N, 36], t_proj [dim], cond [N, dim] (already llm-projected) → velocity [N, 36]."""
        tokens = torch.stack((self.input_projection(x), t_proj.expand_as(cond), cond), dim=1)  # [N, 3, dim]
        *inner, last = self.layers
        for layer in inner:
            tokens = layer(tokens, causal=False)
        # Only token 0's output is read, so the last layer computes only its row (keys and values from all 3):
        # the same values, and a third of the rows for its wq, wo and feed-forward.
        tokens = last(tokens, causal=False, queries=1)
        return self.acoustic_codebook_output(self.norm(tokens)[:, 0])

    def sample_acoustic(
        self, hidden: torch.Tensor, noise: torch.Tensor, cfg_alpha: torch.Tensor, n_steps: int
    ) -> torch.Tensor:
        """Euler-integrate the CFG velocity field from ``noise`` [B, 36]; returns x at t = 1 (fp32)."""
        b = hidden.shape[0]
        cond = self.llm_projection(hidden)
        cond2 = torch.cat(
            (cond, torch.zeros_like(cond)), dim=0
        )  # conditional and unconditional as one 2B batch
        t_proj, dts = self.time_table(n_steps, hidden.dtype)
        alpha = cfg_alpha.to(torch.float32).view(b, 1)
        x = noise.float()
        for i in range(n_steps):
            v = self.velocity(x.to(hidden.dtype).repeat(2, 1), t_proj[i], cond2).float()
            v = alpha * v[:b] + (1 - alpha) * v[b:]
            x = x + v * dts[i]
        return x

    def quantize(self, semantic: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """FSQ levels from the flow state and the frame's 37 codes in +2 space: [B, 37] int64."""
        n_levels = self.codes_cfg.acoustic_codebook_size
        levels = torch.round((x.clamp(-1, 1) + 1) / 2 * (n_levels - 1)).long()
        levels = levels.masked_fill(
            (semantic == END_AUDIO_CODE)[:, None], 0
        )  # END frames carry [EMPTY_AUDIO]
        return torch.cat((semantic[:, None], levels + N_AUDIO_SPECIAL_TOKENS), dim=1)

    def forward(
        self, hidden: torch.Tensor, noise: torch.Tensor, cfg_alpha: torch.Tensor, n_steps: int | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """hidden [B, input_dim], noise [B, 36], cfg_alpha [B] → (codes [B, 37], flow state x [B, 36])."""
        semantic = self.semantic_logits(hidden).argmax(dim=-1)
        x = self.sample_acoustic(hidden, noise, cfg_alpha, n_steps or self.cfg.n_decoding_steps)
        return self.quantize(semantic, x), x
