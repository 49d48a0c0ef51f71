"""Everything a stream keeps between 80 ms steps, for ``n_slots`` streams at once: the conv stem's left
context, a ring KV cache per encoder layer (window 750 frames) and per decoder layer (window 8192 tokens).

Sizes are fixed at construction by the windows and the largest chunk one call may feed, so a stream's memory
never grows with its length (the realtime model has no other per-stream state on the device).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from speechserve.models.voxtral_realtime.config import VoxtralRealtimeConfig
from speechserve.models.voxtral_realtime.window import RingKV

ENCODER_CHUNK_FRAMES = 64
"""Most encoder frames one call feeds per stream (16 tokens = 1.28 s); longer inputs are split."""
DECODER_CHUNK_TOKENS = 64
"""Most decoder positions one call feeds per stream (the longest prompt, 2400 ms delay, is 63)."""


def ring_capacities(cfg: VoxtralRealtimeConfig) -> tuple[int, int]:
    """Rows of the encoder and decoder rings: window + largest chunk − 1."""
    return (
        cfg.encoder.sliding_window + ENCODER_CHUNK_FRAMES - 1,
        cfg.sliding_window + DECODER_CHUNK_TOKENS - 1,
    )


def stream_bytes(cfg: VoxtralRealtimeConfig, dtype_bytes: int) -> int:
    """Device bytes of one stream's state (what a slot costs)."""
    enc, dec = cfg.encoder, cfg.decoder
    enc_rows, dec_rows = ring_capacities(cfg)
    rings = enc.n_layers * enc.n_heads * enc.head_dim * enc_rows + dec.n_layers * dec.n_kv_heads * dec.head_dim * dec_rows  # fmt: skip
    tails = enc.audio.num_mel_bins * 2 + enc.dim * 1
    return (2 * rings + tails) * dtype_bytes


@dataclass
class StreamCache:
    """Slotted per-stream state. Lifetime: its owner's (a session, or the engine program)."""

    conv_tails: list[torch.Tensor]
    """Per stem conv: [n_slots, channels, kernel − stride] (zeros at a stream's start)."""
    encoder: list[RingKV]
    decoder: list[RingKV]

    @classmethod
    def build(cls, cfg: VoxtralRealtimeConfig, n_slots: int, dtype: torch.dtype, device: torch.device) -> StreamCache:  # fmt: skip
        enc, dec = cfg.encoder, cfg.decoder
        enc_rows, dec_rows = ring_capacities(cfg)
        tails = [
            torch.zeros(n_slots, enc.audio.num_mel_bins, 2, dtype=dtype, device=device),
            torch.zeros(n_slots, enc.dim, 1, dtype=dtype, device=device),
        ]
        encoder = [
            RingKV(n_slots, enc.n_heads, enc_rows, enc.head_dim, dtype, device) for _ in range(enc.n_layers)
        ]
        decoder = [
            RingKV(n_slots, dec.n_kv_heads, dec_rows, dec.head_dim, dtype, device)
            for _ in range(dec.n_layers)
        ]
        return cls(tails, encoder, decoder)

    @property
    def n_slots(self) -> int:
        return self.conv_tails[0].shape[0]

    @property
    def nbytes(self) -> int:
        """Device bytes held (all slots)."""
        return sum(t.nbytes for t in self.conv_tails) + sum(r.nbytes for r in (*self.encoder, *self.decoder))

    def tensors(self) -> list[torch.Tensor]:
        """Every state tensor (for tests: their shapes never change)."""
        return [*self.conv_tails, *(t for r in (*self.encoder, *self.decoder) for t in (r.k, r.v))]

    def reset(self, slot: int) -> None:
        """Start a new stream in ``slot``: no left context, no keys."""
        for tail in self.conv_tails:
            tail[slot].zero_()
        for ring in (*self.encoder, *self.decoder):
            ring.reset(slot)
