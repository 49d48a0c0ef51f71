"""Voxtral ASR as one module: audio encoder + adapter + Mistral decoder with an LM head.

Architecture only (tensor in, tensor out): audio embeddings overwrite the `[AUDIO]` placeholder rows of
the prompt embedding (spec §5.2); decoding loops live in `speechserve.asr`.
"""

from __future__ import annotations

import torch
from torch import nn

from speechserve.models.mistral import MistralBackbone
from speechserve.models.voxtral_asr.adapter import AudioLanguageAdapter
from speechserve.models.voxtral_asr.config import VoxtralASRConfig
from speechserve.models.voxtral_asr.encoder import AudioEncoder


class VoxtralASR(nn.Module):
    """Log-mel chunks + prompt ids → next-token logits. Lifetime: the process (weights only, no state)."""

    def __init__(self, cfg: VoxtralASRConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.whisper_encoder = AudioEncoder(cfg.encoder)
        self.audio_language_projection = AudioLanguageAdapter(
            cfg.encoder.dim, cfg.decoder.dim, cfg.downsample_factor
        )
        self.decoder = MistralBackbone(cfg.decoder)
        self.output = (
            None
            if cfg.decoder.tied_embeddings
            else nn.Linear(cfg.decoder.dim, cfg.decoder.vocab_size, bias=False)
        )

    def encode_audio(self, mel: torch.Tensor) -> torch.Tensor:
        """mel chunks of one audio [C, n_mels, 3000] → audio embeddings [C·375, dim]."""
        frames = self.whisper_encoder(mel.to(self.decoder.norm.weight.dtype))  # [C, 1500, enc_dim]
        return self.audio_language_projection(frames.flatten(0, 1))

    def embed(self, ids: torch.Tensor, audio_embeds: torch.Tensor, audio_token_id: int) -> torch.Tensor:
        """ids [L] → input embeddings [L, dim] with the `[AUDIO]` rows replaced, in order, by ``audio_embeds``."""
        embeds = self.decoder.tok_embeddings(ids)
        is_audio = ids == audio_token_id
        n = int(is_audio.sum())
        if n != audio_embeds.shape[0]:
            raise ValueError(
                f"prompt has {n} [AUDIO] placeholders but the audio gives {audio_embeds.shape[0]} embeddings"
            )
        embeds[is_audio] = audio_embeds.to(embeds.dtype)
        return embeds

    def logits(self, hidden: torch.Tensor) -> torch.Tensor:
        """Normed hidden [..., dim] → logits [..., vocab] (untied `output`, or the embedding table)."""
        if self.output is None:
            return hidden @ self.decoder.tok_embeddings.weight.T
        return self.output(hidden)
