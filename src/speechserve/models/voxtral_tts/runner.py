"""Batched model calls for the engine: prefill chunks, one decode step for all sequences, the flow head
for the whole batch, and the audio-codebook feedback embedding. Tensors in, tensors out."""

from __future__ import annotations

import torch

from speechserve.models.layers import CacheStep
from speechserve.models.voxtral_tts import VoxtralTTS


class TTSModelRunner:
    """Owns the slotted KV cache. Lifetime: the engine's."""

    def __init__(self, model: VoxtralTTS, n_slots: int, max_len: int) -> None:
        self.model = model
        self.n_slots, self.max_len = n_slots, max_len
        self.device = model.backbone.norm.weight.device
        self.dtype = model.backbone.norm.weight.dtype
        self.scratch_slot = (
            n_slots  # one extra slot: padded rows of static batches write here, nobody reads it
        )
        self.cache = model.backbone.new_cache(n_slots + 1, max_len)

    @torch.inference_mode()
    def prefill(self, slot: int, embeds: torch.Tensor, start: int) -> torch.Tensor:
        """Feed prompt embeddings [L, dim] at positions start..start+L of ``slot``; return the last hidden [dim]."""
        positions = torch.arange(start, start + embeds.shape[0], device=self.device)[None]
        step = CacheStep.build(
            torch.tensor([slot], device=self.device), positions, start + embeds.shape[0], slot
        )
        return self.model.backbone(embeds[None].to(self.dtype), self.cache, step)[0, -1]

    @torch.inference_mode()
    def decode(self, slots: list[int], positions: list[int], embeds: torch.Tensor) -> torch.Tensor:
        """One position for each of B sequences: embeds [B, dim] at positions [B] → hidden [B, dim]."""
        consecutive = slots == list(range(slots[0], slots[0] + len(slots)))
        step = CacheStep.build(
            torch.tensor(slots, device=self.device),
            torch.tensor(positions, device=self.device)[:, None],
            max(positions) + 1,
            slots[0] if consecutive else None,
        )
        return self.model.backbone(embeds[:, None], self.cache, step)[:, 0]

    @torch.inference_mode()
    def frame_head(
        self, hidden: torch.Tensor, noise: torch.Tensor, cfg_alpha: torch.Tensor, n_steps: int
    ) -> torch.Tensor:
        """Semantic argmax + CFG flow + FSQ for B hidden states → codes [B, 37] (+2 space)."""
        codes, _ = self.model.acoustic_transformer(hidden, noise, cfg_alpha, n_steps)
        return codes

    @torch.inference_mode()
    def embed_frames(self, codes: torch.Tensor) -> torch.Tensor:
        """codes [B, 37] → summed codebook embeddings [B, dim] (the next backbone inputs)."""
        return self.model.audio_embeddings(codes).to(self.dtype)
