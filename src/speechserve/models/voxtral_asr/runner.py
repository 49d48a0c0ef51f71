"""Batched calls into the Voxtral ASR decoder for the engine: prefill chunks into a slot, one decode step for
many sequences at their own positions, logits. Tensors in, tensors out; owns the slotted KV cache."""

from __future__ import annotations

import torch

from speechserve.models.layers import CacheStep
from speechserve.models.voxtral_asr import VoxtralASR


class ASRModelRunner:
    """Lifetime: the engine's."""

    def __init__(self, model: VoxtralASR, n_slots: int, max_len: int) -> None:
        self.model = model
        self.n_slots, self.max_len = n_slots, max_len
        self.device = model.decoder.norm.weight.device
        self.dtype = model.decoder.norm.weight.dtype
        self.cache = model.decoder.new_cache(n_slots, max_len)

    @torch.inference_mode()
    def prefill(self, slot: int, embeds: torch.Tensor, start: int) -> torch.Tensor:
        """Prompt embeddings [L, dim] at positions start..start+L of ``slot`` → the last hidden [dim]."""
        end = start + embeds.shape[0]
        positions = torch.arange(start, end, device=self.device)[None]
        step = CacheStep.build(torch.tensor([slot], device=self.device), positions, end, slot)
        return self.model.decoder(embeds[None].to(self.dtype), self.cache, step)[0, -1]

    @torch.inference_mode()
    def decode(self, slots: list[int], positions: list[int], ids: list[int]) -> torch.Tensor:
        """Feed one id to each of B sequences at its own position → hidden [B, dim]."""
        consecutive = slots == list(range(slots[0], slots[0] + len(slots)))
        step = CacheStep.build(
            torch.tensor(slots, device=self.device),
            torch.tensor(positions, device=self.device)[:, None],
            max(positions) + 1,
            slots[0] if consecutive else None,
        )
        embeds = self.model.decoder.tok_embeddings(torch.tensor(ids, device=self.device)[:, None])
        return self.model.decoder(embeds, self.cache, step)[:, 0]

    @torch.inference_mode()
    def logits(self, hidden: torch.Tensor) -> torch.Tensor:
        """hidden [B, dim] → float32 logits [B, vocab]."""
        return self.model.logits(hidden).float()
