"""Sliding-window attention over slotted ring-buffer KV caches (spec §4.2, §5.1): memory per stream is fixed
by the window, never by the stream's length.

A layer's cache holds ``capacity = window + max_chunk − 1`` key/value rows per slot; position ``p`` lives in
row ``p mod capacity``. A call writes its ``L ≤ max_chunk`` new keys first and then reads the ring: the rows
it overwrote are older than any key its queries may see (query ``t`` sees ``t − window < p ≤ t``), so the
cache is never concatenated with the new keys (and is read as a view when the rows' slots are consecutive).
:class:`WindowStep` is built once per call and shared by every layer; it is a
:class:`~speechserve.models.layers.CacheStep`, so the shared ``Attention`` runs on it unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from speechserve.models.layers import CacheStep


@dataclass(frozen=True)
class WindowStep(CacheStep):
    """Rows ``b`` hold positions ``starts[b] … starts[b]+L−1`` of slot ``slots[b]`` (ring rows ``positions mod
    capacity``); ``mask`` says which of the first ``kv_len`` ring rows each query may see."""

    ring_rows: torch.Tensor | None = None  # [B, L] long: where the new keys are written

    @staticmethod
    def build_window(
        slots: list[int], starts: list[int], length: int, window: int, capacity: int, device: torch.device
    ) -> WindowStep:
        """The step of ``length`` new positions per row; ``length ≤ capacity − window + 1``."""
        if length > capacity - window + 1:
            raise ValueError(
                f"{length} positions per call exceed the ring ({capacity} rows, window {window})"
            )
        starts_t = torch.tensor(starts, device=device)[:, None]  # [B, 1]
        positions = starts_t + torch.arange(length, device=device)  # [B, L]
        ends = starts_t + length  # [B, 1]: one past the last position written
        kv_len = min(capacity, max(starts) + length)  # rows beyond were never written by anyone
        rows = torch.arange(kv_len, device=device)[None]  # [1, K]
        stored = ends - 1 - torch.remainder(ends - 1 - rows, capacity)  # [B, K]: position held by each row
        query = positions[:, :, None]  # [B, L, 1]
        key = stored[:, None, :]  # [B, 1, K]
        mask = (key >= 0) & (key <= query) & (key > query - window)  # [B, L, K]
        consecutive = slots == list(range(slots[0], slots[0] + len(slots)))
        return WindowStep(
            slots=torch.tensor(slots, device=device),
            positions=positions,
            kv_len=kv_len,
            mask=mask[:, None],
            first_slot=slots[0] if consecutive else None,
            ring_rows=torch.remainder(positions, capacity),
        )


class RingKV:
    """One attention layer's keys and values for ``n_slots`` streams: [n_slots, n_kv_heads, capacity, head_dim].

    Used by the shared ``Attention`` through ``write_read`` (the same duck type as ``layers.KVCache``).
    """

    def __init__(
        self,
        n_slots: int,
        n_kv_heads: int,
        capacity: int,
        head_dim: int,
        dtype: torch.dtype,
        device: torch.device,
    ) -> None:
        shape = (n_slots, n_kv_heads, capacity, head_dim)
        self.k = torch.zeros(shape, dtype=dtype, device=device)
        self.v = torch.zeros(shape, dtype=dtype, device=device)

    @property
    def capacity(self) -> int:
        return self.k.shape[2]

    @property
    def nbytes(self) -> int:
        return self.k.nbytes + self.v.nbytes

    def reset(self, slot: int) -> None:
        """Forget a finished stream (stale rows are masked anyway; zeros keep them finite)."""
        self.k[slot].zero_()
        self.v[slot].zero_()

    def write_read(
        self, step: CacheStep, k: torch.Tensor, v: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Write k/v [B, H, L, D] into each row's ring; return each row's first ``kv_len`` ring rows."""
        assert isinstance(step, WindowStep) and step.ring_rows is not None
        slots = step.slots[:, None]
        self.k[slots, :, step.ring_rows] = k.transpose(1, 2)
        self.v[slots, :, step.ring_rows] = v.transpose(1, 2)
        if step.first_slot is not None:
            rows = slice(step.first_slot, step.first_slot + k.shape[0])
            return self.k[rows, :, : step.kv_len], self.v[rows, :, : step.kv_len]
        return self.k[step.slots, :, : step.kv_len], self.v[step.slots, :, : step.kv_len]
