"""KV-cache slots: one per running sequence, allocated from a fixed pool sized from a memory budget."""

from __future__ import annotations

from speechserve.checkpoints.mistral_config import DecoderConfig


def slot_bytes(cfg: DecoderConfig, max_len: int, dtype_bytes: int) -> int:
    """Bytes of K and V for one sequence of ``max_len`` positions across every layer."""
    return 2 * cfg.n_layers * cfg.n_kv_heads * cfg.head_dim * max_len * dtype_bytes


def slots_for_budget(cfg: DecoderConfig, max_len: int, dtype_bytes: int, budget_bytes: int, cap: int) -> int:
    """How many sequences fit in ``budget_bytes`` of KV cache (at least 1, at most ``cap``)."""
    return max(1, min(cap, budget_bytes // slot_bytes(cfg, max_len, dtype_bytes)))


class SlotPool:
    """Free-list allocator of slot indices 0..n-1. Lowest index first, so live slots stay dense."""

    def __init__(self, n_slots: int) -> None:
        self.n_slots = n_slots
        self._free = list(range(n_slots - 1, -1, -1))

    @property
    def n_free(self) -> int:
        return len(self._free)

    def allocate(self) -> int | None:
        return self._free.pop() if self._free else None

    def release(self, slot: int) -> None:
        if slot < 0 or slot >= self.n_slots or slot in self._free:
            raise ValueError(f"slot {slot} is not allocated")
        self._free.append(slot)
        self._free.sort(reverse=True)
