"""The Mistral text decoder's config, shared by every model built on it (Voxtral TTS backbone, Voxtral ASR)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class DecoderConfig:
    """Widths and constants of a Mistral decoder, as each checkpoint's params/config states them."""

    dim: int
    n_layers: int
    head_dim: int
    hidden_dim: int
    n_heads: int
    n_kv_heads: int
    vocab_size: int
    rope_theta: float = 1_000_000.0
    norm_eps: float = 1e-5
    max_seq_len: int = 65536
    tied_embeddings: bool = False
    """True: logits use the token embedding table (no `output.weight`). The TTS backbone has no LM head."""
