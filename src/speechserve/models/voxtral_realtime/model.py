"""Voxtral Mini 4B Realtime as one module: causal audio encoder + adapter + delay-conditioned decoder.

Architecture only (tensor in, tensor out). Fusion is additive (spec §5.3): decoder position ``p`` takes
``adapter(encoder frames 4p … 4p+3) + embedding(x_p)``, one audio embedding per 80 ms. Every call takes the
streams' :class:`StreamCache` slots and their positions, so the same code runs a whole file, one 80 ms step
of one stream, or one step of many streams batched; inputs longer than a cache chunk are fed in pieces
(causal model: exactly the same computation).
"""

from __future__ import annotations

import torch
from torch import nn

from speechserve.models.voxtral_asr.adapter import AudioLanguageAdapter
from speechserve.models.voxtral_realtime.cache import DECODER_CHUNK_TOKENS, ENCODER_CHUNK_FRAMES, StreamCache
from speechserve.models.voxtral_realtime.config import VoxtralRealtimeConfig
from speechserve.models.voxtral_realtime.decoder import RealtimeDecoder, time_embedding
from speechserve.models.voxtral_realtime.encoder import CausalAudioEncoder
from speechserve.models.voxtral_realtime.window import WindowStep


class VoxtralRealtime(nn.Module):
    """Mel frames + text ids → next-token logits, streamed. Lifetime: the process (weights only)."""

    def __init__(self, cfg: VoxtralRealtimeConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.whisper_encoder = CausalAudioEncoder(cfg.encoder)
        self.audio_language_projection = AudioLanguageAdapter(
            cfg.encoder.dim, cfg.decoder.dim, cfg.downsample_factor
        )
        self.decoder = RealtimeDecoder(cfg.decoder, cfg.t_cond_dim)

    @property
    def dtype(self) -> torch.dtype:
        return self.decoder.norm.weight.dtype

    @property
    def device(self) -> torch.device:
        return self.decoder.norm.weight.device

    def new_cache(self, n_slots: int) -> StreamCache:
        """Zeroed per-stream state for ``n_slots`` streams on the model's device and dtype."""
        return StreamCache.build(self.cfg, n_slots, self.dtype, self.device)

    def t_cond(self, n_delay: int) -> torch.Tensor:
        """The delay's time embedding [dim]."""
        return time_embedding(n_delay, self.cfg.decoder.dim, self.dtype, self.device)

    # ---- audio → embeddings ------------------------------------------------------------------------------
    def conv_frames(self, mel: torch.Tensor, cache: StreamCache, slots: list[int]) -> torch.Tensor:
        """mel [B, n_mels, T] → conv stem frames [B, T/2, enc_dim], continuing each slot's left context."""
        index = torch.tensor(slots, device=mel.device)
        tails = [t[index] for t in cache.conv_tails]
        frames, new_tails = self.whisper_encoder.stem(mel.to(self.dtype), tails)
        for store, new in zip(cache.conv_tails, new_tails, strict=True):
            store[index] = new
        return frames

    def encoder_frames(
        self, frames: torch.Tensor, cache: StreamCache, slots: list[int], starts: list[int]
    ) -> torch.Tensor:
        """Conv frames [B, L, enc_dim] at encoder positions ``starts[b]…`` → encoder output [B, L, enc_dim]."""
        enc = self.cfg.encoder
        out = []
        for lo in range(0, frames.shape[1], ENCODER_CHUNK_FRAMES):
            piece = frames[:, lo : lo + ENCODER_CHUNK_FRAMES]
            capacity = cache.encoder[0].capacity
            step = WindowStep.build_window(slots, [s + lo for s in starts], piece.shape[1], enc.sliding_window, capacity, frames.device)  # fmt: skip
            out.append(self.whisper_encoder.transformer(piece, cache.encoder, step))
        return torch.cat(out, dim=1)

    def adapt(self, frames: torch.Tensor) -> torch.Tensor:
        """Encoder frames [B, 4k, enc_dim] → audio embeddings [B, k, dim] (4 frames stacked per token)."""
        b = frames.shape[0]
        return self.audio_language_projection(frames.flatten(0, 1)).view(b, -1, self.cfg.decoder.dim)

    def encode(self, mel: torch.Tensor, cache: StreamCache, slots: list[int], first_tokens: list[int]) -> torch.Tensor:  # fmt: skip
        """mel [B, n_mels, 8k] of tokens ``first_tokens[b] …`` → audio embeddings [B, k, dim]."""
        frames = self.conv_frames(mel, cache, slots)
        per_token = self.cfg.downsample_factor
        frames = self.encoder_frames(frames, cache, slots, [per_token * t for t in first_tokens])
        return self.adapt(frames)

    # ---- embeddings → logits -----------------------------------------------------------------------------
    def embed(self, audio: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
        """Additive fusion: audio embeddings [B, L, dim] + token embeddings of ids [B, L]."""
        return audio.to(self.dtype) + self.decoder.tok_embeddings(ids)

    def decode(
        self, embeds: torch.Tensor, cache: StreamCache, slots: list[int], starts: list[int], ada: torch.Tensor
    ) -> torch.Tensor:
        """Fused inputs [B, L, dim] at positions ``starts[b]…``; ada [B, n_layers, dim] → normed hidden [B, L, dim]."""
        out = []
        for lo in range(0, embeds.shape[1], DECODER_CHUNK_TOKENS):
            piece = embeds[:, lo : lo + DECODER_CHUNK_TOKENS]
            capacity = cache.decoder[0].capacity
            step = WindowStep.build_window(slots, [s + lo for s in starts], piece.shape[1], self.cfg.sliding_window, capacity, embeds.device)  # fmt: skip
            out.append(self.decoder(piece, cache.decoder, step, ada))
        return torch.cat(out, dim=1)

    def logits(self, hidden: torch.Tensor) -> torch.Tensor:
        """Normed hidden [..., dim] → logits [..., vocab] (tied embedding)."""
        return self.decoder.logits(hidden)
