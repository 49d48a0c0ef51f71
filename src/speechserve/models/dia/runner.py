"""Batched Dia model calls with classifier-free guidance: every utterance is a pair of decoder rows
(conditional: its text; unconditional: as many zero bytes) that read the same delayed codes.

- ``encode``: one text → encoder output of both branches and every decoder layer's cross keys/values;
- ``prefill``: an utterance's first rows (BOS, audio prompt) into its KV slot → the logits of the next row;
- ``decode``: one row for each of B utterances in one decoder call of 2B rows → logits [B, 2, 9, 1028].

Slot s of the self-attention cache holds decoder rows 2s (conditional) and 2s+1 (unconditional). The padded
cross-attention memory of a batch is rebuilt only when the batch changes (a join or a leave).
Tensors in, tensors out; knows no engine.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from speechserve.models.dia.model import CrossMemory, Dia
from speechserve.models.layers import CacheStep


@dataclass(eq=False)
class EncodedText:
    """One utterance's encoder work, done once: both CFG branches."""

    ids: list[int]
    encoder_out: torch.Tensor
    """[2, L, hidden]: row 0 conditional (the text), row 1 unconditional (zero bytes)."""
    memory: CrossMemory
    """Cross keys/values [2, H, L, D] of every decoder layer."""

    @property
    def length(self) -> int:
        return len(self.ids)


class DiaRunner:
    """Owns the slotted KV cache. Lifetime: its engine's (or one reference generation)."""

    def __init__(self, model: Dia, n_slots: int, max_len: int) -> None:
        self.model, self.n_slots, self.max_len = model, n_slots, max_len
        self.device = model.device
        self.caches = model.model.decoder.new_caches(2 * n_slots, max_len)
        self._batch: list[EncodedText] = []
        self._memory: CrossMemory | None = None

    @torch.inference_mode()
    def encode(self, ids: list[int]) -> EncodedText:
        """Encoder on [text; zeros] and the cross keys/values of every decoder layer."""
        x = torch.tensor([ids, [0] * len(ids)], dtype=torch.long, device=self.device)
        out = self.model.model.encoder(x)
        return EncodedText(ids, out, self.model.cross_memory(out))

    @torch.inference_mode()
    def prefill(self, slot: int, rows: torch.Tensor, start: int, text: EncodedText) -> torch.Tensor:
        """Delayed rows [n, C] at positions start..start+n of ``slot`` → logits [2, C, V] of the next row."""
        n = rows.shape[0]
        codes = rows.to(self.device)[None].expand(2, -1, -1)
        positions = torch.arange(start, start + n, device=self.device)[None].expand(2, -1)
        cache_rows = torch.tensor([2 * slot, 2 * slot + 1], device=self.device)
        step = CacheStep.build(cache_rows, positions, start + n, 2 * slot)
        hidden = self.model.model.decoder(codes, self.caches, step, text.memory)
        return self.model.logits(hidden[:, -1])

    @torch.inference_mode()
    def decode(
        self, slots: list[int], positions: list[int], rows: torch.Tensor, texts: list[EncodedText]
    ) -> torch.Tensor:
        """One delayed row [C] for each of B utterances (``rows`` [B, C]) → logits [B, 2, C, V]."""
        b = len(slots)
        codes = rows.to(self.device).repeat_interleave(2, dim=0)[:, None]
        cache_rows = [r for s in slots for r in (2 * s, 2 * s + 1)]
        consecutive = cache_rows == list(range(cache_rows[0], cache_rows[0] + 2 * b))
        pos = torch.tensor(positions, device=self.device).repeat_interleave(2)[:, None]
        step = CacheStep.build(
            torch.tensor(cache_rows, device=self.device),
            pos,
            max(positions) + 1,
            cache_rows[0] if consecutive else None,
        )
        hidden = self.model.model.decoder(codes, self.caches, step, self.batch_memory(texts))
        return self.model.logits(hidden[:, 0]).unflatten(0, (b, 2))

    def batch_memory(self, texts: list[EncodedText]) -> CrossMemory:
        """The cross memory of 2B rows, texts right-padded to the longest with a key mask (cached)."""
        if len(texts) == 1:
            return texts[0].memory
        if len(texts) == len(self._batch) and all(a is b for a, b in zip(texts, self._batch, strict=True)):
            return self._memory  # type: ignore[return-value]
        longest = max(t.length for t in texts)
        keys, values = [], []
        for layer in range(len(texts[0].memory.keys)):
            keys.append(_pad_cat([t.memory.keys[layer] for t in texts], longest))
            values.append(_pad_cat([t.memory.values[layer] for t in texts], longest))
        lengths = torch.tensor([t.length for t in texts], device=self.device).repeat_interleave(2)
        mask = None
        if any(t.length != longest for t in texts):
            mask = (torch.arange(longest, device=self.device)[None] < lengths[:, None])[:, None, None, :]
        self._batch, self._memory = list(texts), CrossMemory(keys, values, mask)
        return self._memory


def _pad_cat(parts: list[torch.Tensor], length: int) -> torch.Tensor:
    """[2, H, L_i, D] tensors → [2·n, H, length, D], zero-padded along L."""
    first = parts[0]
    out = first.new_zeros(2 * len(parts), first.shape[1], length, first.shape[3])
    for i, part in enumerate(parts):
        out[2 * i : 2 * i + 2, :, : part.shape[2]] = part
    return out
